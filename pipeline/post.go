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
// Each step reads the ticket's rows and goes reconcile → upload →
// write-ahead → send → record: whenever a part's last request has an
// unknown outcome, or the checkpoint cannot vouch for the ticket (see
// vouch), the ticket is listed first and what it holds recorded
// (reconcile); then, chunk by chunk, the attachments are uploaded, the
// request is recorded in flight, sent (retrier.call) and its answer
// recorded (ledger).
type posting struct {
	im     *importer
	w      *worker
	l      *ledger
	t      thread.Thread
	plan   *mapping.Plan
	reg    checkpoint.Registration
	ticket int64
	unlock func() // the ticket's lock; passed on to the ledger with a held answer

	key  string   // the thread's key
	hash string   // checkpoint.KeysHash of its message keys
	keys []string // the plan's message keys

	mustList   bool      // a request's outcome is unknown: list the ticket before going on
	settle     time.Time // a request got no answer: list the ticket no sooner than this (Options.Settle)
	listed     bool      // the ticket was listed for this thread
	registered bool      // the thread's messages are registered in the row written to
	warned     bool
	// warnedElsewhere: leaveElsewhere warned of parts on other tickets.
	warnedElsewhere bool
	reserved        bool // a --limit slot is taken
	sent            bool // a request was sent for this thread
	failed          int  // failed attempts of the current request
	n               int  // events per request
	held            bool // the last answer is held by the ledger, with the lock
}

// decision is what a step sends, decided from the ticket's rows.
type decision struct {
	pending []mapping.Event                      // the thread's messages no part holds imported, in order
	target  *checkpoint.Part                     // the earliest part with a side conversation; nil when none has one
	into    string                               // the row whose side conversation receives the messages
	scID    string                               // its side conversation; "" until an import creates it
	withSC  int                                  // parts with a side conversation
	join    bool                                 // the messages live in other rows than the thread's own
	uploads map[string]map[int]checkpoint.Upload // of row into, read at the first upload
}

// next is what send does once a chunk was answered.
type next int

const (
	nextChunk next = iota // go on: the next chunk, or the same one smaller (413)
	lookAgain             // list the ticket, then decide again
	finish                // the thread is finished with (failed, stopping, or the run must stop)
)

func (p *posting) run(ctx context.Context) error {
	p.key = p.plan.ThreadKey
	p.hash = checkpoint.KeysHash(p.im.a.MessageKeys(p.t))
	p.n = p.im.opts.Mapper.MaxEventsPerRequest()
	p.keys = eventKeys(p.plan.Events)
	for {
		if ctx.Err() != nil {
			return nil // stopping: what is in flight is reconciled next run
		}
		again, err := p.step(ctx)
		if !again {
			return err
		}
	}
}

// step reads the ticket's rows, decides what is left to send and sends
// it. again says the ticket was listed, or must be: decide again.
func (p *posting) step(ctx context.Context) (again bool, err error) {
	own, parts, err := p.rows(ctx)
	if err != nil {
		return false, err
	}
	if moved(own, p.ticket) {
		return false, p.w.failThread(ctx, p.key, checkpoint.Failure{Rule: RuleTicketChanged, Reason: fmt.Sprintf(
			"the thread's side conversation is on ticket %d, and it maps to ticket %d now: nothing sent", own.TicketID, p.ticket)})
	}
	if p.mustList || unresolved(own, parts) {
		return p.reconcile(ctx, false, own, parts)
	}
	d := p.decide(own, parts)
	if d.join && (d.withSC > 1 || d.into != p.key) {
		p.warnJoin(parts, d.into)
	}
	if d.targetFailed(p.key) {
		// The part that receives the new messages failed (or was
		// refused) and waits for `threadlift retry`: so does this thread.
		return false, p.failWith(ctx, own, parts, checkpoint.Failure{Rule: RuleJoinedPartFailed, Reason: fmt.Sprintf(
			"its messages go to the side conversation of thread %q, which is %s: run `threadlift retry`, then import again", d.into, d.target.State)})
	}
	if len(d.pending) == 0 {
		return false, p.complete(ctx, own, d)
	}
	if !p.reserve() {
		return false, nil // --limit reached
	}
	if !p.listed {
		need, probe, err := p.im.vouch.need(ctx, p.ticket)
		if err != nil {
			return false, nil // stopping
		}
		if need {
			return p.reconcile(ctx, probe, own, parts)
		}
	}
	if d.join {
		if err := p.l.join(ctx, p.ticket, d.into, p.reg); err != nil {
			return false, err
		}
		p.registered = true
	}
	return p.send(ctx, d)
}

