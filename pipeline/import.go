package pipeline

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sourcegraph/conc/pool"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/mapping/thread"
	"github.com/threadlift/threadlift/pipeline/archive"
	"github.com/threadlift/threadlift/pipeline/report"
	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/zendesk"
)

// Rules of failures raised by the pipeline itself.
const (
	RuleHTTP     = "http"
	RuleRead     = "read"
	RulePanic    = "panic"
	RuleAttempts = "attempts-exhausted"
	// RuleSourceChanged fails a thread whose source file changed between
	// the scan and the load: what was read is not what was scanned. The
	// next import takes it up by itself.
	RuleSourceChanged = "source-changed"
	// RuleTicketChanged fails a thread whose side conversation is on
	// another ticket than the one it maps to now.
	RuleTicketChanged = "ticket-changed"
	// RuleThreadJoined is the warning of a thread whose messages were
	// imported as parts of other threads (a backfill joined them, or the
	// thread split off one): its new messages go to the earliest part.
	RuleThreadJoined = "thread-joined"
	// RuleJoinedPartFailed fails a thread whose new messages go to a part
	// that failed (or was refused) and waits for `threadlift retry`.
	RuleJoinedPartFailed = "joined-part-failed"
)

type counters struct {
	imported, alreadyDone, failed, rejected atomic.Int64
	requests, retries, rateLimited          atomic.Int64
	importReqs, eventsReqs                  atomic.Int64
	events, rejectedMsgs, reconciled        atomic.Int64
	skipped, posted, uploads                atomic.Int64

	// Scale-out (shard.go, metrics.go).
	otherShards, bytesRead, lastDone atomic.Int64 // lastDone: unix nanoseconds
}

type importer struct {
	opts  Options
	api   API
	store *checkpoint.Store
	a     *archive.Archive
	c     counters
	locks ticketLocks
	vouch *vouch
	// fresh is true when the checkpoint held no thread when the run
	// started (a first import): see posting.run.
	fresh bool

	fatalMu sync.Mutex
	fatal   error

	warnMu        sync.Mutex
	warnings      []report.Issue
	warningsTotal int
}

// maxWarnings bounds the warnings a summary lists; WarningsTotal counts
// them all.
const maxWarnings = 1000

