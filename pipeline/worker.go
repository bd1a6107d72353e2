package pipeline

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/mapping/thread"
	"github.com/threadlift/threadlift/pipeline/archive"
	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/zendesk"
)

// job is one thread for a worker: its checkpoint row when the run started
// (seen), or, for a done thread whose keys changed since (grown), a row
// to read.
type job struct {
	t     thread.Thread
	st    checkpoint.Thread
	seen  bool
	grown bool
}

// worker is one of the Options.Workers goroutines of an import: it takes
// a thread, loads and maps it, and posts it (posting) holding its
// ticket's lock, recording everything through its ledger.
type worker struct {
	im *importer
	l  *ledger
}

func (im *importer) newWorker() *worker {
	return &worker{im: im, l: &ledger{store: im.store, fatal: &im.fatal, imported: im.threadImported}}
}

// loop runs the jobs until the feed closes them. An error means the run
// must stop: loop ends work (rc.stop), which stops the feed and makes
// every worker skip the jobs still queued.
func (w *worker) loop(rc *runContexts, jobs <-chan job) error {
	var first error
	for j := range jobs {
		if err := w.run(rc.work, rc.take, j); err != nil && first == nil {
			first = err
			rc.stop()
		}
	}
	// The last thread's answer, even when the run is stopping: the server
	// said yes.
	if err := w.l.flush(rc.work); err != nil && first == nil {
		first = err
	}
	return first
}

// run imports one thread. It returns an error only when the whole run
// must stop; a panic fails the thread alone.
func (w *worker) run(ctx, take context.Context, j job) (err error) {
	im := w.im
	defer im.opts.Progress.ThreadDone()
	if take.Err() != nil || ctx.Err() != nil {
		return nil // stopping: leave the thread for the next run
	}
	defer func() {
		if r := recover(); r != nil {
			err = w.failNew(ctx, j.t, checkpoint.Failure{Rule: RulePanic, Reason: fmt.Sprintf("internal error: %v", r)})
			im.opts.Logger.Error().Str("thread_key", j.t.Key).Str("stack", string(debug.Stack())).Msgf("panic while importing thread: %v", r)
		}
	}()
	st := j.st
	if j.grown {
		row, found, err := w.l.thread(ctx, j.t.Key)
		if err != nil {
			return err
		}
		if found {
			st = row
		}
	}
	return w.thread(ctx, j.t, st)
}

// thread imports one thread; st is its checkpoint row when the run
// started (zero when it had none). It returns an error only when the
// whole run must stop.
func (w *worker) thread(ctx context.Context, t thread.Thread, st checkpoint.Thread) (err error) {
	im := w.im
	msgs, dups, err := im.a.LoadThread(t, sources.LoadOptions{})
	if err == nil {
		// A source rewritten since the scan reads as garbage: what was
		// loaded is only used once the file is known unchanged after.
		err = im.a.Unchanged(t)
	}
	if err != nil {
		return w.unreadable(ctx, t, err)
	}
	plan := im.opts.Mapper.Map(t.Key, msgs, dups)
	if im.otherShard(plan.TicketID, t.Key) {
		return nil // another shard's: nothing registered, nothing sent
	}
	reg := im.registration(plan, t)
	if !plan.Valid() {
		return w.reject(ctx, plan, reg, st)
	}
	if st.State == checkpoint.Failed && st.Rule == RuleSourceChanged {
		// Read again, unchanged this time: no `retry` needed.
		if err := w.l.requeue(ctx, t.Key); err != nil {
			return err
		}
	}
	ticket := w.ticket(plan, st)
	unlock, err := w.lock(ctx, ticket)
	if unlock == nil {
		return err // nil: stopping
	}
	p := &posting{im: im, w: w, l: w.l, t: t, plan: plan, reg: reg, ticket: ticket, unlock: unlock}
	defer func() {
		if derr := p.done(ctx); err == nil {
			err = derr
		}
	}()
	return p.run(ctx)
}

// unreadable fails a thread whose messages could not be read again.
func (w *worker) unreadable(ctx context.Context, t thread.Thread, err error) error {
	if w.im.otherShard(0, t.Key) {
		return nil
	}
	rule := RuleRead
	if errors.Is(err, archive.ErrSourceChanged) {
		rule = RuleSourceChanged
	}
	return w.failNew(ctx, t, checkpoint.Failure{Rule: rule, Reason: err.Error()})
}

// reject records a thread that fails validation.
func (w *worker) reject(ctx context.Context, plan *mapping.Plan, reg checkpoint.Registration, st checkpoint.Thread) error {
	im := w.im
	if err := w.l.register(ctx, reg); err != nil {
		return err
	}
	im.c.rejected.Add(1)
	if st.SideConversationID != "" {
		// Imported by an earlier run and invalid now (the config or the
		// archive changed): what landed stays; nothing more is sent.
		im.opts.Logger.Warn().Str("thread_key", plan.ThreadKey).Str("rule", plan.Rule).
			Msgf("thread was imported before and is now invalid, nothing sent: %s", plan.Reason)
		return nil
	}
	if err := w.l.reject(ctx, plan.ThreadKey, checkpoint.Failure{Rule: plan.Rule, Reason: plan.Reason}); err != nil {
		return err
	}
	im.opts.Logger.Info().Str("thread_key", plan.ThreadKey).Str("source", plan.Source.String()).Str("rule", plan.Rule).Msg(plan.Reason)
	return nil
}

