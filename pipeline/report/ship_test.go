package report_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/threadlift/threadlift/pipeline/report"
)

func TestHumanDuration(t *testing.T) {
	for _, tc := range []struct {
		sec  float64
		want string
	}{
		{0, "0s"}, {45, "45s"}, {59.6, "1m"}, {60, "1m"}, {83, "1m23s"}, {599, "9m59s"}, {599.6, "10m"},
		{600, "10m"}, {629, "10m"}, {11520, "3h12m"}, {388800, "4.5 days"},
	} {
		if got := report.HumanDuration(tc.sec); got != tc.want {
			t.Errorf("HumanDuration(%v) = %q, want %q", tc.sec, got, tc.want)
		}
	}
}

// manySources is an archive of n files over a few folders, the rejections
// in a few of them.
func manySources(n int) []report.SourceStats {
	var ss []report.SourceStats
	for i := range n {
		s := report.SourceStats{File: fmt.Sprintf("archive/%02d/list-%04d.mbox", i%40, i), Format: "mbox", Bytes: 100_000, Messages: 50, Threads: 20}
		if i%97 == 3 {
			s.Rejected = i % 13
		}
		ss = append(ss, s)
	}
	return ss
}

// TestSourcesTableCollapsed: 1,955 files do not make 1,955 rows. The
// page sums them up by folder (the most rejections first, at most 25
// rows, "and N more"), lists the files with the most rejections apart,
// and report.json keeps every file. Before, every file was a row.
func TestSourcesTableCollapsed(t *testing.T) {
	r := &report.Report{Sources: manySources(1955)}
	r.Finish()
	dir := t.TempDir()
	if err := report.WriteDir(dir, r, report.HTMLOptions{}); err != nil {
		t.Fatal(err)
	}
	page, _ := os.ReadFile(filepath.Join(dir, "report.html"))
	if n := bytes.Count(page, []byte("list-")); n > 25 {
		t.Errorf("the page names %d files, want at most 25 (the files with the most rejections)", n)
	}
	t.Logf("report.html for 1,955 files: %d bytes", len(page))
	if len(page) > 60_000 {
		t.Errorf("report.html is %d bytes for 1,955 empty files", len(page))
	}
	var back report.Report
	b, _ := os.ReadFile(filepath.Join(dir, "report.json"))
	if err := json.Unmarshal(b, &back); err != nil || len(back.Sources) != 1955 {
		t.Errorf("report.json lists %d sources (%v), want all 1955", len(back.Sources), err)
	}

	path, _ := filepath.Abs(filepath.Join(dir, "report.html"))
	ctx, _ := browse(t, path)
	defer screenshotOnFailure(t, ctx)
	rows := eval[int](t, ctx, `document.querySelectorAll('#sources tbody tr').length`)
	first := eval[string](t, ctx, `document.querySelector('#sources tbody tr td').textContent`)
	more := eval[string](t, ctx, `(document.querySelector('#sources-more') || {textContent: ''}).textContent`)
	worst := eval[int](t, ctx, `document.querySelectorAll('#sources-worst tbody tr').length`)
	worstFirst := eval[[]string](t, ctx, `[...document.querySelectorAll('#sources-worst tbody tr:first-child td')].map(e => e.textContent)`)
	if rows != 25 || !strings.Contains(more, "and 15 more folders") {
		t.Errorf("sources table: %d rows, %q; want 25 folders and 15 more", rows, more)
	}
	if !strings.HasSuffix(first, "/") {
		t.Errorf("first row %q is not a folder", first)
	}
	bad, most := 0, 0
	for _, s := range r.Sources {
		if s.Rejected > 0 {
			bad++
			most = max(most, s.Rejected)
		}
	}
	if worst != bad || len(worstFirst) == 0 || worstFirst[len(worstFirst)-1] != fmt.Sprint(most) {
		t.Errorf("files with the most rejections: %d rows, first %q; want %d, the first with %d", worst, worstFirst, bad, most)
	}
}