// Import posts every thread that is not done yet, resuming from the
// checkpoint, and returns the run summary. The caller holds the
// checkpoint's lock. The returned error wraps ErrInterrupted when ctx was
// cancelled and ErrFatal when the run had to stop (authentication).
func Import(ctx context.Context, api API, store *checkpoint.Store, opts Options) (*report.Summary, error) {
	opts.defaults()
	start := opts.Now()
	im := &importer{api: api, store: store}
	opts.Progress = countingProgress{Progress: opts.Progress, bytes: &im.c.bytesRead}
	im.opts = opts
	defer im.startMetrics(ctx, start)() // stops the loop, writes the final metrics

	// The checkpoint's state is read while the sources are: they do not
	// depend on each other, and both take long on a big resumed run (as
	// does the checkpoint's integrity check, which Open may have started
	// in the background).
	type loaded struct {
		r   *checkpoint.Resume
		err error
	}
	loadc := make(chan loaded, 1)
	go func() {
		r, err := store.Resume(ctx)
		loadc <- loaded{r, err}
	}()
	a, err := archive.Read(ctx, opts.Formats, opts.Sources, opts.Read, opts.Threading, opts.Progress.ReadBytes)
	ld := <-loadc
	if a != nil {
		defer a.Close()
	}
	// Nothing is written or sent before the checkpoint passed its check.
	if cerr := store.Check(ctx); cerr != nil && ctx.Err() == nil {
		return nil, cerr
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("read sources: %w", ErrInterrupted)
		}
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("read checkpoint: %w", ErrInterrupted)
	}
	if ld.err != nil {
		return nil, fmt.Errorf("read checkpoint: %w", ld.err)
	}
	im.a = a
	resume := ld.r
	// Nothing was written yet: mark the run started (the file "not clean"
	// until it ends) and learn whether the checkpoint can vouch for what
	// Zendesk holds.
	run, err := store.BeginRun(ctx, opts.Account)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("begin run: %w", ErrInterrupted)
		}
		return nil, err
	}
	// Runs last: nothing is in flight once Import returns.
	defer func() {
		if err := store.EndRun(context.WithoutCancel(ctx)); err != nil {
			opts.Logger.Warn().Err(err).Msg("could not record the clean end of the run in the checkpoint (the next run then looks each ticket up before writing to it), or fold its WAL into the .db (copy both files as a backup)")
		}
	}()
	im.vouch = newVouch(run, opts.VouchProbes)
	im.logTrust(run)
	im.fresh = len(resume.Done) == 0 && len(resume.Open) == 0
	if opts.MetricsFile != "" {
		// The metrics' last success time starts from earlier runs'.
		last, err := store.LastDone(ctx)
		if err != nil {
			return nil, fmt.Errorf("read checkpoint: %w", err)
		}
		if !last.IsZero() {
			im.noteDone(last)
		}
	}
	for _, is := range emptySources(a) {
		opts.Logger.Warn().Str("rule", is.Rule).Str("source", is.Source).Msg(is.Message)
	}
	if err := im.resolveSuperseded(ctx); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFatal, err)
	}
	if err := im.recordBad(ctx); err != nil {
		return nil, err
	}
	opts.Progress.Threads(len(a.Threads))

	// Requests go on for StopTimeout after the run is told to stop, so
	// that in-flight writes can finish and be recorded; a fatal error ends
	// them at once.
	reqCtx, cancelReq := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelReq()
	stopWatch := context.AfterFunc(ctx, func() {
		time.AfterFunc(opts.StopTimeout, cancelReq)
	})
	defer stopWatch()

	// take says whether new threads may still be started: not after a
	// signal, a fatal error, or the end of the --max-duration window.
	takeCtx := ctx
	if opts.MaxDuration > 0 {
		var cancel context.CancelFunc
		takeCtx, cancel = context.WithTimeout(ctx, opts.MaxDuration)
		defer cancel()
	}
	// Options.Workers workers take the threads from jobs. An error means
	// the run must stop: the worker cancels runCtx, which stops the feed
	// and makes every worker skip the jobs still queued.
	runCtx, cancelRun := context.WithCancel(reqCtx)
	defer cancelRun()
	jobs := make(chan job)
	p := pool.New().WithErrors().WithFirstError()
	for range opts.Workers {
		p.Go(func() error {
			w := &worker{im: im}
			var first error
			for j := range jobs {
				if err := w.run(runCtx, takeCtx, j); err != nil && first == nil {
					first = err
					cancelRun()
				}
			}
			// The last thread's answer, even when the run is stopping: the
			// server said yes.
			if err := w.flush(runCtx); err != nil && first == nil {
				first = err
			}
			return first
		})
	}
feed:
	for _, t := range a.Threads {
		if takeCtx.Err() != nil || im.stopped() {
			break
		}
		st, seen := resume.Open[t.Key]
		hash, done := resume.Done[t.Key]
		if done {
			// A corrected copy of a rejected message (corrections.go) adds
			// no key: the thread has grown by it until it is imported.
			copied := false
			if a.HasCopy(t.Members) {
				all, err := im.copiesImported(ctx, t.Key, t.Members)
				if err != nil {
					if ctx.Err() == nil {
						im.setFatal(fmt.Errorf("%w: %w", ErrFatal, err))
					}
					break
				}
				copied = !all
			}
			if !copied && hash != "" && hash == checkpoint.KeysHash(a.MessageKeys(t)) {
				// Completed with exactly these message keys.
				im.c.alreadyDone.Add(1)
				opts.Progress.ThreadDone()
				continue
			}
			// Grown, joined or split since: its row is read by its worker.
			seen = true
		}
		if seen && st.State == checkpoint.Failed && st.Rule != RuleSourceChanged {
			// Failed threads wait for `threadlift retry`.
			im.c.failed.Add(1)
			opts.Progress.ThreadDone()
			continue
		}
		if opts.Limit > 0 && im.c.posted.Load() >= int64(opts.Limit) {
			// --limit counts threads that sent a request (see reserve).
			im.c.skipped.Add(1)
			continue
		}
		select {
		case jobs <- job{t: t, st: st, seen: seen, grown: done}:
		case <-runCtx.Done():
			break feed
		}
	}
	close(jobs)
	err = p.Wait()

	sum := im.summary(start, len(a.Threads)+len(a.Bad), a.Len()+len(a.Bad))
	sum.Warnings, sum.WarningsTotal = im.warnings, im.warningsTotal
	interrupted := ctx.Err() != nil
	sum.Interrupted = interrupted
	sum.StoppedByMaxDuration = !interrupted && takeCtx.Err() != nil
	var pause *zendesk.PauseError
	if errors.As(im.fatalErr(), &pause) {
		sum.PausedUntil = pause.Until.UTC().Format(time.RFC3339)
	}
	if fo, werr := im.writeFailures(context.WithoutCancel(ctx)); werr != nil {
		opts.Logger.Warn().Err(werr).Msg("could not write the failures files next to the checkpoint")
	} else if fo.dir != "" {
		sum.FailuresDir = fo.dir
		msg := "records that were not imported are copied to this folder: fix them, then add each file as a source of the same type, fields and thread_key_prefix as the file it is named after; each fixed record replaces its original"
		if fo.same {
			msg = "the records that were not imported are the same as in this folder, written by an earlier run: fix them there, then add each file as a source"
		}
		opts.Logger.Warn().Str("failures_dir", fo.dir).Int("records", fo.records).Msg(msg)
	}
	if b, jerr := jsonMarshal(sum); jerr == nil {
		if serr := store.SaveRun(context.WithoutCancel(ctx), b); serr != nil {
			opts.Logger.Warn().Err(serr).Msg("could not save the run summary in the checkpoint")
		}
	}
	switch {
	case im.fatalErr() != nil:
		return sum, im.fatalErr()
	case err != nil && !errors.Is(err, context.Canceled):
		return sum, err
	case interrupted:
		return sum, fmt.Errorf("import: %w", ErrInterrupted)
	}
	return sum, nil
}

