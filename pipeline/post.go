package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/mapping/thread"
	"github.com/threadlift/threadlift/pipeline/report"
	"github.com/threadlift/threadlift/zendesk"
)

// posting sends one valid thread, holding its ticket's lock.
//
// What is sent is decided from the checkpoint's rows of the ticket, not
// from the thread alone (contract §6: no message key is ever posted twice
// to a ticket, whatever thread it ends up in). checkpoint.Parts finds the
// rows of the ticket that hold any of the thread's message keys: its own
// row, and the parts of other threads it was imported as, when a backfill
// joined threads imported separately or a thread split off one. Messages
// imported in any part stay where they are and are never sent again; the
// others go to the side conversation of the earliest imported part (the
// target), under that part's row and thread key, or to a side conversation
// of the thread's own when no part has one. Parts never sent are absorbed.
//
// Whenever a part's last request has an unknown outcome, or the checkpoint
// cannot vouch for the ticket (see vouch), the ticket is listed first and
// what it holds recorded (checkpoint.RecordTicket), before anything is
// sent.
type posting struct {
	im     *importer
	w      *worker
	t      thread.Thread
	plan   *mapping.Plan
	reg    checkpoint.Registration
	ticket int64
	unlock func() // the ticket's lock; passed on to the worker with a held answer

	key  string // the thread's key
	hash string // checkpoint.KeysHash of its message keys

	mustList   bool      // a request's outcome is unknown: list the ticket before going on
	settle     time.Time // a request got no answer: list the ticket no sooner than this (Options.Settle)
	listed     bool      // the ticket was listed for this thread
	registered bool      // the thread's messages are registered in the row written to
	warned     bool
	reserved   bool // a --limit slot is taken
	sent       bool // a request was sent for this thread
	attempts   int  // failed attempts of the current request
	n          int  // events per request
	held       bool // the last answer is held by the worker, with the lock
}

// errLookAgain makes run read the ticket's rows again (after a listing).
var errLookAgain = errors.New("look at the ticket again")

// done ends the posting: a --limit slot not used goes back, and the
// ticket is released unless the worker holds it with the last answer.
// When the worker's previous answer was for this ticket and is still
// held (the lock came with it), it is recorded first.
func (p *posting) done(ctx context.Context) error {
	if p.reserved && !p.sent {
		p.im.c.posted.Add(-1)
	}
	if p.held {
		return nil
	}
	var err error
	if p.w.pending != nil && p.w.held == nil {
		err = p.w.flush(ctx)
	}
	p.unlock()
	return err
}

func (p *posting) fatal(err error) error {
	return p.im.setFatal(fmt.Errorf("%w: %w", ErrFatal, err))
}