// TestReportPageSaysWhichLimitBinds: where the write bucket binds on every
// plan, the per-plan table shows the pace of each (the same) and says why
// the durations are all alike. And the page carries its provenance.
func TestReportPageSaysWhichLimitBinds(t *testing.T) {
	rep := testReport(t)
	rep.Provenance = report.NewProvenance(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC), "v1.2.3", "0123456789abcdef0123", "/etc/threadlift/threadlift.yaml", rep.Sources)
	dir := t.TempDir()
	if err := report.WriteDir(dir, rep, report.HTMLOptions{}); err != nil {
		t.Fatal(err)
	}
	path, _ := filepath.Abs(filepath.Join(dir, "report.html"))
	ctx, _ := browse(t, path)
	defer screenshotOnFailure(t, ctx)
	note := eval[string](t, ctx, `(document.querySelector('#plans-note') || {textContent: ''}).textContent`)
	paces := eval[[]string](t, ctx, `[...document.querySelectorAll('#plans tbody tr td:nth-child(3)')].map(e => e.textContent)`)
	limits := eval[[]string](t, ctx, `[...document.querySelectorAll('#plans tbody tr td:nth-child(5)')].map(e => e.textContent)`)
	prov := eval[string](t, ctx, `(document.querySelector('#provenance') || {textContent: ''}).textContent`)
	if !strings.Contains(note, "write bucket binds on every plan") || !strings.Contains(note, "300") {
		t.Errorf("plans note = %q, want it to say the write bucket (300) binds on every plan", note)
	}
	if diff := cmp.Diff([]string{"30.0/min", "30.0/min", "30.0/min", "30.0/min"}, paces); diff != "" {
		t.Errorf("pace per plan (-want +got):\n%s", diff)
	}
	for _, l := range limits {
		if !strings.Contains(l, "write bucket") {
			t.Errorf("limited by %q, want the write bucket", l)
		}
	}
	for _, want := range []string{"2026-03-04T05:06:07Z", "threadlift v1.2.3", "0123456789ab", "/etc/threadlift/threadlift.yaml", "2 files (mbox)"} {
		if !strings.Contains(prov, want) {
			t.Errorf("provenance %q lacks %q", prov, want)
		}
	}
}

// TestProvenanceMatchesSchema: a report with its provenance is still
// what report.schema.json describes.
func TestProvenanceMatchesSchema(t *testing.T) {
	schema := loadSchema(t)
	rep := testReport(t)
	rep.Provenance = report.NewProvenance(time.Now(), "dev", "", "/x/threadlift.yaml", rep.Sources)
	b, _ := json.Marshal(rep)
	var doc any
	json.Unmarshal(b, &doc)
	for _, e := range validate(schema, schema, doc, "$") {
		t.Error(e)
	}
	if !strings.Contains(string(b), `"provenance":{"generated_at":`) {
		t.Errorf("no provenance in %s", b[:200])
	}
}

// TestThreadsCSV: one row per thread, dates in UTC, and text from the
// archive that a spreadsheet would run as a formula kept as text.
func TestThreadsCSV(t *testing.T) {
	var b bytes.Buffer
	w, err := report.NewThreadsCSV(&b)
	if err != nil {
		t.Fatal(err)
	}
	d1 := time.Date(2024, 3, 4, 10, 0, 0, 0, time.FixedZone("CET", 3600))
	for _, r := range []report.ThreadRow{
		{ThreadKey: "t1@example.com", TicketID: 42, Messages: 3, FirstDate: d1, LastDate: d1.Add(time.Hour), Status: "done", Source: "a.mbox@0"},
		{ThreadKey: "=HYPERLINK(\"http://x\")", Messages: 1, Status: "invalid", FirstIssue: "unmapped: no ticket, \"quoted\"", Source: "b.csv:2"},
	} {
		if err := w.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		report.ThreadsCSVHeader,
		{"t1@example.com", "42", "3", "2024-03-04T09:00:00Z", "2024-03-04T10:00:00Z", "done", "", "a.mbox@0"},
		{"'=HYPERLINK(\"http://x\")", "", "1", "", "", "invalid", "unmapped: no ticket, \"quoted\"", "b.csv:2"},
	}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("threads.csv (-want +got):\n%s", diff)
	}
}

// TestRunPageProvenance: the page of an import run says where it comes
// from, and points to threads.csv only when it was written.
func TestRunPageProvenance(t *testing.T) {
	sum := &report.Summary{Imported: 1, Duplicates: 2,
		Provenance: report.NewProvenance(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC), "v1", "", "/etc/t.yaml", []report.SourceStats{{Format: "csv", Bytes: 2048}})}
	for _, withCSV := range []bool{false, true} {
		var b strings.Builder
		if err := report.WriteRunHTML(&b, report.RunReport{Summary: sum}, report.HTMLOptions{ThreadsCSV: withCSV}); err != nil {
			t.Fatal(err)
		}
		page := b.String()
		for _, want := range []string{`id="provenance"`, "2026-03-04T05:06:07Z", "threadlift v1", "/etc/t.yaml", "1 file (csv), 2.0 KiB", "duplicates"} {
			if !strings.Contains(page, want) {
				t.Errorf("run page lacks %q", want)
			}
		}
		if got := strings.Contains(page, "threads.csv"); got != withCSV {
			t.Errorf("run page mentions threads.csv: %v, want %v", got, withCSV)
		}
	}
}
