package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// rewriteOnThreads runs change once threading is done, before any thread
// is loaded: the moment an archive rewritten during an import hits.
type rewriteOnThreads struct {
	nopProgress
	change func()
}

func (r rewriteOnThreads) Threads(int) { r.change() }

// TestSourceChangedDuringImport: a source rewritten or truncated between
// the scan and the load fails its threads with source-changed, never
// rejects them, writes nothing garbled into the failures files, and the
// next import takes them up again.
func TestSourceChangedDuringImport(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, path string, orig []byte)
	}{
		{"truncated", func(t *testing.T, path string, orig []byte) {
			if err := os.Truncate(path, int64(len(orig)/3)); err != nil {
				t.Fatal(err)
			}
		}},
		{"rewritten in place", func(t *testing.T, path string, orig []byte) {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			// Same size, other bytes: every header shifted by a few bytes.
			if _, err := f.WriteAt([]byte("XXXXXXXX\n\n\n"+strings.Repeat("garbage ", len(orig)/8)), 0); err != nil {
				t.Fatal(err)
			}
			if err := f.Truncate(int64(len(orig))); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "a.mbox")
			var msgs []string
			for i := range 12 {
				msgs = append(msgs, mail(fmt.Sprintf("m%d", i), nil, i, fmt.Sprintf("[#%d] thread %d", 100+i, i)))
			}
			writeMbox(t, path, msgs...)
			orig, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
			store := newStore(t)
			opts := testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
			opts.Progress = rewriteOnThreads{change: func() { tc.change(t, path, orig) }}
			sum, err := Import(context.Background(), newClient(t, srv), store, opts)
			if err != nil {
				t.Fatal(err)
			}
			if sum.Rejected != 0 || sum.RejectedMsgs != 0 || sum.Failed != 12 {
				t.Errorf("summary: rejected %d threads, %d messages, failed %d; want 0, 0 and 12", sum.Rejected, sum.RejectedMsgs, sum.Failed)
			}
			recs, err := store.Failures(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				if r.State != checkpoint.Failed || r.Rule != "source-changed" || !strings.Contains(r.Reason, "run import again") {
					t.Errorf("failure %+v: want failed, rule %s, a reason that says to run import again", r, "source-changed")
				}
			}
			if dir := filepath.Join(filepath.Dir(store.Path()), FailuresDir); sum.FailuresDir != "" {
				t.Errorf("copies written to %s (under %s), want none: what is in the archive now is not what failed", sum.FailuresDir, dir)
			}

			// The archive back as it was: the next import takes the threads up.
			if err := os.WriteFile(path, orig, 0o644); err != nil {
				t.Fatal(err)
			}
			opts.Progress = nil
			sum, err = Import(context.Background(), newClient(t, srv), store, opts)
			if err != nil || sum.Imported != 12 {
				t.Errorf("next import: imported %d, %v; want 12", sum.Imported, err)
			}
			assertExactlyOnce(t, srv.Fake, 12)
		})
	}
}
