package pipeline

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/sources"
)

// TestEmptySourcesAreAWarning: a source that holds no message is a
// warning issue "empty-source" naming the file, for every format, and
// never stops the run. Before, a 0-byte mbox or jsonl said nothing at all
// and a 0-byte csv stopped the run (exit 3).
func TestEmptySourcesAreAWarning(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.mbox")
	writeMbox(t, good, mboxMsg("ok", "", 1, "fine"))
	empties := []Source{
		{Type: "mbox", Path: writeFile(t, filepath.Join(dir, "empty.mbox"), ""), Name: "empty.mbox"},
		{Type: "mbox", Path: writeFile(t, filepath.Join(dir, "blank.mbox"), "\n\n"), Name: "blank.mbox"},
		{Type: "csv", Path: writeFile(t, filepath.Join(dir, "empty.csv"), ""), Name: "empty.csv"},
		{Type: "csv", Path: writeFile(t, filepath.Join(dir, "header-only.csv"), csvHeader), Name: "header-only.csv"},
		{Type: "json", Path: writeFile(t, filepath.Join(dir, "empty.jsonl"), ""), Name: "empty.jsonl"},
		{Type: "json", Path: writeFile(t, filepath.Join(dir, "empty-array.json"), "[]\n"), Name: "empty-array.json"},
		{Type: "json", Path: writeFile(t, filepath.Join(dir, "no-messages.json"), `{"thread_id":"t","messages":[]}`+"\n"), Name: "no-messages.json"},
	}
	opts := testOptions(good, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
	opts.Sources = append(opts.Sources, empties...)
	rep, err := Validate(context.Background(), opts)
	if err != nil {
		t.Fatalf("Validate: %v (an empty source must not stop the run)", err)
	}
	got := map[string]string{}
	for _, is := range rep.Issues {
		if is.Rule == string(sources.RuleEmptySource) {
			got[is.Source] = is.Severity
		}
	}
	for _, s := range empties {
		src := ""
		for k := range got {
			if strings.HasPrefix(k, s.Name+"@") || strings.HasPrefix(k, s.Name+":") || k == s.Name {
				src = k
			}
		}
		if src == "" || got[src] != "warning" {
			t.Errorf("%s: no %s warning (issues %v)", s.Name, sources.RuleEmptySource, got)
		}
	}
	if rep.ValidThreads != 1 || rep.InvalidThreads != 0 {
		t.Errorf("valid %d invalid %d, want 1 and 0", rep.ValidThreads, rep.InvalidThreads)
	}
}
