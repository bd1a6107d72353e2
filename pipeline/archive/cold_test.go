package archive

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/threadlift/threadlift/mapping/thread"
	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/mbox"
)

// rareEnvelope is envelope i of a list that goes through every rare part
// of the index, one case per i%len(cases).
func rareEnvelope(i int) *sources.Envelope {
	sha := fmt.Sprintf("sha256:%064x", i)
	env := &sources.Envelope{
		Loc:  sources.Location{File: fmt.Sprintf("f%d.mbox", i%3), Offset: int64(i) * 1000},
		Size: int64(i), MessageID: fmt.Sprintf("m%d@x", i), ContentKey: sha,
		Subject: fmt.Sprintf("s%d", i/7),
		Date:    time.Date(2020, 1, 1, 0, 0, i, 0, time.UTC),
	}
	if i > 0 {
		env.References = []string{"root@x", fmt.Sprintf("m%d@x", i-1)}
	}
	cases := []func(){
		func() {}, // plain
		func() { env.Size = 5 << 30 },
		func() { env.Size = 1<<32 - 1 },
		func() { env.Loc.Offset = int64(i) << 33 },
		func() { env.Date = env.Date.Add(time.Duration(i%999+1) * time.Nanosecond) },
		func() { // 300 distinct offsets: past what the zone byte tells apart
			off := (i%300 - 150) * 7 * 60
			env.Date = env.Date.In(time.FixedZone(fmt.Sprintf("Z%d", i), off))
		},
		func() {
			env.Issues = []sources.Issue{{Severity: sources.SeverityWarning, Rule: "no-date", Reason: "r"}}
			env.Date = time.Time{}
		},
		func() { env.ContentKey = "sha256:" + strings.Repeat("AB", 32) }, // upper case: kept as written
		func() { env.ContentKey = "sha256:not-hex" },
		func() { env.ContentKey = "" },
		func() { env.MessageID = "" },                                                       // no id: the content key is the message key
		func() { env.MessageID, env.ContentKey = "", "k"+sha },                              // no id, a key of another form
		func() { env.Loc = sources.Location{File: "b.csv", Line: i}; env.ThreadID = "T-1" }, // csv
		func() { env.Corrects = "a.mbox:12" },
		func() { env.Subject = strings.Repeat("long ", 300) + fmt.Sprint(i%2) }, // past coldSubjectMax
		func() { env.Subject = "" },
		func() { env.Subject = fmt.Sprintf("Ré: ünïcode %d", i) },
	}
	cases[i%len(cases)]()
	return env
}

// timeExact compares dates by instant, offset, zone name and whether the
// zone is time.UTC itself.
var timeExact = cmp.Comparer(func(a, b time.Time) bool {
	an, ao := a.Zone()
	bn, bo := b.Zone()
	return a.Equal(b) && ao == bo && an == bn && (a.Location() == time.UTC) == (b.Location() == time.UTC) && a.IsZero() == b.IsZero()
})