func (p *posting) run(ctx context.Context) error {
	im := p.im
	p.key = p.plan.ThreadKey
	p.hash = checkpoint.KeysHash(im.a.MessageKeys(p.t))
	p.n = im.opts.Mapper.MaxEventsPerRequest()
	keys := make([]string, len(p.plan.Events))
	for i, e := range p.plan.Events {
		keys[i] = e.Key
	}
	for {
		if ctx.Err() != nil {
			return nil // stopping: what is in flight is reconciled next run
		}
		var own *checkpoint.Part
		var parts []checkpoint.Part
		// A first import needs no lookup: every row of the checkpoint was
		// made in this run, by threads whose message keys are not this
		// thread's (a key belongs to one thread of an archive: threading
		// makes a repeated key a duplicate), unless the ticket was listed
		// and what it holds recorded.
		if !im.fresh || p.listed || p.registered || im.vouch.wasListed(p.ticket) {
			var err error
			if own, parts, err = im.store.Parts(ctx, p.ticket, p.key, keys); err != nil {
				return p.fatal(err)
			}
		}
		if own != nil && own.TicketID != p.ticket && (own.SideConversationID != "" || own.Unresolved) {
			return im.failThread(ctx, p.key, checkpoint.Failure{Rule: RuleTicketChanged, Reason: fmt.Sprintf(
				"the thread's side conversation is on ticket %d, and it maps to ticket %d now: nothing sent", own.TicketID, p.ticket)})
		}
		unresolved := own != nil && own.Unresolved
		for _, pt := range parts {
			unresolved = unresolved || pt.Unresolved
		}
		if unresolved || p.mustList {
			if done, err := p.look(ctx, false, own, parts); done || err != nil {
				return err
			}
			continue
		}

		imported := map[string]bool{}
		var target *checkpoint.Part
		withSC := 0
		for i := range parts {
			for k, st := range parts[i].Messages {
				if st == checkpoint.MessageImported {
					imported[k] = true
				}
			}
			if parts[i].SideConversationID != "" {
				withSC++
				if target == nil {
					target = &parts[i] // parts come earliest first
				}
			}
		}
		var pending []mapping.Event
		for _, e := range p.plan.Events {
			if !imported[e.Key] {
				pending = append(pending, e)
			}
		}
		into := p.key // the row whose side conversation receives the messages
		scID := ""
		if target != nil {
			into, scID = target.Key, target.SideConversationID
		}
		join := into != p.key || len(parts) > 1 || (len(parts) == 1 && (own == nil || parts[0].ID != own.ID))
		if join && (withSC > 1 || into != p.key) {
			p.warnJoin(parts, into)
		}
		if into != p.key && target.State != checkpoint.Created && target.State != checkpoint.Done {
			// The part that receives the new messages failed (or was
			// refused) and waits for `threadlift retry`: so does this thread.
			return p.failWith(ctx, own, parts, checkpoint.Failure{Rule: RuleJoinedPartFailed, Reason: fmt.Sprintf(
				"its messages go to the side conversation of thread %q, which is %s: run `threadlift retry`, then import again", into, target.State)})
		}

		if len(pending) == 0 {
			return p.complete(ctx, own, into, join)
		}
		if !p.reserved {
			if !im.reserve() {
				im.c.skipped.Add(1) // --limit reached
				return nil
			}
			p.reserved = true
		}
		if !p.listed {
			need, probe, err := im.vouch.need(ctx, p.ticket)
			if err != nil {
				return nil // stopping
			}
			if need {
				if done, err := p.look(ctx, probe, own, parts); done || err != nil {
					return err
				}
				continue
			}
		}
		if join {
			if err := p.w.flush(ctx); err != nil {
				return err
			}
			if err := im.store.Join(ctx, p.ticket, into, p.reg); err != nil {
				return p.fatal(err)
			}
			p.registered = true
		}
		err := p.send(ctx, into, scID, pending, imported)
		if errors.Is(err, errLookAgain) {
			continue
		}
		return err
	}
}

// look lists the ticket and records what it holds. probe says whether
// the listing is one of the run's probes (see vouch); own and parts are
// what the checkpoint holds of the thread. done is true when the thread
// is finished (the listing failed, and so did the thread).
func (p *posting) look(ctx context.Context, probe bool, own *checkpoint.Part, parts []checkpoint.Part) (done bool, err error) {
	im := p.im
	// The answer this worker holds may be for this ticket: record it
	// before the listing resolves its thread from what the ticket holds.
	if err := p.w.flush(ctx); err != nil {
		return true, err
	}
	if err := p.awaitSettle(ctx, own, parts); err != nil {
		if ctx.Err() != nil {
			return true, nil // stopping: the thread stays as it is
		}
		return true, err
	}
	convs, err := im.list(ctx, p.ticket)
	if err != nil {
		if probe {
			im.vouch.abandon()
		}
		if ctx.Err() != nil {
			return true, nil
		}
		return true, p.failLookup(ctx, own, parts, err)
	}
	rec, err := im.store.RecordTicket(ctx, p.ticket, convs)
	if err != nil {
		return true, p.fatal(err)
	}
	im.c.reconciled.Add(1)
	if im.vouch.looked(p.ticket, probe, rec.UnknownCount > 0) {
		im.opts.Logger.Warn().Int64("ticket_id", p.ticket).Int("unknown_keys", rec.UnknownCount).Strs("examples", rec.Unknown).
			Msg("this ticket holds threadlift keys the checkpoint did not know: the checkpoint is older than what Zendesk holds " +
				"(a copy, a restored backup, or a new file); what each ticket holds is now looked up before the first write to it " +
				"(`threadlift verify --adopt` rebuilds the checkpoint in one go)")
		if err := im.store.Distrust(ctx); err != nil {
			return true, p.fatal(err)
		}
	} else if rec.UnknownCount > 0 {
		im.opts.Logger.Info().Int64("ticket_id", p.ticket).Int("unknown_keys", rec.UnknownCount).Strs("examples", rec.Unknown).
			Msg("recorded what the ticket holds that the checkpoint did not know")
	}
	p.mustList, p.listed = false, true
	return false, nil
}

