package pipeline

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"testing"

	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// TestOutputFilesWorldReadable: what an import writes for people and
// collectors to read — the metrics file, failures.jsonl, the failures
// folder of the run and its copies — is readable by everyone (0644,
// folders 0755), whatever the umask; the checkpoint is left as it is.
// Before, the metrics file and failures.jsonl were 0600 and the failures
// folder 0700: node_exporter, running as its own user, could not read
// them.
func TestOutputFilesWorldReadable(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix modes on Windows")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "a.mbox")
	unmapped := "From a@example.com Mon Mar  4 09:00:00 2024\nFrom: a@example.com\nTo: b@example.com\nSubject: no ticket" +
		"\nDate: Mon, 4 Mar 2024 10:00:00 +0000\nMessage-ID: <u1>\n\nbody\n"
	writeMbox(t, path, mboxMsg("t1", "", 1, "one"), unmapped)
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	store := newStore(t)
	opts := testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
	opts.MetricsFile = filepath.Join(dir, "metrics", "threadlift.prom")
	sum := failuresRun(t, srv, store, opts)
	if sum.FailuresDir == "" {
		t.Fatal("no failures folder")
	}
	want := map[string]fs.FileMode{
		opts.MetricsFile: 0o644,
		filepath.Join(filepath.Dir(store.Path()), FailuresJSONL): 0o644,
		sum.FailuresDir:                          0o755 | fs.ModeDir,
		filepath.Join(sum.FailuresDir, "a.mbox"): 0o644,
	}
	for p, mode := range want {
		st, err := os.Stat(p)
		if err != nil {
			t.Error(err)
			continue
		}
		if got := st.Mode() & (fs.ModePerm | fs.ModeDir); got != mode {
			t.Errorf("%s has mode %v, want %v", p, got, mode)
		}
	}
}