// ticket is the ticket a thread writes to: the one it maps to, unless a
// request of it may have landed on another. Once that may be, the
// thread's ticket is the one it landed on (Register keeps it): its side
// conversation is there.
func (w *worker) ticket(plan *mapping.Plan, st checkpoint.Thread) int64 {
	if (st.SideConversationID != "" || st.Unresolved) && st.TicketID != 0 && st.TicketID != plan.TicketID {
		w.im.opts.Logger.Warn().Str("thread_key", plan.ThreadKey).Int64("ticket_id", st.TicketID).Int64("maps_to", plan.TicketID).
			Msg("thread maps to another ticket now; its new messages go to its side conversation on the ticket it was imported to")
		return st.TicketID
	}
	return plan.TicketID
}

// lock takes ticket's lock: from the held answer when it is this
// ticket's (the answer is then recorded with this thread's first write),
// at once when it is free, or else after recording the held answer (and
// releasing its ticket) rather than keep it while waiting. unlock is nil
// when the run stops meanwhile, or on err.
func (w *worker) lock(ctx context.Context, ticket int64) (unlock func(), err error) {
	if unlock, ok := w.l.takeLock(ticket); ok {
		return unlock, nil
	}
	if unlock, ok := w.im.locks.tryLock(ticket); ok {
		return unlock, nil
	}
	if err := w.l.flush(ctx); err != nil {
		return nil, err
	}
	if unlock, err = w.im.locks.lock(ctx, ticket); err != nil {
		return nil, nil // stopping
	}
	return unlock, nil
}

// failNew fails a thread that may not be registered yet: its messages
// could not be read again (the file changed or went away during the run)
// or the import panicked before registering it. It is registered first,
// so that failures lists it and retry takes it up, instead of the refused
// state change stopping the whole run. A done thread (its new messages
// could not be read) stays done: it is looked at again by the next run.
func (w *worker) failNew(ctx context.Context, t thread.Thread, f checkpoint.Failure) error {
	ctx = context.WithoutCancel(ctx)
	row, found, err := w.l.thread(ctx, t.Key)
	if err != nil {
		return err
	}
	if !found || row.State == checkpoint.Rejected {
		th := checkpoint.Thread{Key: t.Key, State: checkpoint.Pending, TicketID: row.TicketID, Subject: row.Subject}
		if len(t.Members) > 0 {
			env, err := w.im.a.Envelope(t.Members[0])
			if err != nil {
				return err
			}
			th.Source = env.Loc.String()
		}
		if err := w.l.register(ctx, checkpoint.Registration{Thread: th}); err != nil {
			return err
		}
	}
	return w.failThread(ctx, t.Key, f)
}

// failThread marks the thread row key failed. A done row stays done
// (ledger.markFailed): the failure is counted and logged.
func (w *worker) failThread(ctx context.Context, key string, f checkpoint.Failure) error {
	w.im.c.failed.Add(1)
	stayedDone, err := w.l.markFailed(ctx, key, f)
	if stayedDone {
		w.im.opts.Logger.Warn().Str("thread_key", key).Str("rule", f.Rule).Msgf("new messages of an imported thread not sent: %s", f.Reason)
	}
	return err
}

// stopRun returns the error that stops the whole run when err says
// nothing about this thread but about every request: Zendesk asked to
// pause longer than allowed (ErrPaused), or the account or zendesk.url is
// wrong (a redirect, a 403 on a write: ErrFatal, with what to check).
// Stopping at the first one saves failing every thread for it. The thread
// is left for the next run: when err answers the write recorded in flight
// (written) and proves it was not processed, the thread is pending again;
// otherwise it stays as it is (in flight: looked up first next run).
func (w *worker) stopRun(ctx context.Context, key string, err error, written bool) error {
	var stop error
	var pause *zendesk.PauseError
	if errors.As(err, &pause) {
		stop = fmt.Errorf("%w: %w; stopping: run import again after %s", ErrPaused, err,
			pause.Until.Local().Format("15:04 MST on 2006-01-02"))
	} else if hint, ok := zendesk.Misconfigured(err); ok {
		stop = fmt.Errorf("%w: %s: %w", ErrFatal, hint, err)
	} else {
		return nil
	}
	if written && !zendesk.OutcomeUnknown(err) {
		if err := w.l.notSent(ctx, key); err != nil {
			return err
		}
	}
	w.im.opts.Logger.Error().Err(err).Str("thread_key", key).Msg("stopping the run: not this thread's problem, every request would meet it")
	return w.im.fatal.set(stop)
}