// awaitSettle waits, before the ticket is listed, until every write of
// the thread's rows that got no answer had Options.Settle to land: one of
// this run (p.settle), or the last request of a part left unresolved by a
// run that died with it in flight (Settle after it was sent). A lookup
// made sooner could miss a write Zendesk was still carrying out, and send
// it again. The ticket stays locked meanwhile; it returns ctx's error
// when the run stops.
func (p *posting) awaitSettle(ctx context.Context, own *checkpoint.Part, parts []checkpoint.Part) error {
	im := p.im
	until := p.settle
	if !p.sent {
		rows := parts
		if own != nil {
			rows = append([]checkpoint.Part{*own}, parts...)
		}
		for _, r := range rows {
			if !r.Unresolved {
				continue
			}
			a, found, err := im.store.LastAttempt(ctx, r.Key)
			if err != nil {
				return p.fatal(err)
			}
			if a.HTTPStatus != 0 && a.HTTPStatus != http.StatusGatewayTimeout {
				continue // answered: Zendesk was done with it (MarkAnswered)
			}
			if t := a.StartedAt.Add(im.opts.Settle); found && t.After(until) {
				until = t
			}
		}
	}
	wait := until.Sub(im.opts.Now())
	if wait <= 0 {
		return nil
	}
	im.opts.Logger.Debug().Str("thread_key", p.key).Int64("ticket_id", p.ticket).Dur("wait", wait).
		Msg("a write got no answer: giving it time to land before looking the ticket up")
	if err := sleep(ctx, wait); err != nil {
		return err
	}
	p.settle = time.Time{}
	return nil
}

// answerStatus is the HTTP status of an answer that leaves a write's
// outcome unknown (see MarkAnswered).
func answerStatus(err error) int {
	var ae *zendesk.APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	var re *zendesk.RequestError
	if errors.As(err, &re) {
		return re.Status
	}
	return 0
}

// failLookup fails the thread after the listing of its ticket failed.
func (p *posting) failLookup(ctx context.Context, own *checkpoint.Part, parts []checkpoint.Part, err error) error {
	if stop := p.im.stopRun(ctx, p.key, err, false); stop != nil {
		return stop
	}
	f, fatal := p.im.requestFailure(p.plan, err)
	if fatal != nil {
		return fatal
	}
	return p.failWith(ctx, own, parts, f)
}

// failWith fails the thread before anything was sent for it in this run.
// A thread the checkpoint does not know yet is registered first, with its
// messages when no other thread's row holds any of them.
func (p *posting) failWith(ctx context.Context, own *checkpoint.Part, parts []checkpoint.Part, f checkpoint.Failure) error {
	im := p.im
	if err := p.w.flush(ctx); err != nil {
		return err
	}
	if own == nil || own.State == checkpoint.Rejected {
		reg := p.reg
		if len(parts) > 0 {
			reg.Messages = nil // they belong to other rows: the join decides, next time
		}
		if err := im.store.RegisterBatch(ctx, []checkpoint.Registration{reg}); err != nil {
			return p.fatal(err)
		}
	}
	return im.failThread(ctx, p.key, f)
}