// rows reads the thread's own row (own) and the rows of the ticket that
// hold any of its message keys (parts). A first import needs no lookup:
// every row of the checkpoint was made in this run, by threads whose
// message keys are not this thread's (a key belongs to one thread of an
// archive: threading makes a repeated key a duplicate), unless the
// ticket was listed and what it holds recorded.
func (p *posting) rows(ctx context.Context) (own *checkpoint.Part, parts []checkpoint.Part, err error) {
	if !p.im.fresh || p.listed || p.registered || p.im.vouch.wasListed(p.ticket) {
		own, parts, elsewhere, err := p.l.parts(ctx, p.ticket, p.key, p.keys)
		if err == nil {
			p.leaveElsewhere(parts, elsewhere)
		}
		return own, parts, err
	}
	return nil, nil, nil
}

// leaveElsewhere leaves out of the thread's posting its messages that
// rows of other tickets hold imported, and no row of its ticket holds:
// messages of the scan record (an earlier chunk, an earlier run) that
// were imported with a thread that a reply, or a root that arrived
// later, joined to this one (contract §6: no message is posted twice,
// whatever thread it ends up in). They stay where they are; the thread
// still completes with every message key. A message read from the
// sources now is not left out: two exports may number their messages
// alike (TestJoinLookupIsPerTicket).
func (p *posting) leaveElsewhere(parts, elsewhere []checkpoint.Part) {
	if len(elsewhere) == 0 {
		return
	}
	here := map[string]bool{}
	for _, pt := range parts {
		for k := range pt.Messages {
			here[k] = true
		}
	}
	recorded := map[string]bool{}
	for _, m := range p.t.Members {
		if k := p.im.a.Key(m); p.im.a.FromRecord(m) && !here[k] {
			recorded[k] = true
		}
	}
	there := map[string]bool{}
	var names []string
	for _, pt := range elsewhere {
		n := 0
		for k, st := range pt.Messages {
			if st == checkpoint.MessageImported && recorded[k] {
				there[k] = true
				n++
			}
		}
		if n > 0 {
			names = append(names, fmt.Sprintf("%q (ticket %d, side conversation %s)", pt.Key, pt.TicketID, pt.SideConversationID))
		}
	}
	if len(there) == 0 {
		return
	}
	p.plan.Events = slices.DeleteFunc(p.plan.Events, func(e mapping.Event) bool { return there[e.Key] })
	p.reg.Messages = slices.DeleteFunc(p.reg.Messages, func(m checkpoint.Message) bool { return there[m.Key] })
	if p.warnedElsewhere {
		return
	}
	p.warnedElsewhere = true
	slices.Sort(names)
	msg := fmt.Sprintf("thread %q maps to ticket %d, and %d of its messages were imported to other tickets as parts of other threads: %s; they stay there and are not posted again",
		p.key, p.ticket, len(there), strings.Join(names, ", "))
	p.im.opts.Logger.Warn().Str("thread_key", p.key).Int64("ticket_id", p.ticket).Str("rule", RuleThreadJoined).Msg(msg)
	p.im.warn(report.Issue{Severity: "warning", Rule: RuleThreadJoined, ThreadKey: p.key, Source: p.plan.Source.String(),
		Message: msg, ThreadSubject: p.plan.SideConversation.Subject})
}

// moved reports whether the thread's own row is on another ticket than
// ticket, with a side conversation there or a request that may have
// landed there.
func moved(own *checkpoint.Part, ticket int64) bool {
	return own != nil && own.TicketID != ticket && (own.SideConversationID != "" || own.Unresolved)
}

// unresolved reports whether any of the rows has a request of unknown
// outcome.
func unresolved(own *checkpoint.Part, parts []checkpoint.Part) bool {
	if own != nil && own.Unresolved {
		return true
	}
	for _, pt := range parts {
		if pt.Unresolved {
			return true
		}
	}
	return false
}

