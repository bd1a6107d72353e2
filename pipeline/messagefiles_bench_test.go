package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/threadlift/threadlift/internal/fixtures"
	"github.com/threadlift/threadlift/mapping"
)

// messageFilesBench is the archive of BenchmarkValidateMaildirVsMbox,
// made once per process: about THREADLIFT_BENCH_MESSAGES messages
// (default 100,000) as one mbox and as a maildir of one file each.
var messageFilesBench struct {
	once          sync.Once
	mbox, maildir string
	messages      int
	bytes         int64
}

func messageFilesArchive(b *testing.B) (mboxPath, maildir string, messages int, size int64) {
	mf := &messageFilesBench
	mf.once.Do(func() {
		n := 100_000
		if v, err := strconv.Atoi(os.Getenv("THREADLIFT_BENCH_MESSAGES")); err == nil && v > 0 {
			n = v
		}
		dir, err := os.MkdirTemp("", "threadlift-bench-maildir")
		if err != nil {
			b.Fatal(err)
		}
		a := fixtures.Generate(fixtures.Options{Seed: 16, Threads: n / 4, MaxReplies: 6, AttachmentEvery: 50})
		mf.mbox = fixtures.WriteMbox(b, dir, "all.mbox", a)
		mf.maildir = filepath.Join(dir, "Maildir")
		mf.messages = splitMbox(b, mf.mbox, mf.maildir, false, func(i int) string { return fmt.Sprintf("cur/%08d.M%dP1.bench:2,S", i, i) })
		st, _ := os.Stat(mf.mbox)
		mf.bytes = st.Size()
	})
	return mf.mbox, mf.maildir, mf.messages, mf.bytes
}

// BenchmarkValidateMaildirVsMbox: validate's throughput on the same
// messages in one mbox and as a maildir of one file each (issue 16).
// The archive stays in a temp folder for the process's benchmarks (left
// for the OS to clear).
func BenchmarkValidateMaildirVsMbox(b *testing.B) {
	mboxPath, maildir, n, size := messageFilesArchive(b)
	for _, src := range []Source{{Type: "mbox", Path: mboxPath, Name: "all.mbox"}, {Type: "maildir", Path: maildir, Name: "Maildir"}} {
		b.Run(src.Type, func(b *testing.B) {
			opts := testOptions("", mapping.TicketRules{DefaultTicketID: 1})
			opts.Sources = []Source{src}
			for b.Loop() {
				rep, err := Validate(context.Background(), opts)
				if err != nil {
					b.Fatal(err)
				}
				if rep.Messages != n {
					b.Fatalf("%d messages, want %d", rep.Messages, n)
				}
			}
			secs := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(float64(n)/secs, "msgs/s")
			b.ReportMetric(float64(size)/secs/1e6, "MB/s")
		})
	}
}