// TestIndexSpillReadsBackIdentical: whatever part of the cold records is
// spilled to disk, every envelope, key and date reads back as an index
// that keeps all of them in memory gives it, in any order of reads.
func TestIndexSpillReadsBackIdentical(t *testing.T) {
	const n = 3*coldBlock + 100 // three full blocks and one filling
	want := newIndex()
	for i := range n {
		mustAdd(t, want, rareEnvelope(i), i%2)
	}
	want.seal()
	for _, tc := range []struct {
		name        string
		budget      int
		spilled     int
		hotSubjects bool
	}{
		{"all spilled", 0, 3 * coldBlock, false},
		{"one block in memory", coldBlock * coldSize, 2 * coldBlock, false},
		{"all in memory", coldBudget, 0, false},
		{"all spilled, subject threading", 0, 3 * coldBlock, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := newIndex()
			x.hotSubjects = tc.hotSubjects
			x.cold.budget, x.cold.dir = tc.budget, t.TempDir()
			// Subjects: the same budget, and small writes so that most
			// are read back from the file.
			x.subjects.budget, x.subjects.dir, x.subjects.flush = tc.budget/100, x.cold.dir, 256
			for i := range n {
				mustAdd(t, x, rareEnvelope(i), i%2)
			}
			x.seal()
			defer x.close()
			if x.cold.spilled != tc.spilled {
				t.Fatalf("%d records spilled, want %d", x.cold.spilled, tc.spilled)
			}
			if inFile := x.subjects.written > 0; inFile != (tc.budget < coldBudget && !tc.hotSubjects) {
				t.Fatalf("%d bytes of subjects written to disk", x.subjects.written)
			}
			order := rand.New(rand.NewPCG(1, 2)).Perm(n) // misses and hits in the page cache
			for _, i := range append(order, order...) {
				w, got := mustEnvelope(t, want, i), mustEnvelope(t, x, i)
				if diff := cmp.Diff(w, got, timeExact); diff != "" {
					t.Fatalf("envelope %d (-unspilled +spilled):\n%s", i, diff)
				}
				if tc.hotSubjects && (threadItems{x: x}).Subject(i) != w.Subject {
					t.Fatalf("subject threading reads subject %q of %d, want %q", (threadItems{x: x}).Subject(i), i, w.Subject)
				}
				if x.key(i) != w.Key() || want.key(i) != w.Key() {
					t.Fatalf("key(%d) = %q, want %q", i, x.key(i), w.Key())
				}
				tw, tx := threadItems{x: want}, threadItems{x: x}
				if tx.Key(i) != tw.Key(i) || !tx.Date(i).Equal(tw.Date(i)) || tx.Name(tx.ID(i)) != tw.Name(tw.ID(i)) || x.src(i) != i%2 {
					t.Fatalf("threading item %d differs: key %q/%q, id %d/%d, src %d", i, tx.Key(i), tw.Key(i), tx.ID(i), tw.ID(i), x.src(i))
				}
			}
		})
	}
}

// TestIndexSpillConcurrentReads: spilled records read back right from
// several goroutines at once, as LoadThread's callers do (run with -race).
func TestIndexSpillConcurrentReads(t *testing.T) {
	const n = 4*coldBlock + 7
	x := newIndex()
	x.cold.budget, x.cold.dir = 0, t.TempDir()
	for i := range n {
		mustAdd(t, x, rareEnvelope(i), 0)
	}
	x.seal()
	defer x.close()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, i := range rand.New(rand.NewPCG(uint64(g), 3)).Perm(n) {
				env, err := x.envelope(i)
				if err == nil && (env.Loc != rareEnvelope(i).Loc || env.Size != rareEnvelope(i).Size) {
					err = fmt.Errorf("envelope %d: %+v, size %d", i, env.Loc, env.Size)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// writeMbox writes an mbox of n messages, each its own thread, and
// returns its path.
func writeMbox(t *testing.T, dir string, n int) string {
	t.Helper()
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "From a@x Thu Jan  1 00:00:00 2020\nMessage-ID: <m%d@x>\nFrom: a@x\nTo: b@x\nSubject: [#%d] s%d\nDate: Wed, 01 Jan 2020 00:00:%02d +0000\n\nbody %d\n\n", i, i+1, i, i%60, i)
	}
	p := filepath.Join(dir, "a.mbox")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// readSpilling reads srcs into an index that spills every full block
// and every subject (but the last few) to files in dir.
func readSpilling(t *testing.T, dir string, srcs []Source) (*Archive, error) {
	t.Helper()
	x := newIndex()
	x.cold.budget, x.cold.dir = 0, dir
	x.subjects.budget, x.subjects.dir, x.subjects.flush = 0, dir, 64
	return read(context.Background(), x, sources.NewRegistry(mbox.Format()), srcs, sources.Options{}, thread.Options{}, nil)
}

// spillFilesOpen counts the process's open files in dir (Linux; -1
// elsewhere): an unlinked spill file is still one until closed.
func spillFilesOpen(t *testing.T, dir string) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	n := 0
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.HasPrefix(target, dir+string(filepath.Separator)) {
			n++
		}
	}
	return n
}

