package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sourcegraph/conc/pool"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/mapping/thread"
	"github.com/threadlift/threadlift/pipeline/archive"
	"github.com/threadlift/threadlift/pipeline/report"
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
	requestStats
	imported, alreadyDone, failed, rejected atomic.Int64
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
	a     *archive.Archive // the archive, or the chunk being worked on
	c     counters
	// A read in chunks (chunks.go): the chunks, the duplicates of the
	// chunks before this one, and the done threads the run began with.
	chunks      *archive.Chunks
	chunkDups   int
	doneAtStart *checkpoint.DoneSet
	// copies are the records not imported, for the failures folder.
	copies failedCopies
	locks  ticketLocks
	vouch  *vouch
	// fresh is true when the checkpoint held no thread when the run
	// started (a first import): see posting.rows.
	fresh bool
	fatal firstError // the error that stops the run

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

	resume, run, err := im.open(ctx)
	defer im.closeArchive()
	if err != nil {
		return nil, err
	}
	// Runs last: nothing is in flight once Import returns.
	defer im.endRun(ctx)
	if err := im.prepare(ctx, run, resume); err != nil {
		return nil, err
	}
	rc := newRunContexts(ctx, opts)
	defer rc.release()
	err = im.work(ctx, rc, resume)
	im.recordScanAfter(ctx)
	err = im.moreChunks(ctx, rc, err)
	return im.finish(ctx, start, rc, err)
}

// open reads the sources and the checkpoint's state, then begins the run.
// Both reads take long on a big resumed run (as does the checkpoint's
// integrity check, which Open may have started in the background) and
// do not depend on each other: they go on at once. im.a is set even when
// open fails.
func (im *importer) open(ctx context.Context) (*checkpoint.Resume, *checkpoint.Run, error) {
	type loaded struct {
		r   *checkpoint.Resume
		err error
	}
	// A backfill reads few threads: the checkpoint's state of those only
	// is read once they are known (resumeFor). Otherwise the whole state
	// is read while the sources are.
	backfill := im.backfillLikely(ctx)
	loadc := make(chan loaded, 1)
	if !backfill {
		go func() {
			r, err := im.store.Resume(ctx)
			loadc <- loaded{r, err}
		}()
	}
	o := im.opts
	a, err := im.readArchive(ctx)
	var ld loaded
	switch {
	case !backfill:
		ld = <-loadc
	case err == nil:
		ld.r, ld.err = im.resumeFor(ctx, a)
	}
	im.a = a
	// Nothing is written or sent before the checkpoint passed its check.
	if cerr := im.store.Check(ctx); cerr != nil && ctx.Err() == nil {
		return nil, nil, cerr
	}
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, nil, fmt.Errorf("read sources: %w", ErrInterrupted)
	case err != nil:
		return nil, nil, err
	case ctx.Err() != nil:
		return nil, nil, fmt.Errorf("read checkpoint: %w", ErrInterrupted)
	case ld.err != nil:
		return nil, nil, fmt.Errorf("read checkpoint: %w", ld.err)
	}
	// Nothing was written yet: mark the run started (the file "not clean"
	// until it ends) and learn whether the checkpoint can vouch for what
	// Zendesk holds.
	run, err := im.store.BeginRun(ctx, o.Account)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("begin run: %w", ErrInterrupted)
		}
		return nil, nil, err
	}
	return ld.r, run, nil
}

// backfillLikely says whether the import will likely read only what was
// appended to the sources: a scan is recorded and --full-read is off.
// An error here is ReadSince's to report.
func (im *importer) backfillLikely(ctx context.Context) bool {
	if im.opts.FullRead {
		return false
	}
	_, ok, err := im.store.ScanState(ctx)
	return ok && err == nil
}

// resumeFor reads the checkpoint's state for archive a: of its threads
// only when a holds what was appended (checkpoint.ResumeFor), else all
// of it.
func (im *importer) resumeFor(ctx context.Context, a *archive.Archive) (*checkpoint.Resume, error) {
	if !a.Appended() {
		return im.store.Resume(ctx)
	}
	return im.resumeOf(ctx, a)
}

// resumeOf reads the checkpoint's state of a's threads only
// (checkpoint.ResumeFor).
func (im *importer) resumeOf(ctx context.Context, a *archive.Archive) (*checkpoint.Resume, error) {
	keys := make([]string, 0, len(a.Threads))
	for _, t := range a.Threads {
		keys = append(keys, t.Key)
	}
	return im.store.ResumeFor(ctx, keys)
}

// endRun records the clean end of the run.
func (im *importer) endRun(ctx context.Context) {
	if err := im.store.EndRun(context.WithoutCancel(ctx)); err != nil {
		im.opts.Logger.Warn().Err(err).Msg("could not record the clean end of the run in the checkpoint (the next run then looks each ticket up before writing to it), or fold its WAL into the .db (copy both files as a backup)")
	}
}

