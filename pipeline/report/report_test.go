package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFinishCountsByRule(t *testing.T) {
	r := &Report{Issues: []Issue{
		{Severity: "warning", Rule: "charset"}, {Severity: "error", Rule: "no-date"},
		{Severity: "warning", Rule: "charset"}, {Severity: "error", Rule: "unmapped"},
	}}
	r.Finish()
	want := []RuleCount{{"charset", "warning", 2}, {"no-date", "error", 1}, {"unmapped", "error", 1}}
	if diff := cmp.Diff(want, r.IssuesByRule); diff != "" {
		t.Errorf("IssuesByRule (-want +got):\n%s", diff)
	}
	empty := &Report{}
	empty.Finish()
	b, _ := json.Marshal(empty)
	var m map[string]any
	json.Unmarshal(b, &m)
	if issues, ok := m["issues"].([]any); !ok || len(issues) != 0 {
		t.Errorf("issues of an empty report = %v, want [] (never null)", m["issues"])
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