// job is one thread for a worker: its checkpoint row when the run started
// (seen), or, for a done thread whose keys changed since (grown), a row
// to read.
type job struct {
	t     thread.Thread
	st    checkpoint.Thread
	seen  bool
	grown bool
}

// worker is one of the Options.Workers goroutines of an import. It holds
// the answer to its last thread's last request until its next write, so
// that the answer is recorded in the same transaction as the next
// thread's write-ahead record: one commit per thread instead of two.
// Until then that thread is in flight and unresolved in the checkpoint,
// which is what a crash right after the response would leave anyway and
// what the next run reconciles. Any other write records it first (flush).
//
// While it holds an answer, the worker keeps its ticket locked: no other
// worker may look that ticket up (and resolve the thread in flight from
// the listing) before the answer is recorded.
type worker struct {
	im      *importer
	pending *checkpoint.Completion
	// held unlocks the ticket of pending (heldTicket); nil once the lock
	// went to the worker's next thread on the same ticket.
	held       func()
	heldTicket int64
}

// flush records the held answer, if any, and releases its ticket.
func (w *worker) flush(ctx context.Context) error {
	if w.pending == nil {
		return nil
	}
	c := w.pending
	// Recorded even when the run is stopping: the server said yes.
	if err := w.im.store.Complete(context.WithoutCancel(ctx), *c); err != nil {
		return w.im.setFatal(fmt.Errorf("%w: %w", ErrFatal, err))
	}
	w.recorded()
	return nil
}

// recorded is called once the held answer is in the checkpoint.
func (w *worker) recorded() {
	w.pending = nil
	if w.held != nil {
		w.held()
		w.held = nil
	}
	w.im.threadImported()
}

// hold keeps c, the answer to the last request of a thread on ticket,
// with the ticket's lock (unlock), until the worker's next write.
func (w *worker) hold(c *checkpoint.Completion, ticket int64, unlock func()) {
	w.pending, w.held, w.heldTicket = c, unlock, ticket
}

// run imports one thread. It returns an error only when the whole run
// must stop.
func (w *worker) run(ctx, takeCtx context.Context, j job) (err error) {
	im := w.im
	defer im.opts.Progress.ThreadDone()
	if takeCtx.Err() != nil || ctx.Err() != nil {
		return nil // stopping: leave the thread for the next run
	}
	defer func() {
		if r := recover(); r != nil {
			if err = w.flush(ctx); err == nil {
				err = im.failNew(ctx, j.t, checkpoint.Failure{
					Rule: RulePanic, Reason: fmt.Sprintf("internal error: %v", r),
				})
			}
			im.opts.Logger.Error().Str("thread_key", j.t.Key).Str("stack", string(debug.Stack())).Msgf("panic while importing thread: %v", r)
		}
	}()
	st := j.st
	if j.grown {
		row, found, err := im.store.Thread(ctx, j.t.Key)
		if err != nil {
			return im.setFatal(fmt.Errorf("%w: %w", ErrFatal, err))
		}
		if found {
			st = row
		}
	}
	return im.thread(ctx, w, j.t, st)
}

