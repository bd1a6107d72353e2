package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFinishCountsByRule(t *testing.T) {
	r := &Report{Issues: []Issue{
		{Severity: "warning", Rule: "charset", ThreadKey: "a", Source: "x.mbox@0"},
		{Severity: "error", Rule: "no-date", ThreadKey: "b", Source: "x.mbox@10"},
		{Severity: "warning", Rule: "charset", ThreadKey: "c", MessageKey: "m", Source: "x.mbox@20"},
		{Severity: "error", Rule: "unmapped", ThreadKey: "d", Source: "x.mbox@30"},
	}}
	r.Finish()
	want := []RuleCount{
		{"no-date", "error", 1, []Occurrence{{"b", "", "x.mbox@10"}}},
		{"unmapped", "error", 1, []Occurrence{{"d", "", "x.mbox@30"}}},
		{"charset", "warning", 2, []Occurrence{{"a", "", "x.mbox@0"}, {"c", "m", "x.mbox@20"}}},
	}
	if diff := cmp.Diff(want, r.IssuesByRule); diff != "" {
		t.Errorf("IssuesByRule (-want +got):\n%s", diff)
	}
	if !r.HasWarnings() {
		t.Errorf("HasWarnings = false, want true")
	}
	empty := &Report{}
	empty.Finish()
	b, _ := json.Marshal(empty)
	var m map[string]any
	json.Unmarshal(b, &m)
	for _, k := range []string{"issues", "issues_by_rule", "sources", "messages_per_month", "top_tickets", "samples"} {
		if l, ok := m[k].([]any); !ok || len(l) != 0 {
			t.Errorf("%s of an empty report = %v, want [] (never null)", k, m[k])
		}
	}
	if empty.HasWarnings() {
		t.Errorf("empty report HasWarnings = true")
	}
}

func TestWriteJSONAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "report.json")
	if err := WriteJSON(path, map[string]int{"threads": 1}); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(path, map[string]int{"threads": 2}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "{\n  \"threads\": 2\n}\n" {
		t.Errorf("report.json = %q, %v", b, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("folder holds %d files, want only report.json (no temp files left)", len(entries))
	}
	if err := WriteJSON(filepath.Join(path, "x"), 1); err == nil {
		t.Errorf("WriteJSON under a file: no error")
	}
}

func TestNewDistribution(t *testing.T) {
	d := NewDistribution([]int{1, 1, 2, 4, 7, 30, 1200})
	if d.Count != 7 || d.Total != 1245 || d.Min != 1 || d.Max != 1200 || d.Median != 4 || d.P95 != 1200 || d.Mean != 177.86 {
		t.Errorf("NewDistribution = %+v", d)
	}
	got := map[string]int{}
	for _, b := range d.Buckets {
		got[b.Label] = b.Count
	}
	want := map[string]int{"1": 2, "2": 1, "3–5": 1, "6–10": 1, "11–20": 0, "21–50": 1, "51–100": 0, "101–500": 0, "501–1000": 0, "1001+": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("buckets (-want +got):\n%s", diff)
	}
	if last := d.Buckets[len(d.Buckets)-1]; last.Max != nil {
		t.Errorf("last bucket max = %d, want none", *last.Max)
	}
	if e := NewDistribution(nil); e.Count != 0 || len(e.Buckets) != 10 {
		t.Errorf("NewDistribution(nil) = %+v", e)
	}
}

func TestPredictDuration(t *testing.T) {
	for _, tc := range []struct {
		name          string
		n, rpm, w10   int
		wantSec       float64
		wantBy, human string
	}{
		{"account ceiling", 400, 200, 0, 120, LimitedByRequests, "2m"},
		{"write bucket tighter", 600, 700, 300, 1200, LimitedByWrites, "20m"},
		{"no limits", 600, 0, 0, 0, LimitedByNone, "0s"},
		{"write bucket only", 30, 0, 300, 60, LimitedByWrites, "1m"},
		{"days", 1_000_000, 200, 0, 300000, LimitedByRequests, "3.5 days"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := PredictDuration(tc.n, tc.rpm, tc.w10)
			if d.Seconds != tc.wantSec || d.LimitedBy != tc.wantBy || d.Human != tc.human {
				t.Errorf("PredictDuration(%d, %d, %d) = %v s by %s (%s), want %v s by %s (%s)", tc.n, tc.rpm, tc.w10, d.Seconds, d.LimitedBy, d.Human, tc.wantSec, tc.wantBy, tc.human)
			}
			if len(d.ByPlan) != len(Plans) {
				t.Fatalf("ByPlan has %d plans, want %d", len(d.ByPlan), len(Plans))
			}
		})
	}
	d := PredictDuration(2500, 200, 0)
	var got []float64
	for _, p := range d.ByPlan {
		got = append(got, p.Seconds)
	}
	if diff := cmp.Diff([]float64{750, 375, 214.3, 60}, got); diff != "" {
		t.Errorf("ByPlan seconds (-want +got):\n%s", diff)
	}
}

func TestCountFailures(t *testing.T) {
	fs := []Failure{
		{ThreadKey: "a", State: "failed", Rule: "http"},
		{ThreadKey: "b", State: "rejected", Rule: "unmapped"},
		{ThreadKey: "c", State: "failed", Rule: "http"},
		{ThreadKey: "d", MessageKey: "m", State: "rejected", Rule: "no-date"},
	}
	want := []ReasonCount{
		{State: "failed", Kind: "thread", Rule: "http", Count: 2},
		{State: "rejected", Kind: "thread", Rule: "unmapped", Count: 1},
		{State: "rejected", Kind: "message", Rule: "no-date", Count: 1},
	}
	if diff := cmp.Diff(want, CountFailures(fs)); diff != "" {
		t.Errorf("CountFailures (-want +got):\n%s", diff)
	}
}

func TestFormatInt(t *testing.T) {
	for _, c := range []struct {
		n    int
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {-1234567, "-1,234,567"}} {
		if got := formatInt(c.n); got != c.want {
			t.Errorf("formatInt(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}

// TestWriteAtomicWorldReadable: reports, summaries and metrics are 0644
// (node_exporter's textfile collector runs as another user), not the
// 0600 of a temp file.
func TestWriteAtomicWorldReadable(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix modes on Windows")
	}
	dir := t.TempDir()
	for _, name := range []string{"report.json", "threadlift.prom"} {
		path := filepath.Join(dir, name)
		if err := WriteFileAtomic(path, []byte("x\n")); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o644 {
			t.Errorf("%s written with mode %v, want -rw-r--r--", name, st.Mode().Perm())
		}
	}
}
