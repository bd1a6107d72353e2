package pipeline

import (
	"context"
	"fmt"
	"io"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/mapping/thread"
	"github.com/threadlift/threadlift/pipeline/archive"
	"github.com/threadlift/threadlift/pipeline/report"
)

// ImportThreads gives add one threads.csv row per thread of the sources,
// with what the checkpoint holds about it: its ticket and state, and the
// first reason it or one of its messages was not imported. Records that
// could not be read come first, then threads in archive order.
//
// The checkpoint keeps no message dates, so the sources' envelopes are
// read again (a scan: no body is decoded, nothing is sent; in batches
// past Options.ReadChunk messages, readForReport); each thread is then
// looked up in the checkpoint on its own, so that memory holds a batch of
// envelopes and the failures, never a row per thread. A thread the
// checkpoint does not know is report.ThreadNotRun: the run stopped before
// it (--limit, --max-duration, an interrupt), or with --shard it is
// another shard's.
func ImportThreads(ctx context.Context, opts Options, store *checkpoint.Store, add func(report.ThreadRow) error) error {
	opts.defaults()
	r, err := readForReport(ctx, opts, nil)
	if err != nil {
		return fmt.Errorf("read sources for threads.csv: %w", err)
	}
	defer r.Close()
	fails, err := store.Failures(ctx)
	if err != nil {
		return fmt.Errorf("read failures for threads.csv: %w", err)
	}
	firstMsg, badBySource := indexFailures(fails)
	for {
		a, err := r.Next(ctx)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read sources for threads.csv: %w", err)
		}
		err = importThreadRows(ctx, a, store, firstMsg, badBySource, add)
		a.Close()
		if err != nil {
			return err
		}
	}
}

// importThreadRows adds the rows of a batch of threads: its unreadable
// records, then its threads.
func importThreadRows(ctx context.Context, a *archive.Archive, store *checkpoint.Store, firstMsg map[string]string, badBySource map[string]checkpoint.FailureRecord, add func(report.ThreadRow) error) error {
	for _, b := range a.Bad {
		row := report.ThreadRow{Messages: 1, Status: report.ThreadNotRun, Source: b.Err.Loc.String(), FirstIssue: string(b.Err.Rule) + ": " + b.Err.Err.Error()}
		if f, ok := badBySource[row.Source]; ok {
			row.Status = string(f.State)
		}
		if err := add(row); err != nil {
			return err
		}
	}
	for _, t := range a.Threads {
		if err := ctx.Err(); err != nil {
			return err
		}
		row, err := importThreadRow(ctx, a, t, store, firstMsg)
		if err != nil {
			return err
		}
		if err := add(row); err != nil {
			return err
		}
	}
	return nil
}

// indexFailures indexes the checkpoint's failures for threads.csv: the
// first rejected message of each thread (for threads imported without
// it), and the unreadable records by source.
func indexFailures(fails []checkpoint.FailureRecord) (firstMsg map[string]string, badBySource map[string]checkpoint.FailureRecord) {
	firstMsg = map[string]string{}
	badBySource = map[string]checkpoint.FailureRecord{}
	for _, f := range fails {
		switch {
		case f.ThreadKey == "":
			badBySource[f.Source] = f
		case f.MessageKey != "":
			if _, ok := firstMsg[f.ThreadKey]; !ok {
				firstMsg[f.ThreadKey] = f.Rule + ": " + f.Reason
			}
		}
	}
	return firstMsg, badBySource
}

// importThreadRow is thread t's row: what the archive says of it, and
// what the checkpoint holds about it.
func importThreadRow(ctx context.Context, a *archive.Archive, t thread.Thread, store *checkpoint.Store, firstMsg map[string]string) (report.ThreadRow, error) {
	row := report.ThreadRow{ThreadKey: t.Key, Status: report.ThreadNotRun, Messages: len(t.Members)}
	for _, m := range t.Members {
		row.Messages += a.DuplicatesOf(m)
	}
	row.FirstDate, row.LastDate = a.Dates(t)
	if len(t.Members) > 0 {
		env, err := a.Envelope(t.Members[0])
		if err != nil {
			return row, fmt.Errorf("threads.csv: %w", err)
		}
		row.Source = env.Loc.String()
	}
	th, ok, err := store.Thread(ctx, t.Key)
	if err != nil {
		return row, fmt.Errorf("read checkpoint for threads.csv: %w", err)
	}
	if !ok {
		return row, nil
	}
	row.TicketID, row.Status = th.TicketID, string(th.State)
	if th.Source != "" {
		row.Source = th.Source
	}
	if (th.State == checkpoint.Failed || th.State == checkpoint.Rejected) && th.Rule != "" {
		row.FirstIssue = th.Rule + ": " + th.Reason
	} else {
		row.FirstIssue = firstMsg[t.Key]
	}
	return row, nil
}
