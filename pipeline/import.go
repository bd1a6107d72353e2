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
	a, err := readArchive(ctx, opts.Sources, opts.Read, opts.Threading, opts.Progress.ReadBytes)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("read sources: %w", ErrInterrupted)
		}
		return nil, err
	}
	defer a.Close()
	im.a = a

	states, err := store.Threads(ctx)
	if err != nil {
		return nil, fmt.Errorf("read checkpoint: %w", err)
	}
	known, err := store.MessageTotals(ctx)
	if err != nil {
		return nil, fmt.Errorf("read checkpoint: %w", err)
	}
	im.seedLastDone(states)
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
	p := pool.New().WithContext(reqCtx).WithMaxGoroutines(opts.Workers).WithCancelOnError()
	for _, t := range a.threads {
		if takeCtx.Err() != nil || im.stopped() {
			break
		}
		st, seen := states[t.Key]
		if seen && st.State == checkpoint.Done && known[t.Key] >= len(uniq(a.messageKeys(t))) {
			im.c.alreadyDone.Add(1)
			opts.Progress.ThreadDone()
			continue
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
		p.Go(func(pctx context.Context) (err error) {
			defer opts.Progress.ThreadDone()
			if takeCtx.Err() != nil || pctx.Err() != nil {
				return nil // stopping: leave the thread for the next run
			}
			defer func() {
				if r := recover(); r != nil {
					err = im.failThread(pctx, t.Key, checkpoint.Failure{
						Rule: RulePanic, Reason: fmt.Sprintf("internal error: %v", r),
					})
					opts.Logger.Error().Str("thread_key", t.Key).Str("stack", string(debug.Stack())).Msgf("panic while importing thread: %v", r)
				}
			}()
			return im.thread(pctx, t, st)
		})
	}
	err = p.Wait()

	sum := im.summary(start, len(a.threads)+len(a.bad), a.idx.len()+len(a.bad))
	interrupted := ctx.Err() != nil
	sum.Interrupted = interrupted
	sum.StoppedByMaxDuration = !interrupted && takeCtx.Err() != nil
	if werr := im.writeFailures(context.WithoutCancel(ctx)); werr != nil {
		opts.Logger.Warn().Err(werr).Msg("could not write the failures files next to the checkpoint")
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

// thread imports one thread. It returns an error only when the whole run
// must stop.
func (im *importer) thread(ctx context.Context, t thread.Thread, st checkpoint.Thread) error {
	msgs, dups, err := im.a.loadThread(t)
	if err != nil {
		if im.otherShard(0, t.Key) {
			return nil
		}
		return im.failThread(ctx, t.Key, checkpoint.Failure{Rule: RuleRead, Reason: err.Error()})
	}
	plan := im.opts.Mapper.Map(t.Key, msgs, dups)
	if im.otherShard(plan.TicketID, t.Key) {
		return nil // another shard's: nothing registered, nothing sent
	}
	if err := im.register(ctx, plan); err != nil {
		return err
	}
	if !plan.Valid() {
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
	unlock, err := im.locks.lock(ctx, plan.TicketID)
	if err != nil {
		return nil // stopping
	}
	defer unlock()
	return im.post(ctx, plan, st)
}

func (im *importer) register(ctx context.Context, plan *mapping.Plan) error {
	th := checkpoint.Thread{
		Key: plan.ThreadKey, TicketID: plan.TicketID, State: checkpoint.Pending,
		EventsTotal: len(plan.Events), Subject: plan.SideConversation.Subject, Source: plan.Source.String(),
	}
	var msgs []checkpoint.Message
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
	if err := im.store.Register(ctx, th, msgs); err != nil {
		return im.setFatal(fmt.Errorf("%w: %w", ErrFatal, err))
	}
	return nil
}

// post sends a valid thread's pending events: one import request, then
// events/import requests, each recorded before it is sent and after the
// server said yes. Whenever a write's outcome is unknown, the ticket is
// read back before anything is sent again.
func (im *importer) post(ctx context.Context, plan *mapping.Plan, st checkpoint.Thread) error {
	key := plan.ThreadKey
	imported, err := im.store.ImportedMessages(ctx, key)
	if err != nil {
		return im.setFatal(fmt.Errorf("%w: %w", ErrFatal, err))
	}
	scID := st.SideConversationID
	// A request of this thread may have landed without us knowing (a kill,
	// a timeout, a 5xx): look on the ticket before sending anything.
	reconcile := st.Unresolved || st.State == checkpoint.InFlight
	n := im.opts.Mapper.MaxEventsPerRequest()
	attempts := 0
	var uploads map[string]map[int]checkpoint.Upload
	for {
		if ctx.Err() != nil {
			return nil // the thread stays in flight; the next run reconciles it
		}
		if reconcile {
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
		for i, e := range chunk {
			keys[i] = e.Key
		}

		if uploads == nil {
			if uploads, err = im.store.Uploads(ctx, key); err != nil {
				return im.setFatal(fmt.Errorf("%w: %w", ErrFatal, err))
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

		kind := "import"
		if scID != "" {
			kind = "events_import"
		}
		if err := im.store.MarkInFlight(ctx, key, kind, keys); err != nil {
			return im.setFatal(fmt.Errorf("%w: %w", ErrFatal, err))
		}
		im.c.requests.Add(1)
		var resp *zendesk.ImportResponse
		if kind == "import" {
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
			if kind == "import" {
				scID = resp.SideConversation.ID
			}
			if err := im.store.MarkCreated(ctx, key, scID, keys); err != nil {
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
	if err := im.store.MarkDone(ctx, key); err != nil {
		return im.setFatal(fmt.Errorf("%w: %w", ErrFatal, err))
	}
	im.c.imported.Add(1)
	im.noteDone(im.opts.Now())
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

func uniq(keys []string) []string {
	seen := make(map[string]bool, len(keys))
	out := keys[:0:0]
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}
