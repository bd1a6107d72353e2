package pipeline

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/pipeline/report"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// threadsArchive holds a thread of two messages and a duplicate on ticket
// 5, a thread with an undated reply on ticket 7, and an unmapped thread.
func threadsArchive(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "a.mbox")
	seven := strings.Replace(mboxMsg("s1", "", 5, "seven"), "[#5]", "[#7]", 1)
	undated := "From -\nFrom: b@example.com\nTo: a@example.com\nSubject: [#7] re\nMessage-ID: <s1r>\nIn-Reply-To: <s1>\n\nno date\n"
	unmapped := "From a@example.com Mon Mar  4 09:00:00 2024\nFrom: a@example.com\nTo: b@example.com\nSubject: no ticket" +
		"\nDate: Mon, 4 Mar 2024 10:00:00 +0000\nMessage-ID: <u1>\n\nbody\n"
	writeMbox(t, path, mboxMsg("t1", "", 1, "one"), mboxMsg("t1r", "t1", 3, "reply"), mboxMsg("t1r", "t1", 3, "reply"), seven, undated, unmapped)
	return path
}

func at(min int) time.Time { return time.Date(2024, 3, 4, 10, min, 0, 0, time.UTC) }

func rowsWithoutSource(rows []report.ThreadRow) []report.ThreadRow {
	for i := range rows {
		rows[i].Source = ""
		rows[i].FirstDate, rows[i].LastDate = rows[i].FirstDate.UTC(), rows[i].LastDate.UTC()
		if _, rest, ok := strings.Cut(rows[i].FirstIssue, ": "); ok && rest != "" {
			rows[i].FirstIssue = rows[i].FirstIssue[:strings.Index(rows[i].FirstIssue, ":")]
		}
	}
	return rows
}

// TestValidateThreadRows: validate gives one threads.csv row per thread,
// in thread order: ticket, messages (the duplicate included), the span of
// dates, valid or invalid, and the first error (else warning).
func TestValidateThreadRows(t *testing.T) {
	opts := testOptions(threadsArchive(t), mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
	var rows []report.ThreadRow
	_, err := ValidateReport(context.Background(), opts, ReportOptions{Threads: func(r report.ThreadRow) error {
		rows = append(rows, r)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := []report.ThreadRow{
		{ThreadKey: "t1", TicketID: 5, Messages: 3, FirstDate: at(1), LastDate: at(3), Status: report.ThreadValid, FirstIssue: "duplicate"},
		{ThreadKey: "s1", TicketID: 7, Messages: 2, FirstDate: at(5), LastDate: at(5), Status: report.ThreadValid, FirstIssue: "no-date"},
		{ThreadKey: "u1", Messages: 1, FirstDate: at(0), LastDate: at(0), Status: report.ThreadInvalid, FirstIssue: "unmapped"},
	}
	if diff := cmp.Diff(want, rowsWithoutSource(rows)); diff != "" {
		t.Errorf("threads.csv rows (-want +got):\n%s", diff)
	}
}

// TestImportThreadRows: after an import, threads.csv says what each
// thread became: not-run for the threads the --limit left for later,
// then done (with its rejected message's rule) and rejected.
func TestImportThreadRows(t *testing.T) {
	path := threadsArchive(t)
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	store := newStore(t)
	opts := testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
	opts.Workers = 1
	opts.Limit = 1
	failuresRun(t, srv, store, opts)
	var rows []report.ThreadRow
	if err := ImportThreads(context.Background(), opts, store, func(r report.ThreadRow) error {
		rows = append(rows, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []report.ThreadRow{
		{ThreadKey: "t1", TicketID: 5, Messages: 3, FirstDate: at(1), LastDate: at(3), Status: "done"},
		{ThreadKey: "s1", Messages: 2, FirstDate: at(5), LastDate: at(5), Status: report.ThreadNotRun},
		{ThreadKey: "u1", Messages: 1, FirstDate: at(0), LastDate: at(0), Status: report.ThreadNotRun},
	}
	if diff := cmp.Diff(want, rowsWithoutSource(rows)); diff != "" {
		t.Errorf("after --limit 1 (-want +got):\n%s", diff)
	}

	opts.Limit = 0
	failuresRun(t, srv, store, opts)
	rows = nil
	ImportThreads(context.Background(), opts, store, func(r report.ThreadRow) error { rows = append(rows, r); return nil })
	want[1].Status, want[1].TicketID, want[1].FirstIssue = "done", 7, "no-date"
	want[2].Status, want[2].FirstIssue = "rejected", "unmapped"
	if diff := cmp.Diff(want, rowsWithoutSource(rows)); diff != "" {
		t.Errorf("after the whole import (-want +got):\n%s", diff)
	}
}