// threadImported counts a thread whose last answer was recorded.
func (im *importer) threadImported() {
	im.c.imported.Add(1)
	im.noteDone(im.opts.Now())
}

func (im *importer) stopped() bool { return im.fatalErr() != nil }

func (im *importer) fatalErr() error {
	im.fatalMu.Lock()
	defer im.fatalMu.Unlock()
	return im.fatal
}

func (im *importer) summary(start time.Time, threads, messages int) *report.Summary {
	end := im.opts.Now()
	return &report.Summary{
		ThreadsTotal:   threads,
		Imported:       int(im.c.imported.Load()),
		AlreadyDone:    int(im.c.alreadyDone.Load()),
		Failed:         int(im.c.failed.Load()),
		Rejected:       int(im.c.rejected.Load()),
		Requests:       int(im.c.requests.Load()),
		Retries:        int(im.c.retries.Load()),
		RateLimited:    int(im.c.rateLimited.Load()),
		ElapsedSeconds: end.Sub(start).Seconds(),
		Messages:       messages,
		Duplicates:     im.a.Duplicates(),
		EventsImported: int(im.c.events.Load()),
		RejectedMsgs:   int(im.c.rejectedMsgs.Load()),
		Reconciled:     int(im.c.reconciled.Load()),
		Skipped:        int(im.c.skipped.Load()),
		RequestsByKind: report.Requests{Import: int(im.c.importReqs.Load()), EventsImport: int(im.c.eventsReqs.Load()), Uploads: int(im.c.uploads.Load())},
		StartedAt:      start.UTC().Format(time.RFC3339),
		FinishedAt:     end.UTC().Format(time.RFC3339),
		Shard:          im.opts.Shard.String(),
		OtherShards:    int(im.c.otherShards.Load()),
	}
}

// recordBad stores records that could not be read at all: each is a
// rejected pseudo-thread with an empty key, listed by failures.
func (im *importer) recordBad(ctx context.Context) error {
	if len(im.a.Bad) == 0 {
		return nil
	}
	if !im.opts.Shard.Owns(0, "") { // unreadable records have the empty key
		im.c.otherShards.Add(int64(len(im.a.Bad)))
		return nil
	}
	regs := make([]checkpoint.Registration, 0, len(im.a.Bad))
	for _, b := range im.a.Bad {
		regs = append(regs, checkpoint.Registration{Thread: checkpoint.Thread{
			Key: "", State: checkpoint.Rejected, Source: b.Err.Loc.String(), Rule: string(b.Err.Rule), Reason: b.Err.Err.Error(),
		}})
	}
	im.c.rejected.Add(int64(len(im.a.Bad)))
	if err := im.store.RegisterBatch(ctx, regs); err != nil {
		return fmt.Errorf("record unreadable records: %w", err)
	}
	return nil
}