// list reads a ticket's side conversations with their threadlift keys,
// retrying within the attempt budget.
func (im *importer) list(ctx context.Context, ticket int64) ([]checkpoint.ListedConversation, error) {
	for attempt := 1; ; attempt++ {
		im.c.requests.Add(1)
		scs, events, err := im.api.ListSideConversations(ctx, ticket)
		if err == nil {
			out := make([]checkpoint.ListedConversation, 0, len(scs))
			at := make(map[string]int, len(scs))
			for _, sc := range scs {
				at[sc.ID] = len(out)
				out = append(out, checkpoint.ListedConversation{ID: sc.ID, ThreadKey: sc.ExternalIDs[zendesk.ThreadKeyField]})
			}
			for _, e := range events {
				i, ok := at[e.SideConversationID]
				if !ok || e.Message == nil {
					continue
				}
				if k := e.Message.ExternalIDs[zendesk.MessageKeyField]; k != "" {
					out[i].MessageKeys = append(out[i].MessageKeys, k)
				}
			}
			return out, nil
		}
		if zendesk.IsStatus(err, 429) {
			im.c.rateLimited.Add(1)
		}
		retry, wait := zendesk.Retryable(err)
		if !retry || attempt >= im.opts.MaxAttempts || ctx.Err() != nil {
			return nil, fmt.Errorf("look up ticket %d: %w", ticket, err)
		}
		im.c.retries.Add(1)
		if wait == 0 {
			if err := sleep(ctx, backoff(attempt, im.opts.BackoffBase, im.opts.BackoffMax)); err != nil {
				return nil, err
			}
		}
	}
}

// complete records a thread none of whose messages is left to send.
func (p *posting) complete(ctx context.Context, own *checkpoint.Part, into string, join bool) error {
	im := p.im
	if err := p.w.flush(ctx); err != nil {
		return err
	}
	if join {
		if err := im.store.Join(ctx, p.ticket, into, p.reg); err != nil {
			return p.fatal(err)
		}
	}
	if into == p.key {
		if own == nil || (own.State != checkpoint.Created && own.State != checkpoint.Done) {
			return nil // not expected: its messages are imported in its own row
		}
		if err := im.store.Complete(ctx, checkpoint.Completion{Key: p.key, KeysHash: p.hash}); err != nil {
			return p.fatal(err)
		}
	} else if err := im.store.MarkJoinedDone(ctx, p.joinedRow(), into, p.hash); err != nil {
		return p.fatal(err)
	}
	if p.sent {
		im.threadImported() // what it sent was found on the ticket
	} else {
		im.c.alreadyDone.Add(1)
	}
	return nil
}

// joinedRow is the thread's own row as MarkJoinedDone records it.
func (p *posting) joinedRow() checkpoint.Thread {
	th := p.reg.Thread
	th.TicketID = p.ticket
	return th
}