// prepare readies the run once it has begun: how far the checkpoint is
// trusted, the metrics' last success, and what the sources hold that no
// worker handles (empty sources, records replaced by corrected copies,
// records that could not be read at all).
func (im *importer) prepare(ctx context.Context, run *checkpoint.Run, resume *checkpoint.Resume) error {
	opts := im.opts
	im.vouch = newVouch(run, opts.VouchProbes)
	im.logTrust(run)
	im.fresh = resume.Empty
	if opts.MetricsFile != "" {
		// The metrics' last success time starts from earlier runs'.
		last, err := im.store.LastDone(ctx)
		if err != nil {
			return fmt.Errorf("read checkpoint: %w", err)
		}
		if !last.IsZero() {
			im.noteDone(last)
		}
	}
	im.doneAtStart = resume.Done
	if err := im.prepareSources(ctx); err != nil {
		return err
	}
	untouched, _ := im.a.Untouched()
	im.c.alreadyDone.Add(int64(untouched))
	opts.Progress.Threads(len(im.a.Threads))
	return nil
}

// prepareSources handles what the archive (or chunk) holds that no
// worker does: the sources' issues (once every source was read), the
// records that corrected copies replace, and the unreadable records.
func (im *importer) prepareSources(ctx context.Context) error {
	if !im.a.Partial() {
		im.logSourceIssues()
	}
	if err := im.resolveSuperseded(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrFatal, err)
	}
	return im.recordBad(ctx)
}

// logSourceIssues logs what the sources hold that no worker handles:
// empty sources, messages left out as the config asks.
func (im *importer) logSourceIssues() {
	for _, is := range sourceIssues(im.a) {
		im.opts.Logger.Warn().Str("rule", is.Rule).Str("source", is.Source).Msg(is.Message)
	}
}

// runContexts are an import's contexts, one role each (contract §6):
//
//   - take ends when no new thread may start: at a signal (the caller's
//     context ends) or once Options.MaxDuration has passed;
//   - work is what the workers and their requests run under: it outlives
//     a signal by Options.StopTimeout, so that in-flight writes can finish
//     and be recorded, and ends at once when an error must stop the run
//     (stop).
//
// The feed also stops at such an error (importer.stopped).
type runContexts struct {
	take    context.Context
	work    context.Context
	stop    context.CancelFunc
	release func()
}

func newRunContexts(ctx context.Context, o Options) *runContexts {
	requests, cancelRequests := context.WithCancel(context.WithoutCancel(ctx))
	stopWatch := context.AfterFunc(ctx, func() {
		time.AfterFunc(o.StopTimeout, cancelRequests)
	})
	take, cancelTake := ctx, context.CancelFunc(func() {})
	if o.MaxDuration > 0 {
		take, cancelTake = context.WithTimeout(ctx, o.MaxDuration)
	}
	work, stop := context.WithCancel(requests)
	return &runContexts{take: take, work: work, stop: stop, release: func() {
		stop()
		cancelTake()
		stopWatch()
		cancelRequests()
	}}
}

// work runs Options.Workers workers on the threads the feed hands them,
// and returns the first error that stopped one.
func (im *importer) work(ctx context.Context, rc *runContexts, resume *checkpoint.Resume) error {
	jobs := make(chan job)
	p := pool.New().WithErrors().WithFirstError()
	for range im.opts.Workers {
		p.Go(func() error { return im.newWorker().loop(rc, jobs) })
	}
	im.feed(ctx, rc, resume, jobs)
	close(jobs)
	return p.Wait()
}

// feed hands the threads that have work left to the workers, in archive
// order, until every one was handed, no new thread may start (rc.take),
// or the run must stop.
func (im *importer) feed(ctx context.Context, rc *runContexts, resume *checkpoint.Resume, jobs chan<- job) {
	for _, t := range im.a.Threads {
		if rc.take.Err() != nil || im.stopped() {
			return
		}
		j, ok, err := im.job(ctx, t, resume)
		if err != nil {
			return
		}
		if !ok {
			continue
		}
		select {
		case jobs <- j:
		case <-rc.work.Done():
			return
		}
	}
}