// thread imports one thread; st is its checkpoint row when the run
// started (zero when it had none). It returns an error only when the
// whole run must stop.
func (im *importer) thread(ctx context.Context, w *worker, t thread.Thread, st checkpoint.Thread) (err error) {
	msgs, dups, err := im.a.LoadThread(t, sources.LoadOptions{})
	if err == nil {
		// A source rewritten since the scan reads as garbage: what was
		// loaded is only used once the file is known unchanged after.
		err = im.a.Unchanged(t)
	}
	if err != nil {
		if im.otherShard(0, t.Key) {
			return nil
		}
		if err := w.flush(ctx); err != nil {
			return err
		}
		rule := RuleRead
		if errors.Is(err, archive.ErrSourceChanged) {
			rule = RuleSourceChanged
		}
		return im.failNew(ctx, t, checkpoint.Failure{Rule: rule, Reason: err.Error()})
	}
	plan := im.opts.Mapper.Map(t.Key, msgs, dups)
	if im.otherShard(plan.TicketID, t.Key) {
		return nil // another shard's: nothing registered, nothing sent
	}
	reg := im.registration(plan)
	if !plan.Valid() {
		if err := w.flush(ctx); err != nil {
			return err
		}
		if err := im.store.RegisterBatch(ctx, []checkpoint.Registration{reg}); err != nil {
			return im.setFatal(fmt.Errorf("%w: %w", ErrFatal, err))
		}
		im.c.rejected.Add(1)
		if st.SideConversationID != "" {
			// Imported by an earlier run and invalid now (the config or the
			// archive changed): what landed stays; nothing more is sent.
			im.opts.Logger.Warn().Str("thread_key", plan.ThreadKey).Str("rule", plan.Rule).
				Msgf("thread was imported before and is now invalid, nothing sent: %s", plan.Reason)
			return nil
		}
		if err := im.store.MarkRejected(ctx, plan.ThreadKey, checkpoint.Failure{Rule: plan.Rule, Reason: plan.Reason}); err != nil {
			return im.setFatal(fmt.Errorf("%w: %w", ErrFatal, err))
		}
		im.opts.Logger.Info().Str("thread_key", plan.ThreadKey).Str("source", plan.Source.String()).Str("rule", plan.Rule).Msg(plan.Reason)
		return nil
	}
	if st.State == checkpoint.Failed && st.Rule == RuleSourceChanged {
		// Read again, unchanged this time: no `retry` needed.
		if err := w.flush(ctx); err != nil {
			return err
		}
		if err := im.store.Requeue(ctx, t.Key); err != nil {
			return im.setFatal(fmt.Errorf("%w: %w", ErrFatal, err))
		}
	}
	ticket := plan.TicketID
	if (st.SideConversationID != "" || st.Unresolved) && st.TicketID != 0 && st.TicketID != ticket {
		// Once a request may have landed, the thread's ticket is the one
		// it landed on (Register keeps it): its side conversation is there.
		im.opts.Logger.Warn().Str("thread_key", t.Key).Int64("ticket_id", st.TicketID).Int64("maps_to", ticket).
			Msg("thread maps to another ticket now; its new messages go to its side conversation on the ticket it was imported to")
		ticket = st.TicketID
	}
	var unlock func()
	if w.pending != nil && w.held != nil && w.heldTicket == ticket {
		// This worker holds the ticket already (its last thread's answer):
		// the lock goes on to this thread; the answer is recorded with
		// this thread's first write.
		unlock, w.held = w.held, nil
	} else {
		var ok bool
		if unlock, ok = im.locks.tryLock(ticket); !ok {
			// Another worker is writing to this ticket: record the held
			// answer (and release its ticket) rather than keep it while
			// waiting.
			if err := w.flush(ctx); err != nil {
				return err
			}
			if unlock, err = im.locks.lock(ctx, ticket); err != nil {
				return nil // stopping
			}
		}
	}
	p := &posting{im: im, w: w, t: t, plan: plan, reg: reg, ticket: ticket, unlock: unlock}
	defer func() {
		if derr := p.done(ctx); err == nil {
			err = derr
		}
	}()
	return p.run(ctx)
}

// registration is what the checkpoint records of a mapped thread: the
// thread and its messages, importable ones pending.
func (im *importer) registration(plan *mapping.Plan) checkpoint.Registration {
	th := checkpoint.Thread{
		Key: plan.ThreadKey, TicketID: plan.TicketID, State: checkpoint.Pending,
		EventsTotal: len(plan.Events), Subject: plan.SideConversation.Subject, Source: plan.Source.String(),
	}
	msgs := make([]checkpoint.Message, 0, len(plan.Events)+len(plan.Rejected))
	for i, e := range plan.Events {
		msgs = append(msgs, checkpoint.Message{ThreadKey: plan.ThreadKey, Key: e.Key, Seq: i, State: checkpoint.MessagePending, Source: e.Source.String()})
	}
	for i, r := range plan.Rejected {
		if r.Duplicate {
			// A duplicate has the key of the message it repeats, which is
			// registered already: the ledger holds one row per key.
			continue
		}
		im.c.rejectedMsgs.Add(1)
		msgs = append(msgs, checkpoint.Message{ThreadKey: plan.ThreadKey, Key: r.Key, Seq: len(plan.Events) + i, State: checkpoint.MessageRejected, Source: r.Source.String(), Rule: r.Rule, Reason: r.Reason})
	}
	return checkpoint.Registration{Thread: th, Messages: msgs}
}

// failRequest fails the thread of plan after a request failed; key is
// the row the request was for.
func (im *importer) failRequest(ctx context.Context, plan *mapping.Plan, key string, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	if stop := im.stopRun(ctx, key, err, false); stop != nil {
		return stop
	}
	f, fatal := im.requestFailure(plan, err)
	if fatal != nil {
		return fatal
	}
	return im.failThread(ctx, key, f)
}