// send posts the pending messages to the side conversation of row into
// (scID, "" when it has none yet: an import creates it), chunk by chunk.
// It returns errLookAgain when the ticket must be listed before going
// on (an outcome is unknown).
func (p *posting) send(ctx context.Context, into, scID string, pending []mapping.Event, imported map[string]bool) error {
	im, w, plan := p.im, p.w, p.plan
	var uploads map[string]map[int]checkpoint.Upload
	for len(pending) > 0 {
		if ctx.Err() != nil {
			return nil // the thread stays in flight; the next run reconciles it
		}
		chunk := slices.Clone(pending[:min(p.n, len(pending))])
		keys := make([]string, len(chunk))
		hasUploads := false
		for i, e := range chunk {
			keys[i] = e.Key
			hasUploads = hasUploads || len(e.Upload) > 0
		}

		if hasUploads {
			if !p.registered {
				// RecordUpload needs the thread registered.
				if err := w.flush(ctx); err != nil {
					return err
				}
				if err := im.store.RegisterBatch(ctx, []checkpoint.Registration{p.reg}); err != nil {
					return p.fatal(err)
				}
				p.registered = true
			}
			if uploads == nil {
				var err error
				if uploads, err = im.store.Uploads(ctx, into); err != nil {
					return p.fatal(err)
				}
			}
			p.sent = true
			if err := im.uploadAttachments(ctx, into, chunk, uploads); err != nil {
				switch {
				case ctx.Err() != nil || im.stopped():
					return nil
				case errors.Is(err, errAttachmentRead):
					if cerr := im.a.Unchanged(p.t); cerr != nil {
						return im.failThread(ctx, into, checkpoint.Failure{Rule: RuleSourceChanged, Reason: cerr.Error()})
					}
					return im.failThread(ctx, into, checkpoint.Failure{Rule: RuleRead, Reason: err.Error()})
				}
				return im.failRequest(ctx, plan, into, err)
			}
		}

		kind := checkpoint.KindImport
		if scID != "" {
			kind = checkpoint.KindEventsImport
		}
		// The write-ahead record: durable before the request is sent.
		var err error
		if p.registered {
			if err = w.flush(ctx); err == nil {
				err = im.store.MarkInFlight(ctx, into, kind, keys)
			}
		} else if err = im.store.RegisterInFlight(ctx, w.pending, p.reg, kind, keys); err == nil && w.pending != nil {
			w.recorded()
		}
		if err != nil {
			return p.fatal(err)
		}
		p.registered = true
		p.sent = true
		im.c.requests.Add(1)
		var resp *zendesk.ImportResponse
		if kind == checkpoint.KindImport {
			im.c.importReqs.Add(1)
			resp, err = im.api.Import(ctx, p.ticket, plan.ImportRequest(chunk))
			if err == nil && (resp.SideConversation == nil || resp.SideConversation.ID == "") {
				// Accepted but without an id we can use: look it up, within
				// the attempt budget in case it never shows up.
				if p.attempts++; p.attempts >= im.opts.MaxAttempts {
					return im.failThread(ctx, into, checkpoint.Failure{Rule: RuleHTTP, Reason: "import accepted without a side conversation id, and none found on the ticket"})
				}
				p.mustList = true
				return errLookAgain
			}
		} else {
			im.c.eventsReqs.Add(1)
			resp, err = im.api.ImportEvents(ctx, p.ticket, scID, mapping.EventsRequest(chunk))
		}
		if err == nil {
			if kind == checkpoint.KindImport {
				scID = resp.SideConversation.ID
			}
			last := len(chunk) == len(pending)
			switch {
			case last && into == p.key:
				// Every event is imported once this is recorded, with the
				// worker's next write; the worker keeps the ticket till then.
				w.hold(&checkpoint.Completion{Key: into, SideConversationID: scID, MessageKeys: keys, KeysHash: p.hash}, p.ticket, p.unlock)
				p.held = true
			case last:
				// Joined into another part: that part's row is done, then
				// this thread (which has no side conversation of its own).
				ctx := context.WithoutCancel(ctx)
				if err := im.store.Complete(ctx, checkpoint.Completion{Key: into, SideConversationID: scID, MessageKeys: keys}); err != nil {
					return p.fatal(err)
				}
				if err := im.store.MarkJoinedDone(ctx, p.joinedRow(), into, p.hash); err != nil {
					return p.fatal(err)
				}
				im.threadImported()
			default:
				if err := im.store.MarkCreated(context.WithoutCancel(ctx), into, scID, keys); err != nil {
					// Recorded even when the run is stopping: the server said yes.
					return p.fatal(err)
				}
			}
			for _, k := range keys {
				imported[k] = true
			}
			pending = pending[len(chunk):]
			im.c.events.Add(int64(len(keys)))
			p.attempts = 0
			continue
		}

		p.attempts++
		if ctx.Err() != nil {
			return nil // stopping mid-request: in flight, reconciled next run
		}
		if stop := im.stopRun(ctx, into, err, true); stop != nil {
			return stop
		}
		switch {
		case zendesk.IsStatus(err, 401):
			return im.setFatal(fmt.Errorf("%w: authentication refused: %w", ErrFatal, err))
		case zendesk.IsStatus(err, 413) && p.n > 1:
			p.n /= 2
			p.attempts = 0
			im.opts.Logger.Warn().Str("thread_key", p.key).Int("events_per_request", p.n).Msg("request too large (413): halving events per request")
			continue
		case zendesk.IsStatus(err, 429):
			im.c.rateLimited.Add(1)
		}
		retry, wait := zendesk.Retryable(err)
		if !retry || p.attempts >= im.opts.MaxAttempts {
			return im.failRequest(ctx, plan, into, err)
		}
		im.c.retries.Add(1)
		im.opts.Logger.Debug().Err(err).Str("thread_key", p.key).Int("attempt", p.attempts).Msg("retrying")
		// With a Retry-After the client has closed its gate for every
		// worker already; without one, back off with full jitter.
		if wait == 0 {
			if sleep(ctx, backoff(p.attempts, im.opts.BackoffBase, im.opts.BackoffMax)) != nil {
				return nil
			}
		}
		if zendesk.OutcomeUnknown(err) {
			if zendesk.AnswerPending(err) {
				p.settle = im.opts.Now().Add(im.opts.Settle)
			} else if err := im.store.MarkAnswered(ctx, into, answerStatus(err)); err != nil {
				// Should the run stop before the lookup, the next one need
				// not wait for this request: Zendesk answered it.
				return p.fatal(err)
			}
			p.mustList = true
			return errLookAgain
		}
	}
	return nil
}

