package archive

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/mapping/thread"
	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/json"
	"github.com/threadlift/threadlift/sources/mbox"
)

// messyArchive writes an mbox of threads whose messages are shuffled
// across the file (replies before their roots, roots never present),
// with repeated Message-IDs, id-less messages and their exact copies;
// and a JSON Lines file of grouped messages with unreadable lines. It
// returns both as sources.
func messyArchive(t *testing.T, seed uint64) []Source {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	var msgs []string
	mail := func(id string, refs []string, minute int, subject, body string) string {
		s := fmt.Sprintf("From a@example.com Mon Mar  4 09:00:00 2024\nFrom: a@example.com\nTo: b@example.com\nSubject: %s\nDate: Mon, 4 Mar 2024 %02d:%02d:00 +0000\n", subject, 10+minute/60, minute%60)
		if id != "" {
			s += "Message-ID: <" + id + ">\n"
		}
		if len(refs) > 0 {
			s += "References: <" + strings.Join(refs, "> <") + ">\n"
		}
		return s + "\n" + body + "\n"
	}
	for i := range 60 {
		var refs []string
		if i%7 == 0 {
			refs = append(refs, fmt.Sprintf("ghost%d", i)) // a root never in the archive
		}
		for j := range 1 + rng.IntN(5) {
			id := fmt.Sprintf("t%dm%d", i, j)
			msgs = append(msgs, mail(id, slices.Clone(refs), rng.IntN(300), "thread "+id, "body of "+id))
			if rng.IntN(10) == 0 {
				msgs = append(msgs, mail(id, slices.Clone(refs), rng.IntN(300), "again "+id, "another body, same id"))
			}
			refs = append(refs, id)
		}
		if i%11 == 0 {
			// A reply to two threads joins them.
			msgs = append(msgs, mail(fmt.Sprintf("x%d", i), []string{fmt.Sprintf("t%dm0", (i+13)%60), fmt.Sprintf("t%dm0", i)}, rng.IntN(300), "both", "joins"))
		}
	}
	for k := range 6 {
		body := fmt.Sprintf("id-less %d", k%3) // k and k+3 are copies
		msgs = append(msgs, mail("", nil, 5, "no id", body))
	}
	rng.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })
	dir := t.TempDir()
	mb := filepath.Join(dir, "a.mbox")
	if err := os.WriteFile(mb, []byte(strings.Join(msgs, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for k := range 30 {
		switch {
		case k%9 == 4:
			lines = append(lines, `{"thread_id": "g1", "message_id": "broken`) // unreadable
		default:
			lines = append(lines, fmt.Sprintf(`{"thread_id":"g%d","message_id":"j%d","created_at":"2024-01-02T03:%02d:05Z","from":"ann@example.com","to":"bob@example.com","subject":"s","body":"b%d"}`, k%4, k, k, k))
		}
	}
	js := filepath.Join(dir, "b.jsonl")
	if err := os.WriteFile(js, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return []Source{{Type: "mbox", Path: mb}, {Type: "json", Path: js}}
}

// threadsOf is a's threads as thread key → message keys (duplicates
// included) in member order.
func threadsOf(a *Archive) map[string][]string {
	out := map[string][]string{}
	for _, t := range a.Threads {
		out[t.Key] = a.MessageKeys(t)
	}
	return out
}

func badsOf(a *Archive) []string {
	var out []string
	for _, b := range a.Bad {
		out = append(out, b.Err.Loc.String())
	}
	slices.Sort(out)
	return out
}

// readInChunks reads srcs in chunks of limit envelopes, recording each
// in store as an import does, and returns what the last chunk leaves
// recorded: the threads of every chunk, less those a later chunk took
// up again, and the unreadable records.
func readInChunks(t *testing.T, store *checkpoint.Store, formats *sources.Registry, srcs []Source, limit int) (threads map[string][]string, bads []string, chunks int) {
	t.Helper()
	ctx := context.Background()
	digest := Digest(srcs, sources.Options{}, thread.Options{})
	ch, err := ReadChunks(store, srcs, ChunkOptions{Formats: formats, Limit: limit})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	threads = map[string][]string{}
	for {
		a, err := ch.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("chunk %d: %v", chunks, err)
		}
		chunks++
		if a.since != nil && !a.since.wholeRecord {
			again, err := store.ScanThreads(ctx, a.since.loaded)
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range again {
				delete(threads, st.Key)
			}
		}
		for k, v := range threadsOf(a) {
			if _, dup := threads[k]; dup {
				t.Errorf("chunk %d: thread %q handed again without its recorded thread", chunks, k)
			}
			threads[k] = v
		}
		bads = badsOf(a)
		st, replace, next, why := a.ScanRecord(digest)
		if why != "" {
			t.Fatalf("chunk %d cannot be recorded: %s", chunks, why)
		}
		if err := store.RecordScan(ctx, st, replace, next); err != nil {
			t.Fatal(err)
		}
		a.Close()
	}
	return threads, bads, chunks
}

// TestChunkedReadThreadsAsWholeRead: whatever the chunk size, a read in
// chunks ends with the threads a whole read gives (keys, members in
// order, duplicates), the same unreadable records, and a scan record
// the next backfill reads like a whole read's, on an archive whose
// threads are spread across the file.
func TestChunkedReadThreadsAsWholeRead(t *testing.T) {
	formats := sources.NewRegistry(mbox.Format(), json.Format())
	for _, seed := range []uint64{1, 2, 3} {
		srcs := messyArchive(t, seed)
		whole, err := Read(context.Background(), formats, srcs, sources.Options{}, thread.Options{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		want, wantBad := threadsOf(whole), badsOf(whole)
		wantState, _, _, _ := whole.ScanRecord("d")
		whole.Close()
		for _, limit := range []int{1, 2, 7, 50, 10000} {
			t.Run(fmt.Sprintf("seed%d/limit%d", seed, limit), func(t *testing.T) {
				store := openStore(t)
				got, gotBad, chunks := readInChunks(t, store, formats, srcs, limit)
				if limit < 100 && chunks < 3 {
					t.Fatalf("%d chunks, want several", chunks)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("threads in chunks of %d:\n%v\nwhole read:\n%v", limit, got, want)
				}
				if fmt.Sprint(gotBad) != fmt.Sprint(wantBad) {
					t.Errorf("unreadable records in chunks: %v, whole read: %v", gotBad, wantBad)
				}
				st, _, err := store.ScanState(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				st.Options, wantState.Options = "", ""
				if fmt.Sprint(st) != fmt.Sprint(wantState) {
					t.Errorf("recorded state after the last chunk:\n%+v\nwhole read's:\n%+v", st, wantState)
				}
			})
		}
	}
}

func openStore(t *testing.T) *checkpoint.Store {
	t.Helper()
	s, err := checkpoint.Open(context.Background(), filepath.Join(t.TempDir(), "cp.db"), checkpoint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Lock(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestBatchesHandWholeReadThreads: read in batches, whatever the chunk
// size, an archive's threads come in a whole read's order with a whole
// read's keys, members and duplicates, the unreadable records once, and
// every batch has a whole read's source stats.
func TestBatchesHandWholeReadThreads(t *testing.T) {
	formats := sources.NewRegistry(mbox.Format(), json.Format())
	for _, seed := range []uint64{1, 2} {
		srcs := messyArchive(t, seed)
		whole, err := Read(context.Background(), formats, srcs, sources.Options{}, thread.Options{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, th := range whole.Threads {
			want = append(want, fmt.Sprint(th.Key, whole.MessageKeys(th)))
		}
		wantBad, wantStats := badsOf(whole), fmt.Sprint(whole.Stats())
		whole.Close()
		for _, limit := range []int{1, 7, 50, 10000} {
			t.Run(fmt.Sprintf("seed%d/limit%d", seed, limit), func(t *testing.T) {
				b, err := ReadBatches(context.Background(), storeOpener(t), srcs, ChunkOptions{Formats: formats, Limit: limit})
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close()
				if b.Threads() != len(want) {
					t.Errorf("Threads() = %d, want %d", b.Threads(), len(want))
				}
				var got, gotBad []string
				batches := 0
				for {
					a, err := b.Next(context.Background())
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					batches++
					for _, th := range a.Threads {
						got = append(got, fmt.Sprint(th.Key, a.MessageKeys(th)))
					}
					gotBad = append(gotBad, badsOf(a)...)
					if s := fmt.Sprint(a.Stats()); s != wantStats {
						t.Errorf("batch %d stats %s, want %s", batches, s, wantStats)
					}
					a.Close()
				}
				if limit < 100 && batches < 3 {
					t.Errorf("%d batches, want several", batches)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("threads in batches:\n%v\nwhole read:\n%v", got, want)
				}
				if slices.Sort(gotBad); fmt.Sprint(gotBad) != fmt.Sprint(wantBad) {
					t.Errorf("unreadable records in batches %v, whole read %v", gotBad, wantBad)
				}
			})
		}
	}
}

// TestBatchesLoadThreadsAgain: every thread a batch hands has the id of
// its recorded thread (RecordedIDs), and Load rebuilds any set of them
// afterwards, in any order, as the batches handed them: same keys,
// members and duplicates. Read's threads have no ids, and a Batches that
// handed the archive whole loads nothing.
func TestBatchesLoadThreadsAgain(t *testing.T) {
	formats := sources.NewRegistry(mbox.Format(), json.Format())
	srcs := messyArchive(t, 3)
	ctx := context.Background()
	whole, err := Read(ctx, formats, srcs, sources.Options{}, thread.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ids := whole.RecordedIDs(); ids != nil {
		t.Errorf("Read's RecordedIDs = %v, want nil", ids)
	}
	whole.Close()
	for _, limit := range []int{1, 7, 10000} {
		t.Run(fmt.Sprintf("limit%d", limit), func(t *testing.T) {
			b, err := ReadBatches(ctx, storeOpener(t), srcs, ChunkOptions{Formats: formats, Limit: limit})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			handed := map[int64]string{}
			var ids []int64
			for {
				a, err := b.Next(ctx)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				rec := a.RecordedIDs()
				if limit == 10000 {
					if rec != nil {
						t.Errorf("an archive handed whole has RecordedIDs %v", rec)
					}
					a.Close()
					continue
				}
				for i, th := range a.Threads {
					if rec[i] == 0 || handed[rec[i]] != "" {
						t.Fatalf("thread %s: recorded id %d (0, or handed twice)", th.Key, rec[i])
					}
					handed[rec[i]] = fmt.Sprint(th.Key, a.MessageKeys(th))
					ids = append(ids, rec[i])
				}
				a.Close()
			}
			if limit == 10000 {
				if a, err := b.Load(ctx, []int64{1}); err == nil {
					a.Close()
					t.Error("Load after a whole read did not fail")
				}
				return
			}
			slices.Reverse(ids)
			for _, set := range [][]int64{ids, ids[:1], everyThird(ids)} {
				a, err := b.Load(ctx, set)
				if err != nil {
					t.Fatal(err)
				}
				rec := a.RecordedIDs()
				if len(a.Threads) != len(set) {
					t.Errorf("Load(%d threads) rebuilt %d", len(set), len(a.Threads))
				}
				for i, th := range a.Threads {
					if got := fmt.Sprint(th.Key, a.MessageKeys(th)); got != handed[rec[i]] {
						t.Errorf("thread %d loaded again as %s, handed as %s", rec[i], got, handed[rec[i]])
					}
				}
				a.Close()
			}
		})
	}
}

func everyThird(ids []int64) []int64 {
	var out []int64
	for i := 0; i < len(ids); i += 3 {
		out = append(out, ids[i])
	}
	return out
}

// storeOpener opens a store for ReadBatches, when it asks for one.
func storeOpener(t *testing.T) func(context.Context) (BatchRecord, error) {
	return func(context.Context) (BatchRecord, error) { return openStore(t), nil }
}
