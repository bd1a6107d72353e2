package archive

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/mapping/thread"
	"github.com/threadlift/threadlift/sources"
)

// The scan record: what an import keeps in the checkpoint of its read of
// the sources (checkpoint.RecordScan), so that the next one can read
// only what was appended (ReadSince, since.go).
//
// Per source file it keeps the size, a digest of the first headBytes
// and one of the tailBytes before the end (a file that only grew has
// both unchanged), and its last record; per thread, the encoded
// envelopes of its messages (encode.go) and the syms of what they
// mention. Records that could not be read at all are kept as one thread
// of key "", which every appended read loads again.

const (
	headBytes = 64 << 10
	tailBytes = 4 << 10
)

// Digest names everything a read depends on besides the files' bytes:
// the sources as configured, the read and threading options, and the
// record's encoding. A record made under another digest is not used.
func Digest(srcs []Source, opts sources.Options, topts thread.Options) string {
	b, _ := json.Marshal(struct {
		V       string
		Srcs    []Source
		Max     int64
		Threads thread.Options
	}{encodingVersion, srcs, opts.MaxMessageBytes, topts})
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// fileDigests returns the digests of path's first min(headBytes, size)
// bytes and of the min(tailBytes, size) bytes before size; "" for one
// that cannot be read. scanned counts the bytes read.
func fileDigests(path string, size int64, scanned *int64) (head, tail string) {
	f, err := os.Open(path)
	if err != nil {
		return "", ""
	}
	defer f.Close()
	return digestAt(f, 0, min(headBytes, size), scanned), digestAt(f, size-min(tailBytes, size), size, scanned)
}

func digestAt(ra io.ReaderAt, from, to int64, scanned *int64) string {
	h := sha256.New()
	n, err := io.Copy(h, io.NewSectionReader(ra, from, to-from))
	*scanned += n
	if err != nil || n != to-from {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// lastOf is the scan record's note of a record.
func lastOf(env *sources.Envelope, bad *sources.RecordError) checkpoint.ScanRecord {
	if bad != nil {
		return checkpoint.ScanRecord{Found: true, Offset: bad.Loc.Offset, Line: bad.Loc.Line, Size: bad.Size}
	}
	return checkpoint.ScanRecord{Found: true, Offset: env.Loc.Offset, Line: env.Loc.Line, Size: env.Size, Key: env.Key()}
}

// ScanRecord is what the checkpoint records of this read for the next
// one: the state, the recorded threads it replaces (nil: the whole
// record), and the threads (next yields them one at a time, for
// checkpoint.RecordScan). why is not "" when this read must not be
// recorded; the caller then forgets any earlier record.
func (a *Archive) ScanRecord(digest string) (st checkpoint.ScanState, replace []int64, next func(yield func(checkpoint.ScanThread) error) error, why string) {
	partial := a.since != nil && a.since.partial
	if why = a.unrecordable(); why != "" && !partial && (a.since == nil || !a.since.temporary) {
		return st, nil, nil, why
	}
	if partial {
		// The next chunk is threaded with this record, whatever the
		// sources hold; no appended read takes it as its base.
		digest = partialPrefix + digest
	}
	why = ""
	st = checkpoint.ScanState{Options: digest, Envelopes: int64(a.Len()), Bad: len(a.Bad)}
	for _, s := range a.stats {
		st.Files = append(st.Files, checkpoint.ScanFile{Path: s.Path, Type: s.Type, Size: s.Bytes, Head: s.head, Tail: s.tail,
			Prefix: s.prefix, Last: s.last, Records: s.Messages})
	}
	st.Threads = len(a.Threads) + len(a.Bad)
	st.Messages = a.Len() + len(a.Bad)
	if a.since != nil {
		st.Envelopes = a.since.prior.Envelopes + int64(a.since.added)
		st.Threads += a.since.untouchedThreads
		st.Messages += a.since.untouchedMessages
		replace = a.since.loaded
		if replace == nil {
			replace = []int64{}
		}
		if a.since.wholeRecord {
			replace = nil
		}
	}
	return st, replace, a.recordThreads, ""
}

// unrecordable says why this read cannot be the base of an appended
// read; "" when it can.
func (a *Archive) unrecordable() string {
	switch {
	case a.topts.SubjectThreading:
		return "subject_threading is on: a backfill threads the whole archive"
	case len(a.superseded) > 0 || len(a.copies) > 0:
		return "a failures file's corrected copies are among the sources"
	}
	for _, s := range a.stats {
		if s.folder {
			return s.File() + " is a folder of message files: a backfill reads it whole"
		}
		if s.changed || s.head == "" || s.tail == "" {
			return s.File() + " changed while it was read"
		}
		if s.Type == "json" {
			if why := jsonAppendable(s.Path, s.Fields); why != "" {
				return s.File() + ": " + why
			}
		}
	}
	return ""
}

// jsonAppendable says why a json source cannot be read from its last
// record on: a JSON array, or thread objects (whose fields the messages
// appended inside one would need); "" for JSON Lines of messages.
func jsonAppendable(path string, fields map[string]string) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	br := io.LimitReader(f, 1<<20)
	b, _ := io.ReadAll(br)
	b = bytes.TrimLeft(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")), " \t\r\n")
	if len(b) == 0 || b[0] != '{' {
		return "a JSON array (or not JSON Lines) is read whole"
	}
	var first map[string]json.RawMessage
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&first); err != nil {
		return "its first object could not be read"
	}
	key := "messages"
	if v := fields["messages"]; v != "" {
		key = v
	}
	if _, ok := first[key]; ok || strings.Contains(key, ".") {
		return "thread objects are read whole"
	}
	return ""
}

// recordThreads yields every thread with its members and duplicates,
// then the unreadable records as the thread of key "".
func (a *Archive) recordThreads(yield func(checkpoint.ScanThread) error) error {
	var syms []uint64
	for _, t := range a.Threads {
		st := checkpoint.ScanThread{Key: t.Key, KeysHash: checkpoint.KeysHash(a.MessageKeys(t))}
		syms = syms[:0]
		add := func(i int) error {
			env, err := a.idx.envelope(i)
			if err != nil {
				return err
			}
			st.Envelopes = append(st.Envelopes, checkpoint.ScanEnvelope{Seq: a.seq(i), Data: encodeEnvelope(env, a.idx.src(i))})
			syms = mentions(syms, env)
			return nil
		}
		for _, i := range slices.Concat(t.Members, a.duplicates(t)) {
			if err := add(i); err != nil {
				return err
			}
		}
		st.Syms = syms
		if err := yield(st); err != nil {
			return err
		}
	}
	if len(a.Bad) == 0 {
		return nil
	}
	st := checkpoint.ScanThread{Key: ""}
	for k, b := range a.Bad {
		st.Envelopes = append(st.Envelopes, checkpoint.ScanEnvelope{Seq: -int64(k) - 1, Data: encodeBad(b.Err, b.Src)})
	}
	return yield(st)
}

// seq is envelope i's position in the whole archive: i, or what the
// record says for an appended read.
func (a *Archive) seq(i int) int64 {
	if a.since != nil {
		return a.since.seq[i]
	}
	return int64(i)
}