// job says whether thread t has work left, and what a worker needs to
// know of it. A thread completed with exactly its message keys, and a
// failed thread (it waits for `threadlift retry`), have none; nor has any
// thread once --limit threads have been posted.
func (im *importer) job(ctx context.Context, t thread.Thread, resume *checkpoint.Resume) (j job, ok bool, err error) {
	st, seen := resume.Open[t.Key]
	hash, done := resume.Done.Lookup(t.Key)
	if done {
		complete, err := im.completeAsIs(ctx, t, hash)
		if err != nil {
			if ctx.Err() == nil {
				im.fatal.set(fmt.Errorf("%w: %w", ErrFatal, err))
			}
			return job{}, false, err
		}
		if complete {
			im.countComplete(t, t.Key)
			threadSkipped(im.opts.Progress)
			return job{}, false, nil
		}
		// Grown, joined or split since: its row is read by its worker.
		seen = true
	}
	if seen && st.State == checkpoint.Failed && st.Rule != RuleSourceChanged {
		// Failed threads wait for `threadlift retry`.
		im.c.failed.Add(1)
		threadSkipped(im.opts.Progress)
		return job{}, false, nil
	}
	if im.opts.Limit > 0 && im.c.posted.Load() >= int64(im.opts.Limit) {
		// --limit counts threads that sent a request (see reserve).
		im.c.skipped.Add(1)
		return job{}, false, nil
	}
	return job{t: t, st: st, seen: seen, grown: done}, true, nil
}

// completeAsIs reports whether a done thread, completed with the keys
// whose KeysHash is hash, still holds exactly those message keys.
func (im *importer) completeAsIs(ctx context.Context, t thread.Thread, hash string) (bool, error) {
	if im.a.HasCopy(t.Members) {
		// A corrected copy of a rejected message (corrections.go) adds no
		// key: the thread has grown by it until it is imported.
		all, err := im.copiesImported(ctx, t.Key, t.Members)
		if err != nil || !all {
			return false, err
		}
	}
	return hash != "" && hash == checkpoint.KeysHash(im.a.MessageKeys(t)), nil
}

// finish writes the run's summary (returned), the failures files and
// the run's record in the checkpoint, and returns the run's error:
// the fatal one, the workers' (poolErr), or ErrInterrupted.
func (im *importer) finish(ctx context.Context, start time.Time, rc *runContexts, poolErr error) (*report.Summary, error) {
	a := im.a
	untouchedThreads, untouchedMsgs := a.Untouched()
	sum := im.summary(start, len(a.Threads)+len(a.Bad)+untouchedThreads, a.Len()+len(a.Bad)+untouchedMsgs)
	interrupted := ctx.Err() != nil
	sum.Interrupted = interrupted
	sum.StoppedByMaxDuration = !interrupted && rc.take.Err() != nil
	fatal := im.fatal.get()
	var pause *zendesk.PauseError
	if errors.As(fatal, &pause) {
		sum.PausedUntil = pause.Until.UTC().Format(time.RFC3339)
	}
	im.failuresFiles(context.WithoutCancel(ctx), sum)
	if b, err := json.Marshal(sum); err == nil {
		if err := im.store.SaveRun(context.WithoutCancel(ctx), b); err != nil {
			im.opts.Logger.Warn().Err(err).Msg("could not save the run summary in the checkpoint")
		}
	}
	switch {
	case fatal != nil:
		return sum, fatal
	case poolErr != nil && !errors.Is(poolErr, context.Canceled):
		return sum, poolErr
	case interrupted:
		return sum, fmt.Errorf("import: %w", ErrInterrupted)
	}
	return sum, nil
}

// failuresFiles writes the failures files (writeFailures) and says so.
func (im *importer) failuresFiles(ctx context.Context, sum *report.Summary) {
	fo, err := im.writeFailures(ctx)
	switch {
	case err != nil:
		im.opts.Logger.Warn().Err(err).Msg("could not write the failures files next to the checkpoint")
	case fo.dir != "":
		sum.FailuresDir = fo.dir
		msg := "records that were not imported are copied to this folder: fix them, then add each file as a source of the same type, fields and thread_key_prefix as the file it is named after; each fixed record replaces its original"
		if fo.same {
			msg = "the records that were not imported are the same as in this folder, written by an earlier run: fix them there, then add each file as a source"
		}
		im.opts.Logger.Warn().Str("failures_dir", fo.dir).Int("records", fo.records).Msg(msg)
	}
}

// threadImported counts a thread whose last answer was recorded.
func (im *importer) threadImported() {
	im.c.imported.Add(1)
	im.noteDone(im.opts.Now())
}

// stopped reports whether an error stops the run.
func (im *importer) stopped() bool { return im.fatal.get() != nil }

// retrier is the run's retry loop, counting into the run's counters.
func (im *importer) retrier() *retrier { return newRetrier(&im.opts, &im.c.requestStats) }