// decide finds what is left to send and where it goes: the messages no
// part holds imported, to the earliest part with a side conversation
// (parts come earliest first), or to the thread's own row.
func (p *posting) decide(own *checkpoint.Part, parts []checkpoint.Part) *decision {
	d := &decision{into: p.key}
	imported := map[string]bool{}
	for i := range parts {
		for k, st := range parts[i].Messages {
			if st == checkpoint.MessageImported {
				imported[k] = true
			}
		}
		if parts[i].SideConversationID != "" {
			d.withSC++
			if d.target == nil {
				d.target = &parts[i]
			}
		}
	}
	for _, e := range p.plan.Events {
		if !imported[e.Key] {
			d.pending = append(d.pending, e)
		}
	}
	if d.target != nil {
		d.into, d.scID = d.target.Key, d.target.SideConversationID
	}
	d.join = d.into != p.key || len(parts) > 1 || (len(parts) == 1 && (own == nil || parts[0].ID != own.ID))
	return d
}

// targetFailed reports whether the messages go to another part than the
// row of the thread key, which cannot take them: it failed or was
// refused.
func (d *decision) targetFailed(key string) bool {
	return d.into != key && d.target.State != checkpoint.Created && d.target.State != checkpoint.Done
}

// reserve takes a --limit slot for the thread, once: --limit counts
// threads posted, not threads looked at.
func (p *posting) reserve() bool {
	if p.reserved {
		return true
	}
	if !p.im.reserve() {
		p.im.c.skipped.Add(1)
		return false
	}
	p.reserved = true
	return true
}

// done ends the posting: a --limit slot not used goes back, and the
// ticket is released unless the ledger holds it with the last answer.
func (p *posting) done(ctx context.Context) error {
	if p.reserved && !p.sent {
		p.im.c.posted.Add(-1)
	}
	if p.held {
		return nil
	}
	return p.l.release(ctx, p.unlock)
}

// complete records a thread none of whose messages is left to send.
func (p *posting) complete(ctx context.Context, own *checkpoint.Part, d *decision) error {
	if d.join {
		if err := p.l.join(ctx, p.ticket, d.into, p.reg); err != nil {
			return err
		}
	}
	if d.into == p.key {
		if own == nil || (own.State != checkpoint.Created && own.State != checkpoint.Done) {
			return nil // not expected: its messages are imported in its own row
		}
		if err := p.recordRejected(ctx); err != nil {
			return err
		}
		if err := p.l.complete(ctx, checkpoint.Completion{Key: p.key, KeysHash: p.hash}); err != nil {
			return err
		}
	} else if err := p.l.joinedDone(ctx, p.joinedRow(), d.into, p.hash); err != nil {
		return err
	}
	if p.sent {
		p.im.threadImported() // what it sent was found on the ticket
	} else {
		p.im.countComplete(p.t, p.key)
	}
	return nil
}

// recordRejected records the thread's rejected messages on its own row
// before it is marked complete with every message key: a backfill whose
// only new message is rejected (a reply without a date) must still
// record it, for failures to list and copy it
// (TestBackfillRecordsRejectedReply). Its other messages are recorded
// already; a done row stays done.
func (p *posting) recordRejected(ctx context.Context) error {
	reg := p.reg
	reg.Messages = nil
	for _, m := range p.reg.Messages {
		if m.State == checkpoint.MessageRejected {
			reg.Messages = append(reg.Messages, m)
		}
	}
	if len(reg.Messages) == 0 {
		return nil
	}
	return p.l.register(ctx, reg)
}

// joinedRow is the thread's own row as MarkJoinedDone records it.
func (p *posting) joinedRow() checkpoint.Thread {
	th := p.reg.Thread
	th.TicketID = p.ticket
	return th
}

// failWith fails the thread before anything was sent for it in this run.
// A thread the checkpoint does not know yet is registered first, with its
// messages when no other thread's row holds any of them.
func (p *posting) failWith(ctx context.Context, own *checkpoint.Part, parts []checkpoint.Part, f checkpoint.Failure) error {
	if own == nil || own.State == checkpoint.Rejected {
		reg := p.reg
		if len(parts) > 0 {
			reg.Messages = nil // they belong to other rows: the join decides, next time
		}
		if err := p.l.register(ctx, reg); err != nil {
			return err
		}
	}
	return p.w.failThread(ctx, p.key, f)
}

// send posts d's pending messages to the side conversation of row
// d.into, chunk by chunk: upload → write-ahead → send → record. again
// says the ticket must be listed before going on (an outcome is unknown).
func (p *posting) send(ctx context.Context, d *decision) (again bool, err error) {
	for len(d.pending) > 0 {
		if ctx.Err() != nil {
			return false, nil // the thread stays in flight; the next run reconciles it
		}
		first, _ := mapping.Chunk(d.pending, p.n)
		chunk := slices.Clone(first) // uploads set the copy's attachment ids
		resp, v := p.post(ctx, d, chunk)
		var then next
		if v.err != nil {
			then, err = p.failedChunk(ctx, d, v)
		} else {
			then, err = p.record(ctx, d, chunk, resp)
		}
		switch then {
		case lookAgain:
			return true, nil
		case finish:
			return false, err
		}
	}
	return false, nil
}

