package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/pipeline"
	"github.com/threadlift/threadlift/pipeline/report"
)

var update = flag.Bool("update", false, "rewrite testdata/report.golden.json")

// testReport validates the archive in testdata the way `threadlift
// validate` would, with a fixed clock: the same report on every machine.
func testReport(t *testing.T) *report.Report {
	t.Helper()
	now := func() time.Time { return time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC) }
	opts := pipeline.Options{
		Sources: []pipeline.Source{
			{Type: "mbox", Path: filepath.Join("testdata", "archive.mbox"), Name: "archive.mbox"},
			{Type: "mbox", Path: filepath.Join("testdata", "second.mbox"), Name: "second.mbox"},
		},
		Mapper: mapping.New(mapping.Options{
			Ticket: mapping.TicketRules{
				Header:       "X-Zendesk-Ticket-Id",
				SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`),
			},
			MaxEventsPerRequest: 2,
			Now:                 now,
		}),
		RequestsPerMinute:  200,
		WritesPer10Minutes: 300,
		Now:                now,
	}
	rep, err := pipeline.ValidateReport(context.Background(), opts, pipeline.ReportOptions{OversizeAttachmentBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestReportGolden(t *testing.T) {
	rep := testReport(t)
	got, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "report.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("report.json differs from %s (-want +got; go test -update to accept):\n%s", path, diff)
	}
	for _, bad := range []string{"/work/", "/tmp/", "testdata"} {
		if bytes.Contains(got, []byte(bad)) {
			t.Errorf("report.json holds %q: an absolute or machine-specific path", bad)
		}
	}
}
