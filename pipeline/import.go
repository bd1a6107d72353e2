package pipeline

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sourcegraph/conc/pool"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/mapping/thread"
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
	a     *archive
	c     counters
	locks ticketLocks

	fatalMu sync.Mutex
	fatal   error
}

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
	a, err := readArchive(ctx, opts.Sources, opts.Read, opts.Threading, opts.Progress.ReadBytes)
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
	for _, is := range a.emptySources() {
		opts.Logger.Warn().Str("rule", is.Rule).Str("source", is.Source).Msg(is.Message)
	}
	if err := im.resolveSuperseded(ctx); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFatal, err)
	}
	if err := im.recordBad(ctx); err != nil {
		return nil, err
	}
	opts.Progress.Threads(len(a.threads))

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
	for _, t := range a.threads {
		if takeCtx.Err() != nil || im.stopped() {
			break
		}
		st, seen := resume.Open[t.Key]
		n, done := resume.Done[t.Key]
		if done {
			// A corrected copy of a rejected message (corrections.go) adds
			// no key: the thread has grown by it until it is imported.
			copied := false
			if a.hasCopy(t.Members) {
				all, err := im.copiesImported(ctx, t.Key, t.Members)
				if err != nil {
					if ctx.Err() == nil {
						im.setFatal(fmt.Errorf("%w: %w", ErrFatal, err))
					}
					break
				}
				copied = !all
			}
			keys := distinct(a.messageKeys(t))
			if keys > n && !copied {
				// More keys than its events: rejected messages, or grown.
				if n, err = store.MessageCount(ctx, t.Key); err != nil {
					if ctx.Err() == nil {
						im.setFatal(fmt.Errorf("%w: %w", ErrFatal, err))
					}
					break
				}
			}
			if n >= keys && !copied {
				im.c.alreadyDone.Add(1)
				opts.Progress.ThreadDone()
				continue
			}
			seen = true // grown since: its row is read by its worker
		}
		if seen && st.State == checkpoint.Failed {
			// Failed threads wait for `threadlift retry`.
			im.c.failed.Add(1)
			opts.Progress.ThreadDone()
			continue
		}
		if opts.Limit > 0 && im.c.posted.Load() >= int64(opts.Limit) {
			im.c.skipped.Add(1)
			continue
		}
		if opts.Limit > 0 && opts.Shard.Sharded() && !seen && !im.ownsThread(t) {
			// --limit counts this shard's threads only: learn the owner first.
			im.c.otherShards.Add(1)
			opts.Progress.ThreadDone()
			continue
		}
		im.c.posted.Add(1)
		select {
		case jobs <- job{t: t, st: st, seen: seen, grown: done}:
		case <-runCtx.Done():
			break feed
		}
	}
	close(jobs)
	err = p.Wait()

	sum := im.summary(start, len(a.threads)+len(a.bad), a.idx.len()+len(a.bad))
	interrupted := ctx.Err() != nil
	sum.Interrupted = interrupted
	sum.StoppedByMaxDuration = !interrupted && takeCtx.Err() != nil
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
// (seen), or, for a done thread that has grown since (grown), a row to read.
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
type worker struct {
	im      *importer
	pending *checkpoint.Completion
}

// flush records the held answer, if any.
func (w *worker) flush(ctx context.Context) error {
	if w.pending == nil {
		return nil
	}
	c := w.pending
	// Recorded even when the run is stopping: the server said yes.
	if err := w.im.store.MarkCreatedDone(context.WithoutCancel(ctx), c.Key, c.SideConversationID, c.MessageKeys); err != nil {
		return w.im.setFatal(fmt.Errorf("%w: %w", ErrFatal, err))
	}
	w.pending = nil
	w.im.threadImported()
	return nil
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
	return im.thread(ctx, w, j.t, st, j.seen)
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
	if len(im.a.bad) == 0 {
		return nil
	}
	if !im.opts.Shard.Owns(0, "") { // unreadable records have the empty key
		im.c.otherShards.Add(int64(len(im.a.bad)))
		return nil
	}
	regs := make([]checkpoint.Registration, 0, len(im.a.bad))
	for _, b := range im.a.bad {
		regs = append(regs, checkpoint.Registration{Thread: checkpoint.Thread{
			Key: "", State: checkpoint.Rejected, Source: b.err.Loc.String(), Rule: b.err.Rule, Reason: b.err.Err.Error(),
		}})
	}
	im.c.rejected.Add(int64(len(im.a.bad)))
	if err := im.store.RegisterBatch(ctx, regs); err != nil {
		return fmt.Errorf("record unreadable records: %w", err)
	}
	return nil
}