// post sends chunk, retried as retrier.call decides; each attempt
// uploads the chunk's attachments (those without a recent upload) and
// writes the request ahead first.
func (p *posting) post(ctx context.Context, d *decision, chunk []mapping.Event) (*zendesk.ImportResponse, verdict) {
	kind := checkpoint.KindImport
	if d.scID != "" {
		kind = checkpoint.KindEventsImport
	}
	var resp *zendesk.ImportResponse
	v := p.im.retrier().call(ctx, try{
		write: true, failed: &p.failed, threadKey: p.key,
		before: func(ctx context.Context) error {
			if err := p.upload(ctx, d, chunk); err != nil {
				return err
			}
			return p.writeAhead(ctx, d.into, kind, eventKeys(chunk))
		},
	}, func(ctx context.Context) (err error) {
		if kind == checkpoint.KindImport {
			p.im.c.importReqs.Add(1)
			resp, err = p.im.api.Import(ctx, p.ticket, p.plan.ImportRequest(chunk))
		} else {
			p.im.c.eventsReqs.Add(1)
			resp, err = p.im.api.ImportEvents(ctx, p.ticket, d.scID, mapping.EventsRequest(chunk))
		}
		return err
	})
	return resp, v
}

// upload uploads the attachments of chunk's events that have no recent
// upload (uploadAttachments), registering the thread first: uploads are
// recorded under its row.
func (p *posting) upload(ctx context.Context, d *decision, chunk []mapping.Event) error {
	if !slices.ContainsFunc(chunk, func(e mapping.Event) bool { return len(e.Upload) > 0 }) {
		return nil
	}
	if !p.registered {
		if err := p.l.register(ctx, p.reg); err != nil {
			return err
		}
		p.registered = true
	}
	if d.uploads == nil {
		var err error
		if d.uploads, err = p.l.uploads(ctx, d.into); err != nil {
			return err
		}
	}
	p.sent = true
	return p.im.uploadAttachments(ctx, p.l, d.into, chunk, d.uploads)
}

// writeAhead records that the request for keys is about to be sent,
// durable before it is; a thread not registered yet is registered in the
// same write.
func (p *posting) writeAhead(ctx context.Context, into, kind string, keys []string) error {
	var reg *checkpoint.Registration
	if !p.registered {
		reg = &p.reg // into is the thread's own row: no join made it another
	}
	if err := p.l.writeAhead(ctx, into, kind, keys, reg); err != nil {
		return err
	}
	p.registered, p.sent = true, true
	return nil
}

// record records the answer to chunk, a 2xx.
func (p *posting) record(ctx context.Context, d *decision, chunk []mapping.Event, resp *zendesk.ImportResponse) (next, error) {
	if d.scID == "" {
		if resp.SideConversation == nil || resp.SideConversation.ID == "" {
			// Accepted but without an id we can use: look it up, within
			// the attempt budget in case it never shows up.
			if p.failed++; p.failed >= p.im.opts.MaxAttempts {
				return finish, p.w.failThread(ctx, d.into, checkpoint.Failure{Rule: RuleHTTP, Reason: "import accepted without a side conversation id, and none found on the ticket"})
			}
			p.mustList = true
			return lookAgain, nil
		}
		d.scID = resp.SideConversation.ID
	}
	keys := eventKeys(chunk)
	last := len(chunk) == len(d.pending)
	switch {
	case last && d.into == p.key:
		// Every event is imported once this is recorded, with the
		// worker's next write; the ledger keeps the ticket till then.
		p.l.hold(checkpoint.Completion{Key: d.into, SideConversationID: d.scID, MessageKeys: keys, KeysHash: p.hash}, p.ticket, p.unlock)
		p.held = true
	case last:
		// Joined into another part: that part's row is done, then this
		// thread (which has no side conversation of its own).
		if err := p.l.doneJoined(ctx, d.into, d.scID, keys, p.joinedRow(), p.hash); err != nil {
			return finish, err
		}
		p.im.threadImported()
	default:
		if err := p.l.created(ctx, d.into, d.scID, keys); err != nil {
			return finish, err
		}
	}
	d.pending = d.pending[len(chunk):]
	p.im.c.events.Add(int64(len(keys)))
	p.failed = 0
	return nextChunk, nil
}

