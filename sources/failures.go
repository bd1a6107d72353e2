package sources

import (
	"io"
	"sort"
)

// Failures files (issue 11).
//
// After an import, every record that was not imported (rejected, or part
// of a thread that failed or was rejected) is written back out in its
// source's own format, so that it can be fixed and read again as a source
// of the same type, with the same fields and thread_key_prefix:
//   - mbox: the record as it is in the file (From line, escaping), with an
//     X-Threadlift-Source header after the From line and, for a message
//     without Message-ID, a Message-ID holding its content key;
//   - csv: the header row, then each row as it is in the file, with two
//     columns in front: threadlift_source and threadlift_key;
//   - json: one object per line (JSON Lines) with threadlift_source and
//     threadlift_key first; a message of a thread object is written inside
//     a copy of its thread object's own fields. A record that could not be
//     read is copied as it is, its mark spliced in after its first '{'.
//
// The marks make the copy a correction. threadlift_source (the
// X-Threadlift-Source header) is the location of the record it replaces:
// the pipeline leaves every record with the copy's message key, or at
// that location, out of the run, so the fixed copy takes its place in its
// thread instead of being a duplicate of the broken one.
// threadlift_key is the original's message key: a csv/json copy keeps it
// whatever is fixed (the hash that keys a record without message_id
// would change with a fixed date), so that the ledger knows the message.
// An mbox copy keeps its key in its Message-ID.

// Names of the marks: csv columns and json fields (fields never renames
// them), and the mbox header.
const (
	MarkSourceField  = "threadlift_source"
	MarkKeyField     = "threadlift_key"
	MarkSourceHeader = "X-Threadlift-Source"
)

// FailedRecord is a record to write into a failures file: an envelope
// Next returned, or (Bad) a record Next could not read, copied by its
// location and size.
type FailedRecord struct {
	Env *Envelope
	Bad *RecordError
}

func (f FailedRecord) offset() int64 {
	if f.Env != nil {
		return f.Env.Loc.Offset
	}
	return f.Bad.Loc.Offset
}

// FailureWriter is implemented by readers that can write their records
// back out as a failures file (see the top of this file).
type FailureWriter interface {
	// FailuresName is the name of the failures file of a source file
	// named name: the same, but ".jsonl" for json.
	FailuresName(name string) string
	// WriteFailures writes recs, records of this reader, to w in file
	// order, each marked as a correction of its original.
	WriteFailures(w io.Writer, recs []FailedRecord) error
}

// SortRecords sorts recs into file order, by offset (stable), as
// WriteFailures writes them.
func SortRecords(recs []FailedRecord) {
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].offset() < recs[j].offset() })
}