// thread imports one thread. seen says whether the checkpoint knew it
// when the run started (st is then its row). It returns an error only
// when the whole run must stop.
func (im *importer) thread(ctx context.Context, w *worker, t thread.Thread, st checkpoint.Thread, seen bool) error {
	msgs, dups, err := im.a.loadThread(t, sources.LoadOptions{})
	if err != nil {
		if im.otherShard(0, t.Key) {
			return nil
		}
		if err := w.flush(ctx); err != nil {
			return err
		}
		return im.failNew(ctx, t, checkpoint.Failure{Rule: RuleRead, Reason: err.Error()})
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
	unlock, ok := im.locks.tryLock(plan.TicketID)
	if !ok {
		// Another worker is writing to this ticket: record the held answer
		// rather than keep it while waiting.
		if err := w.flush(ctx); err != nil {
			return err
		}
		if unlock, err = im.locks.lock(ctx, plan.TicketID); err != nil {
			return nil // stopping
		}
	}
	defer unlock()
	return im.post(ctx, w, plan, st, seen, reg)
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

// post registers a valid thread and sends its pending events: one import
// request, then events/import requests, each recorded before it is sent
// and after the server said yes. Whenever a write's outcome is unknown,
// the ticket is read back before anything is sent again.
//
// The registration goes into the same transaction as the first
// write-ahead record when nothing else needs the thread registered
// before (a reconciliation, an attachment upload), together with the
// worker's held answer to its previous thread: one durable write. The
// answer to the last request marks the thread done, and is held by the
// worker in turn (see worker).
func (im *importer) post(ctx context.Context, w *worker, plan *mapping.Plan, st checkpoint.Thread, seen bool, reg checkpoint.Registration) error {
	key := plan.ThreadKey
	registered := false
	register := func() error {
		if registered {
			return nil
		}
		if err := w.flush(ctx); err != nil {
			return err
		}
		if err := im.store.RegisterBatch(ctx, []checkpoint.Registration{reg}); err != nil {
			return im.setFatal(fmt.Errorf("%w: %w", ErrFatal, err))
		}
		registered = true
		return nil
	}
	// A thread the checkpoint did not know when the run started has
	// nothing imported and no upload recorded: only this worker writes it.
	// (Were it otherwise, MarkInFlight would refuse to send an imported
	// message again.)
	imported := map[string]bool{}
	if seen {
		var err error
		if imported, err = im.store.ImportedMessages(ctx, key); err != nil {
			return im.setFatal(fmt.Errorf("%w: %w", ErrFatal, err))
		}
	}
	scID := st.SideConversationID
	// A request of this thread may have landed without us knowing (a kill,
	// a timeout, a 5xx): look on the ticket before sending anything.
	reconcile := st.Unresolved || st.State == checkpoint.InFlight
	if seen || reconcile {
		// A thread the checkpoint knew, or one to reconcile, is written
		// with MarkInFlight or MarkMessagesImported, which do not carry
		// the held answer: record it first. Only a new thread's
		// RegisterInFlight takes it along.
		if err := w.flush(ctx); err != nil {
			return err
		}
	}
	n := im.opts.Mapper.MaxEventsPerRequest()
	attempts := 0
	done := false
	var uploads map[string]map[int]checkpoint.Upload
	for {
		if ctx.Err() != nil {
			return nil // the thread stays in flight; the next run reconciles it
		}
		if reconcile {
			if err := register(); err != nil {
				return err
			}
			id, present, err := im.reconcile(ctx, plan)
			if err != nil {
				return im.failRequest(ctx, plan, err)
			}
			im.c.reconciled.Add(1)
			if id != "" {
				scID = id
				var keys []string
				for _, e := range plan.Events {
					if present[e.Key] && !imported[e.Key] {
						keys = append(keys, e.Key)
						imported[e.Key] = true
					}
				}
				if err := im.store.MarkMessagesImported(ctx, key, scID, keys); err != nil {
					return im.setFatal(fmt.Errorf("%w: %w", ErrFatal, err))
				}
				im.c.events.Add(int64(len(keys)))
			} else if err := im.store.MarkNotSent(ctx, key); err != nil {
				return im.setFatal(fmt.Errorf("%w: %w", ErrFatal, err))
			}
			reconcile = false
		}

		var pending []mapping.Event
		for _, e := range plan.Events {
			if !imported[e.Key] {
				pending = append(pending, e)
			}
		}
		if len(pending) == 0 {
			break
		}
		chunk := slices.Clone(pending[:min(n, len(pending))])
		keys := make([]string, len(chunk))
		hasUploads := false
		for i, e := range chunk {
			keys[i] = e.Key
			hasUploads = hasUploads || len(e.Upload) > 0
		}

		if hasUploads {
			if err := register(); err != nil { // RecordUpload needs the thread; flushes
				return err
			}
			if uploads == nil {
				uploads = map[string]map[int]checkpoint.Upload{}
				if seen {
					var err error
					if uploads, err = im.store.Uploads(ctx, key); err != nil {
						return im.setFatal(fmt.Errorf("%w: %w", ErrFatal, err))
					}
				}
			}
			if err := im.uploadAttachments(ctx, plan, chunk, uploads); err != nil {
				switch {
				case ctx.Err() != nil || im.stopped():
					return nil
				case errors.Is(err, errAttachmentRead):
					return im.failThread(ctx, key, checkpoint.Failure{Rule: RuleRead, Reason: err.Error()})
				}
				return im.failRequest(ctx, plan, err)
			}
		}

		kind := checkpoint.KindImport
		if scID != "" {
			kind = checkpoint.KindEventsImport
		}
		// The write-ahead record: durable before the request is sent.
		var err error
		if registered {
			err = im.store.MarkInFlight(ctx, key, kind, keys)
		} else if err = im.store.RegisterInFlight(ctx, w.pending, reg, kind, keys); err == nil && w.pending != nil {
			w.pending = nil
			im.threadImported()
		}
		if err != nil {
			return im.setFatal(fmt.Errorf("%w: %w", ErrFatal, err))
		}
		registered = true
		im.c.requests.Add(1)
		var resp *zendesk.ImportResponse
		if kind == checkpoint.KindImport {
			im.c.importReqs.Add(1)
			resp, err = im.api.Import(ctx, plan.TicketID, plan.ImportRequest(chunk))
			if err == nil && (resp.SideConversation == nil || resp.SideConversation.ID == "") {
				// Accepted but without an id we can use: look it up, within
				// the attempt budget in case it never shows up.
				if attempts++; attempts >= im.opts.MaxAttempts {
					return im.failThread(ctx, key, checkpoint.Failure{Rule: RuleHTTP, Reason: "import accepted without a side conversation id, and none found on the ticket"})
				}
				reconcile = true
				continue
			}
		} else {
			im.c.eventsReqs.Add(1)
			resp, err = im.api.ImportEvents(ctx, plan.TicketID, scID, mapping.EventsRequest(chunk))
		}
		if err == nil {
			if kind == checkpoint.KindImport {
				scID = resp.SideConversation.ID
			}
			// The last chunk: every event is imported once this is
			// recorded, with the worker's next write.
			done = len(chunk) == len(pending)
			if done {
				w.pending = &checkpoint.Completion{Key: key, SideConversationID: scID, MessageKeys: keys}
			} else if err := im.store.MarkCreated(context.WithoutCancel(ctx), key, scID, keys); err != nil {
				// Recorded even when the run is stopping: the server said yes.
				return im.setFatal(fmt.Errorf("%w: %w", ErrFatal, err))
			}
			for _, k := range keys {
				imported[k] = true
			}
			im.c.events.Add(int64(len(keys)))
			attempts = 0
			continue
		}

		attempts++
		if ctx.Err() != nil {
			return nil // stopping mid-request: in flight, reconciled next run
		}
		switch {
		case zendesk.IsStatus(err, 401):
			return im.setFatal(fmt.Errorf("%w: authentication refused: %w", ErrFatal, err))
		case zendesk.IsStatus(err, 413) && n > 1:
			n /= 2
			attempts = 0
			im.opts.Logger.Warn().Str("thread_key", key).Int("events_per_request", n).Msg("request too large (413): halving events per request")
			continue
		case zendesk.IsStatus(err, 429):
			im.c.rateLimited.Add(1)
		}
		retry, wait := zendesk.Retryable(err)
		if !retry || attempts >= im.opts.MaxAttempts {
			return im.failRequest(ctx, plan, err)
		}
		im.c.retries.Add(1)
		if zendesk.OutcomeUnknown(err) {
			reconcile = true
		}
		im.opts.Logger.Debug().Err(err).Str("thread_key", key).Int("attempt", attempts).Msg("retrying")
		// With a Retry-After the client has closed its gate for every
		// worker already; without one, back off with full jitter.
		if wait == 0 {
			if sleep(ctx, backoff(attempts, im.opts.BackoffBase, im.opts.BackoffMax)) != nil {
				return nil
			}
		}
	}
	if !done {
		if err := register(); err != nil {
			return err
		}
		if err := im.store.MarkDone(ctx, key); err != nil {
			return im.setFatal(fmt.Errorf("%w: %w", ErrFatal, err))
		}
		im.threadImported()
	}
	return nil
}

// reconcile reads the ticket's side conversations and returns the id of
// the one holding this thread's key and the message keys of its events.
func (im *importer) reconcile(ctx context.Context, plan *mapping.Plan) (string, map[string]bool, error) {
	for attempt := 1; ; attempt++ {
		im.c.requests.Add(1)
		scs, events, err := im.api.ListSideConversations(ctx, plan.TicketID)
		if err == nil {
			id := ""
			for _, sc := range scs {
				if sc.ExternalIDs[zendesk.ThreadKeyField] == plan.ThreadKey {
					id = sc.ID
					break
				}
			}
			present := make(map[string]bool)
			for _, e := range events {
				if id != "" && e.SideConversationID == id && e.Message != nil {
					if k := e.Message.ExternalIDs[zendesk.MessageKeyField]; k != "" {
						present[k] = true
					}
				}
			}
			return id, present, nil
		}
		if zendesk.IsStatus(err, 429) {
			im.c.rateLimited.Add(1)
		}
		retry, wait := zendesk.Retryable(err)
		if !retry || attempt >= im.opts.MaxAttempts || ctx.Err() != nil {
			return "", nil, fmt.Errorf("look up thread %s on ticket %d: %w", plan.ThreadKey, plan.TicketID, err)
		}
		im.c.retries.Add(1)
		if wait == 0 {
			if err := sleep(ctx, backoff(attempt, im.opts.BackoffBase, im.opts.BackoffMax)); err != nil {
				return "", nil, err
			}
		}
	}
}

func (im *importer) failRequest(ctx context.Context, plan *mapping.Plan, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	if zendesk.IsStatus(err, 401) {
		return im.setFatal(fmt.Errorf("%w: authentication refused: %w", ErrFatal, err))
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
	return im.failThread(ctx, plan.ThreadKey, f)
}

// failNew fails a thread that may not be registered yet: its messages
// could not be read again (the file changed or went away during the run)
// or the import panicked before registering it. It is registered first,
// so that failures lists it and retry takes it up, instead of the refused
// state change stopping the whole run.
func (im *importer) failNew(ctx context.Context, t thread.Thread, f checkpoint.Failure) error {
	ctx = context.WithoutCancel(ctx)
	_, found, err := im.store.Thread(ctx, t.Key)
	if err != nil {
		return im.setFatal(fmt.Errorf("%w: %w", ErrFatal, err))
	}
	if !found {
		th := checkpoint.Thread{Key: t.Key, State: checkpoint.Pending}
		if len(t.Members) > 0 {
			th.Source = im.a.idx.envelope(t.Members[0]).Loc.String()
		}
		if err := im.store.Register(ctx, th, nil); err != nil {
			return im.setFatal(fmt.Errorf("%w: %w", ErrFatal, err))
		}
	}
	return im.failThread(ctx, t.Key, f)
}

func (im *importer) failThread(ctx context.Context, key string, f checkpoint.Failure) error {
	im.c.failed.Add(1)
	if err := im.store.MarkFailed(context.WithoutCancel(ctx), key, f); err != nil {
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

// distinct counts the distinct keys. It runs for every done thread of a
// resumed run: small threads, the common case, are counted without a map.
func distinct(keys []string) int {
	if len(keys) <= 16 {
		n := 0
	next:
		for i, k := range keys {
			for _, prev := range keys[:i] {
				if prev == k {
					continue next
				}
			}
			n++
		}
		return n
	}
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		seen[k] = true
	}
	return len(seen)
}