// requestFailure is the failure a thread records for a request's error,
// logged; or the error that stops the run (authentication refused).
func (im *importer) requestFailure(plan *mapping.Plan, err error) (checkpoint.Failure, error) {
	if zendesk.IsStatus(err, 401) {
		return checkpoint.Failure{}, im.setFatal(fmt.Errorf("%w: authentication refused: %w", ErrFatal, err))
	}
	f := checkpoint.Failure{Rule: RuleHTTP, Reason: err.Error()}
	var apiErr *zendesk.APIError
	if errors.As(err, &apiErr) {
		f.HTTPStatus = apiErr.Status
		f.RequestID = apiErr.RequestID
		f.Excerpt = apiErr.Body
		im.opts.Logger.Warn().Str("thread_key", plan.ThreadKey).Int64("ticket_id", plan.TicketID).
			Int("status", apiErr.Status).Str("request_id", apiErr.RequestID).Str("api_warn", apiErr.APIWarn).
			Msg("thread failed")
	} else {
		im.opts.Logger.Warn().Err(err).Str("thread_key", plan.ThreadKey).Int64("ticket_id", plan.TicketID).Msg("thread failed")
	}
	return f, nil
}

// stopRun returns the error that stops the whole run when err says
// nothing about this thread but about every request: Zendesk asked to
// pause longer than allowed (ErrPaused), or the account or zendesk.url is
// wrong (a redirect, a 403 on a write: ErrFatal, with what to check).
// Stopping at the first one saves failing every thread for it. The thread
// is left for the next run: when err answers the write recorded in flight
// (written) and proves it was not processed, the thread is pending again;
// otherwise it stays as it is (in flight: looked up first next run).
func (im *importer) stopRun(ctx context.Context, key string, err error, written bool) error {
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
		if merr := im.store.MarkNotSent(context.WithoutCancel(ctx), key); merr != nil {
			return im.setFatal(fmt.Errorf("%w: %w", ErrFatal, merr))
		}
	}
	im.opts.Logger.Error().Err(err).Str("thread_key", key).Msg("stopping the run: not this thread's problem, every request would meet it")
	return im.setFatal(stop)
}

// failNew fails a thread that may not be registered yet: its messages
// could not be read again (the file changed or went away during the run)
// or the import panicked before registering it. It is registered first,
// so that failures lists it and retry takes it up, instead of the refused
// state change stopping the whole run. A done thread (its new messages
// could not be read) stays done: it is looked at again by the next run.
func (im *importer) failNew(ctx context.Context, t thread.Thread, f checkpoint.Failure) error {
	ctx = context.WithoutCancel(ctx)
	row, found, err := im.store.Thread(ctx, t.Key)
	if err != nil {
		return im.setFatal(fmt.Errorf("%w: %w", ErrFatal, err))
	}
	if !found || row.State == checkpoint.Rejected {
		th := checkpoint.Thread{Key: t.Key, State: checkpoint.Pending, TicketID: row.TicketID, Subject: row.Subject}
		if len(t.Members) > 0 {
			th.Source = im.a.Envelope(t.Members[0]).Loc.String()
		}
		if err := im.store.Register(ctx, th, nil); err != nil {
			return im.setFatal(fmt.Errorf("%w: %w", ErrFatal, err))
		}
	}
	return im.failThread(ctx, t.Key, f)
}

// failThread marks the thread row key failed. A done row stays done
// (what it imported is complete; it is looked at again by the next run,
// since its archive holds other keys now): the failure is counted and
// logged.
func (im *importer) failThread(ctx context.Context, key string, f checkpoint.Failure) error {
	ctx = context.WithoutCancel(ctx)
	im.c.failed.Add(1)
	err := im.store.MarkFailed(ctx, key, f)
	if errors.Is(err, checkpoint.ErrTransition) {
		if row, found, rerr := im.store.Thread(ctx, key); rerr == nil && found && row.State == checkpoint.Done {
			im.opts.Logger.Warn().Str("thread_key", key).Str("rule", f.Rule).Msgf("new messages of an imported thread not sent: %s", f.Reason)
			return nil
		}
	}
	if err != nil {
		return im.setFatal(fmt.Errorf("%w: %w", ErrFatal, err))
	}
	return nil
}

// setFatal records the first error that must stop the run and returns
// it, so that the pool cancels the other workers.
func (im *importer) setFatal(err error) error {
	im.fatalMu.Lock()
	defer im.fatalMu.Unlock()
	if im.fatal == nil {
		im.fatal = err
	}
	return err
}