// reserve takes one of the --limit slots for a thread about to send its
// first request: --limit counts threads posted, not threads looked at.
func (im *importer) reserve() bool {
	if im.opts.Limit <= 0 {
		im.c.posted.Add(1)
		return true
	}
	for {
		n := im.c.posted.Load()
		if n >= int64(im.opts.Limit) {
			return false
		}
		if im.c.posted.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// warn adds a warning to the run's summary.
func (im *importer) warn(i report.Issue) {
	im.warnMu.Lock()
	defer im.warnMu.Unlock()
	im.warningsTotal++
	if len(im.warnings) < maxWarnings {
		im.warnings = append(im.warnings, i)
	} else if len(im.warnings) == maxWarnings && im.warningsTotal == maxWarnings+1 {
		im.opts.Logger.Warn().Int("max", maxWarnings).Msg("more warnings than the summary lists: the log has every one")
	}
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
		Duplicates:     im.chunkDups + im.a.Duplicates(),
		EventsImported: int(im.c.events.Load()),
		RejectedMsgs:   int(im.c.rejectedMsgs.Load()),
		Reconciled:     int(im.c.reconciled.Load()),
		Skipped:        int(im.c.skipped.Load()),
		RequestsByKind: report.Requests{Import: int(im.c.importReqs.Load()), EventsImport: int(im.c.eventsReqs.Load()), Uploads: int(im.c.uploads.Load())},
		StartedAt:      start.UTC().Format(time.RFC3339),
		FinishedAt:     end.UTC().Format(time.RFC3339),
		Shard:          im.opts.Shard.String(),
		OtherShards:    int(im.c.otherShards.Load()),
		Warnings:       im.warnings,
		WarningsTotal:  im.warningsTotal,
	}
}

// recordBad stores records that could not be read at all: each is a
// rejected pseudo-thread with an empty key, listed by failures.
func (im *importer) recordBad(ctx context.Context) error {
	if len(im.a.Bad) == 0 {
		return nil
	}
	// An earlier chunk counted and registered those it read; registering
	// them again changes nothing (one row per location).
	counted := 0
	for _, b := range im.a.Bad {
		if !b.Recorded || im.chunks == nil {
			counted++
		}
	}
	if !im.opts.Shard.Owns(0, "") { // unreadable records have the empty key
		im.c.otherShards.Add(int64(counted))
		return nil
	}
	regs := make([]checkpoint.Registration, 0, len(im.a.Bad))
	for _, b := range im.a.Bad {
		regs = append(regs, checkpoint.Registration{Thread: checkpoint.Thread{
			Key: "", State: checkpoint.Rejected, Source: b.Err.Loc.String(), Rule: string(b.Err.Rule), Reason: b.Err.Err.Error(),
		}})
	}
	im.c.rejected.Add(int64(counted))
	if err := im.store.RegisterBatch(ctx, regs); err != nil {
		return fmt.Errorf("record unreadable records: %w", err)
	}
	return nil
}

// registration is planRegistration, counting the rejected messages.
func (im *importer) registration(plan *mapping.Plan, t thread.Thread) checkpoint.Registration {
	reg, rejected := planRegistration(plan)
	if im.chunks != nil && im.a.HoldsRecorded(t.Members) {
		// A thread handed again (chunks.go): its messages of earlier
		// chunks were counted then.
		recorded := map[string]bool{}
		for _, m := range t.Members {
			if im.a.FromRecord(m) {
				recorded[im.a.Key(m)] = true
			}
		}
		for _, r := range plan.Rejected {
			if !r.Duplicate && recorded[r.Key] {
				rejected--
			}
		}
	}
	im.c.rejectedMsgs.Add(int64(rejected))
	return reg
}

// planRegistration is what the checkpoint records of a mapped thread, for
// import and for verify --adopt alike: the thread pending, its importable
// messages pending, its rejected ones rejected (a duplicate is left out:
// it has the key of the message it repeats, which is registered already,
// and the checkpoint holds one row per key). It also returns how many
// messages are rejected.
func planRegistration(plan *mapping.Plan) (checkpoint.Registration, int) {
	th := checkpoint.Thread{
		Key: plan.ThreadKey, TicketID: plan.TicketID, State: checkpoint.Pending,
		EventsTotal: len(plan.Events), Subject: plan.SideConversation.Subject, Source: plan.Source.String(),
	}
	msgs := make([]checkpoint.Message, 0, len(plan.Events)+len(plan.Rejected))
	for i, e := range plan.Events {
		msgs = append(msgs, checkpoint.Message{ThreadKey: plan.ThreadKey, Key: e.Key, Seq: i, State: checkpoint.MessagePending, Source: e.Source.String()})
	}
	rejected := 0
	for i, r := range plan.Rejected {
		if r.Duplicate {
			continue
		}
		rejected++
		msgs = append(msgs, checkpoint.Message{ThreadKey: plan.ThreadKey, Key: r.Key, Seq: len(plan.Events) + i, State: checkpoint.MessageRejected, Source: r.Source.String(), Rule: r.Rule, Reason: r.Reason})
	}
	return checkpoint.Registration{Thread: th, Messages: msgs}, rejected
}