// warnJoin reports, once per thread, that its messages live in parts
// imported as other threads: a warning in the log and the summary.
func (p *posting) warnJoin(parts []checkpoint.Part, into string) {
	if p.warned {
		return
	}
	p.warned = true
	var names []string
	for _, pt := range parts {
		if pt.SideConversationID != "" {
			names = append(names, fmt.Sprintf("%q (side conversation %s)", pt.Key, pt.SideConversationID))
		}
	}
	msg := fmt.Sprintf("thread %q was imported as parts of other threads: %s; messages already imported stay where they are, new ones go to the side conversation of %q",
		p.key, strings.Join(names, ", "), into)
	p.im.opts.Logger.Warn().Str("thread_key", p.key).Int64("ticket_id", p.ticket).Str("rule", RuleThreadJoined).Msg(msg)
	p.im.warn(report.Issue{Severity: "warning", Rule: RuleThreadJoined, ThreadKey: p.key, Source: p.plan.Source.String(),
		Message: msg, ThreadSubject: p.plan.SideConversation.Subject})
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

// logTrust says how the run deals with a checkpoint that may be older
// than what Zendesk holds.
func (im *importer) logTrust(run *checkpoint.Run) {
	log := im.opts.Logger
	switch {
	case run.EmptyFile:
		log.Warn().Int("tickets", im.opts.VouchProbes).Msg("the checkpoint file was empty (0 bytes): it is taken as a new checkpoint; " +
			"if it held one before, the first tickets written show it and every ticket is then looked up before the first write to it")
	case run.New:
		log.Info().Int("tickets", im.opts.VouchProbes).Msg("new checkpoint: the first tickets written are looked up first, in case this account holds threads imported with another checkpoint")
	case run.Unclean:
		log.Warn().Int("vouched_tickets", len(run.Vouched)).Msg("the last run on this checkpoint did not end cleanly (killed, crashed, or this is a copy taken during a run): " +
			"it may be older than what Zendesk holds, so each ticket is looked up before the first write to it")
	case !run.Trusted:
		log.Warn().Int("vouched_tickets", len(run.Vouched)).Msg("this checkpoint was found older than what Zendesk holds: " +
			"each ticket not looked up since is looked up before the first write to it (`threadlift verify --adopt` rebuilds the checkpoint)")
	}
}