func assertNoSpill(t *testing.T, dir, when string) {
	t.Helper()
	if left, _ := os.ReadDir(dir); len(left) > 0 {
		t.Errorf("%s: %s still holds %s", when, dir, left[0].Name())
	}
	if n := spillFilesOpen(t, dir); n > 0 {
		t.Errorf("%s: %d spill files still open", when, n)
	}
}

// TestArchiveSpillFileGoneAfterClose: the spill file is open while the
// archive is, and neither on disk nor open after Close or after a read
// that failed.
func TestArchiveSpillFileGoneAfterClose(t *testing.T) {
	src := writeMbox(t, t.TempDir(), 2*coldBlock+5)
	spill := t.TempDir()
	a, err := readSpilling(t, spill, []Source{{Type: "mbox", Path: src}})
	if err != nil {
		t.Fatal(err)
	}
	if a.idx.cold.spilled == 0 {
		t.Fatal("nothing spilled")
	}
	if n := spillFilesOpen(t, spill); n == 0 {
		t.Error("the spill file is not open while the archive is")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	assertNoSpill(t, spill, "after Close")

	// The second source is missing: Read fails after the first spilled.
	_, err = readSpilling(t, spill, []Source{{Type: "mbox", Path: src}, {Type: "mbox", Path: filepath.Join(spill, "missing.mbox")}})
	if err == nil {
		t.Fatal("a missing source was read")
	}
	assertNoSpill(t, spill, "after a failed read")
}

// TestArchiveSpillReadErrorWrapped: a spill file that cannot be read
// back fails the load that needed it, with an error that says so and
// wraps the cause.
func TestArchiveSpillReadErrorWrapped(t *testing.T) {
	src := writeMbox(t, t.TempDir(), coldBlock+5)
	a, err := readSpilling(t, t.TempDir(), []Source{{Type: "mbox", Path: src}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.idx.cold.spill.f.Close() // every read of it now fails
	var spilled thread.Thread
	for _, th := range a.Threads {
		if th.Members[0] < coldBlock {
			spilled = th
			break
		}
	}
	_, _, err = a.LoadThread(spilled, sources.LoadOptions{})
	if !errors.Is(err, os.ErrClosed) || !strings.Contains(err.Error(), "read the envelope index back from ") {
		t.Errorf("LoadThread: %v; want the spill file's read error, wrapped", err)
	}
	if _, err := a.Envelope(spilled.Members[0]); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Envelope: %v; want the spill file's read error, wrapped", err)
	}
	if env, err := a.Envelope(coldBlock + 1); err != nil || env.MessageID != fmt.Sprintf("m%d@x", coldBlock+1) {
		t.Errorf("a record in memory: %v, %v", env, err)
	}
	a.idx.subjects.spill.f.Close()
	a.idx.subjects.spill.pages = [coldCachePg]int64{} // as if evicted
	if _, err := a.Envelope(coldBlock + 1); !errors.Is(err, os.ErrClosed) || !strings.Contains(err.Error(), "read a subject back from ") {
		t.Errorf("Envelope of a record in memory with its subject on disk: %v; want the read error, wrapped", err)
	}
}

// TestArchiveSpillCannotBeCreated: when the spill file cannot be made,
// the read fails with one line that says why.
func TestArchiveSpillCannotBeCreated(t *testing.T) {
	src := writeMbox(t, t.TempDir(), coldBlock+5)
	_, err := readSpilling(t, filepath.Join(t.TempDir(), "gone"), []Source{{Type: "mbox", Path: src}})
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "must spill to disk") || strings.Contains(err.Error(), "\n") {
		t.Errorf("read = %v; want one line saying the index could not spill", err)
	}
}
