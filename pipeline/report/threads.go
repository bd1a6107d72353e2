package report

import (
	"encoding/csv"
	"io"
	"strconv"
	"strings"
	"time"
)

// ThreadsCSVName is the per-thread export written next to report.json
// (validate) and summary.json (import): one row per thread, so that
// "what will ticket X receive?" is a filter in a spreadsheet.
const ThreadsCSVName = "threads.csv"

// ThreadsCSVHeader is the header row of threads.csv.
var ThreadsCSVHeader = []string{"thread_key", "ticket_id", "messages", "first_date", "last_date", "status", "first_issue", "source"}

// Thread statuses of a validation's threads.csv; an import's use the
// checkpoint's states (pending, in_flight, created, done, failed,
// rejected) and ThreadOtherShard.
const (
	ThreadValid      = "valid"
	ThreadInvalid    = "invalid"
	ThreadOtherShard = "other-shard"
	// ThreadNotRun is a thread of the sources the checkpoint does not
	// know: the run stopped (--limit, --max-duration, an interrupt)
	// before it came to it.
	ThreadNotRun = "not-run"
)

// ThreadRow is one line of threads.csv.
type ThreadRow struct {
	ThreadKey string
	TicketID  int64 // 0: none
	// Messages counts the thread's messages in the sources, duplicates and
	// rejected ones included.
	Messages            int
	FirstDate, LastDate time.Time // zero: no message has a date
	Status              string
	// FirstIssue is the first error, else the first warning, as
	// "rule: what"; "" when there is none.
	FirstIssue string
	Source     string // of its first message
}

// ThreadsCSV writes threads.csv rows as they come, so that no list of
// every thread is held in memory.
type ThreadsCSV struct {
	w *csv.Writer
}

// NewThreadsCSV writes the header row to w.
func NewThreadsCSV(w io.Writer) (*ThreadsCSV, error) {
	t := &ThreadsCSV{w: csv.NewWriter(w)}
	return t, t.w.Write(ThreadsCSVHeader)
}

// Add writes one row. Dates are RFC 3339 UTC.
func (t *ThreadsCSV) Add(r ThreadRow) error {
	ticket := ""
	if r.TicketID != 0 {
		ticket = strconv.FormatInt(r.TicketID, 10)
	}
	date := func(d time.Time) string {
		if d.IsZero() {
			return ""
		}
		return d.UTC().Format(time.RFC3339)
	}
	return t.w.Write([]string{
		cell(r.ThreadKey), ticket, strconv.Itoa(r.Messages), date(r.FirstDate), date(r.LastDate),
		r.Status, cell(r.FirstIssue), cell(r.Source),
	})
}

// Flush writes what is buffered and returns the first write error.
func (t *ThreadsCSV) Flush() error {
	t.w.Flush()
	return t.w.Error()
}

// cell keeps text from the archive from being run as a formula by a
// spreadsheet (CSV injection): a value starting with = + - @ or a tab or
// carriage return gets a leading apostrophe, which spreadsheets show as
// text.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// FirstIssue picks what threads.csv shows of a thread's issues: the first
// error, else the first warning, as "rule: message".
func FirstIssue(issues []Issue) string {
	var first *Issue
	for i := range issues {
		if issues[i].Severity == "error" {
			first = &issues[i]
			break
		}
		if first == nil {
			first = &issues[i]
		}
	}
	if first == nil {
		return ""
	}
	return first.Rule + ": " + first.Message
}