// failedChunk decides what follows a chunk whose request failed (or
// could not be made: v.local).
func (p *posting) failedChunk(ctx context.Context, d *decision, v verdict) (next, error) {
	switch {
	case v.stopping:
		return finish, nil // stopping mid-request: in flight, reconciled next run
	case v.local:
		return finish, p.notPrepared(ctx, d.into, v.err)
	case v.stop:
		return finish, p.w.stopRun(ctx, d.into, v.err, true)
	case v.again:
		// It may have landed: look it up before sending it again.
		if err := p.unknownOutcome(ctx, d.into, v); err != nil {
			return finish, err
		}
		return lookAgain, nil
	case zendesk.IsStatus(v.err, http.StatusRequestEntityTooLarge) && p.n > 1:
		p.n /= 2
		p.failed = 0
		p.im.opts.Logger.Warn().Str("thread_key", p.key).Int("events_per_request", p.n).Msg("request too large (413): halving events per request")
		return nextChunk, nil
	}
	return finish, p.failRequest(ctx, d.into, v.err)
}

// unknownOutcome prepares the lookup of a write whose outcome is
// unknown: no sooner than Options.Settle when Zendesk may still be
// carrying it out, else at once, the answer's status recorded so that a
// run that stops before the lookup does not make the next one wait.
func (p *posting) unknownOutcome(ctx context.Context, into string, v verdict) error {
	if v.settle {
		p.settle = p.im.opts.Now().Add(p.im.opts.Settle)
	} else if err := p.l.answered(ctx, into, answerStatus(v.err)); err != nil {
		return err
	}
	p.mustList = true
	return nil
}

// notPrepared fails the thread after its request could not be made: an
// attachment could not be read or uploaded. A write-ahead record the
// checkpoint refused has stopped the run already.
func (p *posting) notPrepared(ctx context.Context, into string, err error) error {
	switch {
	case errors.Is(err, ErrFatal):
		return err
	case ctx.Err() != nil || p.im.stopped():
		return nil
	case errors.Is(err, errAttachmentRead):
		if cerr := p.im.a.Unchanged(p.t); cerr != nil {
			return p.w.failThread(ctx, into, checkpoint.Failure{Rule: RuleSourceChanged, Reason: cerr.Error()})
		}
		return p.w.failThread(ctx, into, checkpoint.Failure{Rule: RuleRead, Reason: err.Error()})
	}
	return p.failRequest(ctx, into, err)
}

// failRequest fails the thread after a request failed; key is the row
// the request was for.
func (p *posting) failRequest(ctx context.Context, key string, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	if stop := p.w.stopRun(ctx, key, err, false); stop != nil {
		return stop
	}
	f, fatal := p.requestFailure(err)
	if fatal != nil {
		return fatal
	}
	return p.w.failThread(ctx, key, f)
}

// requestFailure is the failure a thread records for a request's error,
// logged; or the error that stops the run (authentication refused).
func (p *posting) requestFailure(err error) (checkpoint.Failure, error) {
	if zendesk.IsStatus(err, http.StatusUnauthorized) {
		return checkpoint.Failure{}, p.im.fatal.set(fmt.Errorf("%w: authentication refused: %w", ErrFatal, err))
	}
	f := checkpoint.Failure{Rule: RuleHTTP, Reason: err.Error()}
	log := p.im.opts.Logger
	var apiErr *zendesk.APIError
	if errors.As(err, &apiErr) {
		f.HTTPStatus = apiErr.Status
		f.RequestID = apiErr.RequestID
		f.Excerpt = apiErr.Body
		log.Warn().Str("thread_key", p.plan.ThreadKey).Int64("ticket_id", p.plan.TicketID).
			Int("status", apiErr.Status).Str("request_id", apiErr.RequestID).Str("api_warn", apiErr.APIWarn).
			Msg("thread failed")
	} else {
		log.Warn().Err(err).Str("thread_key", p.plan.ThreadKey).Int64("ticket_id", p.plan.TicketID).Msg("thread failed")
	}
	return f, nil
}

// eventKeys are the message keys of events.
func eventKeys(events []mapping.Event) []string {
	keys := make([]string, len(events))
	for i, e := range events {
		keys[i] = e.Key
	}
	return keys
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
