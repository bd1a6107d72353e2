// Command gencheckpoint writes a deterministic checkpoint of a finished
// import, through the checkpoint package's own API, for the benchmarks of
// the commands that read one (status, failures): importing a million
// messages against the fake takes many minutes, writing the same rows
// directly takes about a minute.
//
//	gencheckpoint -o cp.db -messages 1000000 -seed 1
//
// The shape follows the realistic archive (genmbox): threads of 1–12
// messages, about 3.5 on average, on tickets of about 4 threads each,
// with realistic keys, subjects and sources. Each thread is registered,
// marked in flight (its attempt: one import request) and recorded done
// with its side conversation, as an import does; about 1% of threads
// end failed (HTTP 422) and 0.5% of messages are rejected, so that
// failures has a few thousand lines to print. A run summary is saved
// last. The file is written to -o.tmp and renamed at the end.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/threadlift/threadlift/checkpoint"
)

func main() {
	out := flag.String("o", "", "output file (required)")
	messages := flag.Int("messages", 1_000_000, "messages to write")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "gencheckpoint: -o is required")
		os.Exit(2)
	}
	start := time.Now()
	threads, err := generate(context.Background(), *out, *messages, *seed)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gencheckpoint:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "gencheckpoint: %d messages in %d threads written to %s in %s\n",
		*messages, threads, *out, time.Since(start).Round(time.Second))
}

// plan is one generated thread.
type plan struct {
	reg    checkpoint.Registration
	send   []string // message keys sent (the ones not rejected)
	failed bool
}

// threads returns the deterministic threads holding n messages.
func threads(n int, seed uint64) []plan {
	rng := rand.New(rand.NewPCG(seed, 0x7e11))
	var out []plan
	for i, m := 0, 0; m < n; i++ {
		size := 1 + int(rng.ExpFloat64()*2.5)
		size = min(size, 12, n-m)
		key := fmt.Sprintf("<%08x.%d.thread@mail%d.example.com>", rng.Uint32(), i, i%17)
		p := plan{failed: rng.IntN(100) == 0}
		p.reg.Thread = checkpoint.Thread{Key: key, TicketID: int64(1000 + i/4), EventsTotal: size,
			Subject: fmt.Sprintf("Re: order %d %s", i, strings.Repeat("status ", 1+i%4)),
			Source:  fmt.Sprintf("archive-%02d.mbox@%d", i%8, int64(m)*3100)}
		for j := range size {
			mk := key
			if j > 0 {
				mk = fmt.Sprintf("<%08x.%d.%d.reply@mail%d.example.com>", rng.Uint32(), i, j, j%13)
			}
			msg := checkpoint.Message{Key: mk, Seq: j, Source: fmt.Sprintf("archive-%02d.mbox@%d", i%8, int64(m+j)*3100)}
			if j > 0 && rng.IntN(200) == 0 {
				msg.State, msg.Rule, msg.Reason = checkpoint.MessageRejected, "body", "body is empty after decoding"
			} else {
				p.send = append(p.send, mk)
			}
			p.reg.Messages = append(p.reg.Messages, msg)
		}
		m += size
		out = append(out, p)
	}
	return out
}

func generate(ctx context.Context, path string, n int, seed uint64) (int, error) {
	tmp := path + ".tmp"
	for _, p := range []string{tmp, tmp + "-wal", tmp + "-shm"} {
		os.Remove(p)
	}
	s, err := checkpoint.Open(ctx, tmp, checkpoint.Options{})
	if err != nil {
		return 0, err
	}
	if _, err := s.BeginRun(ctx, "https://bench.zendesk.com"); err != nil {
		s.Close()
		return 0, err
	}
	ps := threads(n, seed)
	if err := write(ctx, s, ps); err != nil {
		s.Close()
		return 0, err
	}
	summary := fmt.Sprintf(`{"started_at":"2026-11-26T10:00:00Z","finished_at":"2026-11-26T12:00:00Z","threads_total":%d,"messages_imported":%d}`, len(ps), n)
	if err := s.SaveRun(ctx, []byte(summary)); err != nil {
		s.Close()
		return 0, err
	}
	if err := s.Close(); err != nil {
		return 0, err
	}
	return len(ps), os.Rename(tmp, path)
}

// write registers the threads in batches (one commit each), then sends
// them as an import's workers do: the committer groups their writes.
func write(ctx context.Context, s *checkpoint.Store, ps []plan) error {
	const batch = 2000
	for i := 0; i < len(ps); i += batch {
		regs := make([]checkpoint.Registration, 0, batch)
		for _, p := range ps[i:min(i+batch, len(ps))] {
			regs = append(regs, p.reg)
		}
		if err := s.RegisterBatch(ctx, regs); err != nil {
			return err
		}
	}
	next := make(chan plan)
	errs := make(chan error, 32)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for p := range next {
				if err := send(ctx, s, p); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for _, p := range ps {
		select {
		case next <- p:
		case err := <-errs:
			close(next)
			wg.Wait()
			return err
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

func send(ctx context.Context, s *checkpoint.Store, p plan) error {
	k := p.reg.Thread.Key
	if err := s.MarkInFlight(ctx, k, checkpoint.KindImport, p.send); err != nil {
		return err
	}
	if p.failed {
		return s.MarkFailed(ctx, k, checkpoint.Failure{Rule: "http", Reason: "Unprocessable Entity: body too large",
			HTTPStatus: 422, RequestID: "req-" + k[1:9]})
	}
	return s.MarkCreatedDone(ctx, k, "sc-"+k[1:9], p.send)
}
