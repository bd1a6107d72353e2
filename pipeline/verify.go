package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"sort"
	"sync/atomic"
	"time"

	"github.com/sourcegraph/conc/stream"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/pipeline/archive"
	"github.com/threadlift/threadlift/pipeline/report"
	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/zendesk"
)

// VerifyVersion is the version of the verify JSON document; fields may be
// added, never renamed or removed without bumping it.
const VerifyVersion = 1

// Why a planned thread or message is not on its ticket.
const (
	// MissingNotImported: no run has sent it yet, as far as the checkpoint
	// knows (pending, in flight, or no checkpoint).
	MissingNotImported = "not_imported"
	// MissingRejected: it fails validation, so it is never sent: expected
	// to be missing.
	MissingRejected = "rejected"
	// MissingFailed: the checkpoint has its thread failed ('threadlift
	// failures' says why).
	MissingFailed = "failed"
	// MissingLost: the checkpoint says it was imported, the ticket does
	// not hold it (a checkpoint from another account, a restored sandbox,
	// a deleted ticket). 'verify --adopt' hands it back to import.
	MissingLost = "lost"
	// MissingTicketNotFound: the ticket does not exist (404).
	MissingTicketNotFound = "ticket_not_found"
)

// Ticket statuses in a TicketReport.
const (
	TicketOK         = "ok"         // every planned thread and message exactly once
	TicketProblems   = "problems"   // something missing (not rejected) or duplicated
	TicketNotFound   = "not_found"  // 404: everything planned on it is missing
	TicketUnreadable = "unreadable" // its side conversations could not be read (retries ran out)
)

// ReadAPI is the part of the Zendesk client verify uses: it only reads.
type ReadAPI interface {
	ListSideConversations(ctx context.Context, ticketID int64) ([]zendesk.SideConversation, []zendesk.Event, error)
}

var _ ReadAPI = (*zendesk.Client)(nil)

// VerifyProgress is told how verify goes: first the sources are read and
// mapped (pipeline.Progress), then the tickets are read back.
type VerifyProgress interface {
	Progress
	// Tickets is called once, with the number of tickets to read back.
	Tickets(total int)
	// TicketDone is called when a ticket was read back, whatever the outcome.
	TicketDone()
}

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// Options are the run's: sources, mapping, workers (tickets read back
	// at once), attempts, backoff, logger. Options.Progress is ignored:
	// set Progress.
	Options
	Progress VerifyProgress
	// Checkpoint, when set, tells the reasons of missing items apart
	// (failed, lost). With Adopt it must be writable and locked.
	Checkpoint *checkpoint.Store
	// Adopt records what each ticket holds into Checkpoint (see
	// checkpoint.Store.Adopt), one transaction per ticket.
	Adopt bool
	// StartTicket skips the tickets below it: to go on after an
	// interrupted verify (VerifyReport.NextTicket).
	StartTicket int64
	// OnPlan, if set, is called once the plan is known, before the first
	// request: the moment to show the predicted duration.
	OnPlan func(VerifyPlan)
	// OnTicket, if set, is called with each ticket's report, in ascending
	// ticket order, as soon as it and all before it are done: a caller
	// streams them out instead of holding them. An error stops the run.
	OnTicket func(*TicketReport) error
}

// VerifyPlan is what verify is about to read back.
type VerifyPlan struct {
	Tickets  int // to read back (after StartTicket)
	Threads  int // planned on those tickets
	Requests int // predicted: a list per ticket, plus a page per 100 side conversations beyond the first
	Duration report.Duration
}

// Counts counts planned items (threads or messages) by what their ticket
// holds. Planned = Present + Missing + Duplicated (+ Joined for threads).
type Counts struct {
	Planned    int `json:"planned"`
	Present    int `json:"present"`    // exactly once
	Missing    int `json:"missing"`    // not on the ticket, any reason (see MissingByReason)
	Duplicated int `json:"duplicated"` // more than once on the ticket
	// Joined (threads only): no side conversation carries the thread key,
	// but every one of its messages is on the ticket exactly once, in
	// other threads' side conversations (threads joined by a backfill).
	Joined int `json:"joined,omitempty"`
	// MissingByReason splits Missing: not_imported, rejected, failed,
	// lost, ticket_not_found.
	MissingByReason map[string]int `json:"missing_by_reason"`
}

func (c *Counts) missing(reason string) {
	c.Missing++
	if c.MissingByReason == nil {
		c.MissingByReason = map[string]int{}
	}
	c.MissingByReason[reason]++
}

func (c *Counts) add(o Counts) {
	c.Planned += o.Planned
	c.Present += o.Present
	c.Missing += o.Missing
	c.Duplicated += o.Duplicated
	c.Joined += o.Joined
	for r, n := range o.MissingByReason {
		if c.MissingByReason == nil {
			c.MissingByReason = map[string]int{}
		}
		c.MissingByReason[r] += n
	}
}

// bad reports whether c holds something that fails verify: an item
// missing for another reason than its rejection, or a duplicate.
func (c Counts) bad() bool {
	return c.Duplicated > 0 || c.Missing-c.MissingByReason[MissingRejected] > 0
}

// MissingItem is a planned thread (MessageKey "") or message that is not
// on its ticket.
type MissingItem struct {
	ThreadKey  string `json:"thread_key"`
	MessageKey string `json:"message_key,omitempty"`
	Reason     string `json:"reason"`
	Source     string `json:"source"`
}

// DuplicatedItem is a thread key on several side conversations (MessageKey
// "") or a message key on several events of one ticket.
type DuplicatedItem struct {
	ThreadKey           string   `json:"thread_key"`
	MessageKey          string   `json:"message_key,omitempty"`
	Count               int      `json:"count"`
	SideConversationIDs []string `json:"side_conversation_ids"`
}

// UnexpectedItem is a side conversation with a threadlift thread key that
// the plan does not have on this ticket, or an event with a message key
// the plan does not have on it (SideConversation then says where).
type UnexpectedItem struct {
	SideConversationID string `json:"side_conversation_id"`
	ThreadKey          string `json:"thread_key,omitempty"`
	MessageKey         string `json:"message_key,omitempty"`
	Messages           int    `json:"messages,omitempty"` // events with a message key on it
	// ExpectedTicketID is the ticket the plan puts this thread on, when it
	// is another one: the side conversation is on the wrong ticket.
	ExpectedTicketID int64 `json:"expected_ticket_id,omitempty"`
}

// AdoptCounts says what --adopt recorded.
type AdoptCounts struct {
	Threads   int      `json:"threads"`  // threads whose checkpoint row changed
	Imported  int      `json:"imported"` // messages now recorded as imported
	Reset     int      `json:"reset"`    // messages recorded as imported that the ticket lacks: pending again
	Kept      int      `json:"kept"`     // recorded as imported in a side conversation on the ticket that did not list them: left imported
	Elsewhere []string `json:"elsewhere,omitempty"`
}

func (a *AdoptCounts) add(o AdoptCounts) {
	a.Threads += o.Threads
	a.Imported += o.Imported
	a.Reset += o.Reset
	a.Kept += o.Kept
	a.Elsewhere = append(a.Elsewhere, o.Elsewhere...)
}

// TicketReport is what one ticket holds of the plan.
type TicketReport struct {
	TicketID int64  `json:"ticket_id"`
	Status   string `json:"status"`
	Error    string `json:"error,omitempty"`
	Threads  Counts `json:"threads"`
	Messages Counts `json:"messages"`
	// SideConversations on the ticket; WithoutKey of them carry no
	// threadlift thread key (counted, not judged); EventsWithoutKey are
	// events without a message key on those that do (an agent's reply).
	SideConversations int              `json:"side_conversations"`
	WithoutKey        int              `json:"side_conversations_without_key"`
	EventsWithoutKey  int              `json:"events_without_key"`
	Missing           []MissingItem    `json:"missing"`
	Duplicated        []DuplicatedItem `json:"duplicated"`
	Unexpected        []UnexpectedItem `json:"unexpected"`
	Adopted           *AdoptCounts     `json:"adopted,omitempty"`
}

// WrongTicket counts the unexpected side conversations that the plan puts
// on another ticket.
func (t *TicketReport) WrongTicket() int {
	n := 0
	for _, u := range t.Unexpected {
		if u.ExpectedTicketID != 0 {
			n++
		}
	}
	return n
}

// VerifyReport is the whole result. Tickets are not held here: they go to
// VerifyOptions.OnTicket as they are done.
type VerifyReport struct {
	VerifyVersion int `json:"verify_version"`
	// Complete is false when verify was interrupted, stopped on a fatal
	// error or started at StartTicket: the totals cover the tickets read.
	Complete    bool  `json:"complete"`
	StartTicket int64 `json:"start_ticket,omitempty"`
	// NextTicket, when not complete, is the --start-ticket that goes on
	// where this run stopped; 0 when every ticket was read.
	NextTicket int64 `json:"next_ticket,omitempty"`

	TicketsTotal      int `json:"tickets_total"` // planned tickets
	TicketsVerified   int `json:"tickets_verified"`
	TicketsNotFound   int `json:"tickets_not_found"`
	TicketsUnreadable int `json:"tickets_unreadable"`
	TicketsSkipped    int `json:"tickets_skipped"` // below StartTicket

	Threads  Counts `json:"threads"`
	Messages Counts `json:"messages"`
	// WithoutTicket counts the threads the plan puts on no ticket
	// (unmapped, or a record that could not be read at all): rejected,
	// never looked for.
	WithoutTicket int `json:"threads_without_ticket"`

	UnexpectedSideConversations int `json:"unexpected_side_conversations"`
	WrongTicket                 int `json:"wrong_ticket_side_conversations"`
	UnexpectedMessages          int `json:"unexpected_messages"`
	SideConversations           int `json:"side_conversations"`
	WithoutKey                  int `json:"side_conversations_without_key"`
	EventsWithoutKey            int `json:"events_without_key"`

	Adopted *AdoptCounts `json:"adopted,omitempty"`

	// Requests counts list requests sent (attempts, not pages: the
	// command fills in the client's exact count); Retries and RateLimited
	// the retried ones and the 429s among them.
	Requests         int     `json:"requests"`
	Retries          int     `json:"retries"`
	RateLimited      int     `json:"rate_limited"`
	ElapsedSeconds   float64 `json:"elapsed_seconds"`
	PredictedSeconds float64 `json:"predicted_seconds"`

	// OK is true when, on the tickets read, nothing planned is missing
	// (rejected items aside), nothing is duplicated and every ticket could
	// be read. See Complete for whether every ticket was read.
	OK bool `json:"ok"`
}

// Verify reads the sources as validate does, then reads back every side
// conversation of every ticket the plan puts threads on, and compares:
// which planned threads and messages are there exactly once, missing or
// duplicated, and which side conversations carry keys the plan does not
// have. It never writes to Zendesk. With Adopt it records each ticket into
// the checkpoint.
//
// Memory: a batch of the archive's threads at a time (readForReport:
// the whole archive when it fits in Options.ReadChunk messages), about
// 48 bytes per thread of plan (its ticket, where to load it again, a
// digest of its key), and the tickets being read back (Workers at once,
// plus the stream's queue) with the group of tickets' threads they are
// mapped from.
//
// The error wraps ErrInterrupted when ctx was cancelled and ErrFatal when
// the account refused the credentials or the side conversations (401,
// 403); the report is returned then too, covering the tickets read.
func Verify(ctx context.Context, api ReadAPI, opts VerifyOptions) (*VerifyReport, error) {
	if opts.Progress == nil {
		opts.Progress = nopVerifyProgress{}
	}
	opts.Options.Progress = opts.Progress
	opts.Options.defaults()
	if opts.Adopt && opts.Checkpoint == nil {
		return nil, errors.New("verify: adopt needs a checkpoint")
	}
	start := opts.Now()
	r, err := readForReport(ctx, opts.Options, opts.Progress.ReadBytes)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("verify: %w", ErrInterrupted)
		}
		return nil, err
	}
	defer r.Close()
	opts.Progress.Threads(r.Threads())

	v := &verifier{opts: opts, api: api, read: r, rep: &VerifyReport{VerifyVersion: VerifyVersion, StartTicket: opts.StartTicket,
		Threads: Counts{MissingByReason: map[string]int{}}, Messages: Counts{MissingByReason: map[string]int{}}}}
	defer v.close()
	if err := v.plan(ctx); err != nil {
		return nil, err
	}
	if opts.Adopt {
		// Like an import: the account checked, the file not clean until the
		// pass ends; and no trust until every ticket was read back.
		if err := opts.Checkpoint.BeginAdopt(ctx, opts.Account); err != nil {
			return nil, fmt.Errorf("verify --adopt: %w", err)
		}
	}
	err = v.readBack(ctx)
	if opts.Adopt {
		end := opts.Checkpoint.EndRun
		if err == nil && v.rep.Complete {
			// Every planned ticket is recorded as Zendesk holds it.
			end = opts.Checkpoint.Trust
		}
		if eerr := end(context.WithoutCancel(ctx)); eerr != nil && err == nil {
			err = fmt.Errorf("verify --adopt: %w", eerr)
		}
	}
	v.rep.ElapsedSeconds = opts.Now().Sub(start).Seconds()
	v.rep.OK = !v.rep.Threads.bad() && !v.rep.Messages.bad() && v.rep.TicketsUnreadable == 0
	return v.rep, err
}

type nopVerifyProgress struct{ nopProgress }

func (nopVerifyProgress) Tickets(int) {}
func (nopVerifyProgress) TicketDone() {}

// verifier is one Verify run.
type verifier struct {
	opts VerifyOptions
	api  ReadAPI
	read *reportRead
	a    *archive.Archive // the whole archive, when it was read whole
	rep  *VerifyReport

	planned []plannedThread // the threads with a ticket; by ticket once planned (sortPlanned)
	keys    keyTickets      // thread key → the plan's ticket, for wrong-ticket side conversations

	requestStats
}

func (v *verifier) close() {
	if v.a != nil {
		v.a.Close()
	}
}

// mapLoad is how verify loads messages: keys, validity and tickets do not
// depend on the text of HTML bodies.
var mapLoad = sources.LoadOptions{NoHTMLText: true}

// plan maps every thread once to learn its ticket, a batch at a time.
// Only the ticket and where to load the thread again are kept; each
// ticket's threads are mapped again when it is read back, so that memory
// does not hold every plan. The whole archive, when read whole, is kept
// to map them from.
func (v *verifier) plan(ctx context.Context) error {
	v.planned = make([]plannedThread, 0, v.read.Threads())
	v.keys = make(keyTickets, 0, v.read.Threads())
	for {
		a, err := v.read.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("verify: %w", ErrInterrupted)
			}
			return fmt.Errorf("verify: %w", err)
		}
		rec := a.RecordedIDs()
		err = v.planBatch(ctx, a, rec)
		if rec == nil {
			v.a = a // read whole
		} else {
			a.Close()
		}
		if err != nil {
			return err
		}
	}
	v.sortPlanned()
	return nil
}

// planBatch maps every thread of a (the whole archive, or a batch whose
// threads' recorded ids are rec) once to learn its ticket.
func (v *verifier) planBatch(ctx context.Context, a *archive.Archive, rec []int64) error {
	ticketOf := make([]int64, len(a.Threads))
	sizes := make([]int32, len(a.Threads))
	workers := min(runtime.GOMAXPROCS(0)+1, 4)
	s := stream.New().WithMaxGoroutines(workers)
	var stop atomic.Bool // set by the consumer at the first error
	var first error      // the consumer's first error; read after s.Wait
	for i, t := range a.Threads {
		if ctx.Err() != nil || stop.Load() {
			break
		}
		s.Go(func() stream.Callback {
			var plan *mapping.Plan
			var n int
			var err error
			if ctx.Err() == nil && !stop.Load() {
				plan, n, err = mapThread(a, v.opts.Mapper, t, mapLoad)
			}
			return func() {
				switch {
				case first != nil || plan == nil && err == nil:
				case err != nil:
					first = fmt.Errorf("verify: map thread %s: %w", t.Key, err)
					stop.Store(true)
				default:
					ticketOf[i], sizes[i] = plan.TicketID, int32(min(n, math.MaxInt32))
					v.opts.Progress.ThreadDone()
				}
			}
		})
	}
	s.Wait()
	if first != nil {
		return first
	}
	if ctx.Err() != nil {
		return fmt.Errorf("verify: %w", ErrInterrupted)
	}
	for i, id := range ticketOf {
		if id == 0 {
			v.rep.WithoutTicket++
			continue
		}
		at := int64(i)
		if rec != nil {
			at = rec[i]
		}
		v.planned = append(v.planned, plannedThread{ticket: id, at: at, envelopes: sizes[i]})
		v.keys = append(v.keys, keyTicket{key: threadKeyDigest(a.Threads[i].Key), ticket: id})
	}
	v.rep.WithoutTicket += len(a.Bad)
	return nil
}

// readBack reads every ticket back, Workers at once, and reports them in
// ascending order.
func (v *verifier) readBack(ctx context.Context) error {
	tickets := v.ticketsToRead()
	v.announce(tickets)
	var (
		fatal    atomic.Pointer[error] // the first error that stops the run
		done     int                   // tickets reported, in order (consumer only; read after s.Wait)
		consumer error                 // OnTicket's error (consumer only; read after s.Wait)
		refused  atomic.Bool           // set by the consumer when OnTicket failed
	)
	stop := func() bool { return ctx.Err() != nil || fatal.Load() != nil || refused.Load() }
	loader := newThreadLoader(v, tickets)
	s := stream.New().WithMaxGoroutines(v.opts.Workers)
	for k, t := range tickets {
		if stop() {
			break
		}
		g, err := loader.hold(ctx, k)
		if err != nil {
			if ctx.Err() == nil {
				fatal.CompareAndSwap(nil, &err)
			}
			break
		}
		s.Go(func() stream.Callback {
			tr := v.readOne(ctx, t, g, stop, &fatal)
			return func() {
				if tr == nil || consumer != nil || done < len(tickets) && tickets[done].id != t.id {
					return // stopping: this ticket and the rest are not reported
				}
				done++
				if err := v.report(tr); err != nil {
					consumer = err
					refused.Store(true)
				}
			}
		})
	}
	loader.close()
	s.Wait()
	v.rep.Requests = int(v.requests.Load())
	v.rep.Retries = int(v.retries.Load())
	v.rep.RateLimited = int(v.rateLimited.Load())
	v.rep.Complete = done == len(tickets) && v.opts.StartTicket <= 0
	if done < len(tickets) {
		v.rep.NextTicket = tickets[done].id
	}
	switch {
	case consumer != nil:
		return consumer
	case fatal.Load() != nil:
		return *fatal.Load()
	case done < len(tickets):
		return fmt.Errorf("verify: %w", ErrInterrupted)
	}
	return nil
}

// readOne reads ticket t back, unless the run is stopping (it only
// releases g then); an error that stops the run goes to fatal.
func (v *verifier) readOne(ctx context.Context, t plannedTicket, g *loadedThreads, stop func() bool, fatal *atomic.Pointer[error]) *TicketReport {
	if stop() {
		g.release()
		return nil
	}
	tr, err := v.ticket(ctx, t, g)
	if err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
		fatal.CompareAndSwap(nil, &err)
	}
	return tr
}

// ticketsToRead are the planned tickets from StartTicket on, in
// ascending order; the others are counted as skipped.
func (v *verifier) ticketsToRead() []plannedTicket {
	var out []plannedTicket
	for i := 0; i < len(v.planned); {
		t := plannedTicket{id: v.planned[i].ticket}
		j := i
		for ; j < len(v.planned) && v.planned[j].ticket == t.id; j++ {
			t.envelopes += int(v.planned[j].envelopes)
		}
		t.threads = v.planned[i:j]
		i = j
		if t.id < v.opts.StartTicket {
			v.rep.TicketsSkipped++
			continue
		}
		out = append(out, t)
	}
	return out
}

// announce predicts what reading tickets back takes, and tells OnPlan
// and the progress.
func (v *verifier) announce(tickets []plannedTicket) {
	plan := VerifyPlan{Tickets: len(tickets)}
	for _, t := range tickets {
		n := len(t.threads)
		plan.Threads += n
		plan.Requests += max(1, (n+99)/100)
	}
	plan.Duration = report.PredictDuration(plan.Requests, v.opts.RequestsPerMinute, 0)
	v.rep.PredictedSeconds = plan.Duration.Seconds
	if v.opts.OnPlan != nil {
		v.opts.OnPlan(plan)
	}
	v.opts.Progress.Tickets(len(tickets))
}

// report adds a ticket read back to the totals and hands it to OnTicket.
func (v *verifier) report(tr *TicketReport) error {
	v.add(tr)
	v.opts.Progress.TicketDone()
	if v.opts.OnTicket != nil {
		return v.opts.OnTicket(tr)
	}
	return nil
}

// add adds a ticket's report to the totals.
func (v *verifier) add(tr *TicketReport) {
	r := v.rep
	switch tr.Status {
	case TicketNotFound:
		r.TicketsNotFound++
	case TicketUnreadable:
		r.TicketsUnreadable++
	}
	r.TicketsVerified++
	r.Threads.add(tr.Threads)
	r.Messages.add(tr.Messages)
	r.SideConversations += tr.SideConversations
	r.WithoutKey += tr.WithoutKey
	r.EventsWithoutKey += tr.EventsWithoutKey
	for _, u := range tr.Unexpected {
		switch {
		case u.MessageKey != "":
			r.UnexpectedMessages++
		case u.ExpectedTicketID != 0:
			r.WrongTicket++
		default:
			r.UnexpectedSideConversations++
		}
	}
	if tr.Adopted != nil {
		if r.Adopted == nil {
			r.Adopted = &AdoptCounts{}
		}
		r.Adopted.add(*tr.Adopted)
	}
}

// ticket reads one ticket back and compares it with its threads' plans,
// mapped again from g, which it releases. It returns an error only when
// the whole run must stop.
func (v *verifier) ticket(ctx context.Context, t plannedTicket, g *loadedThreads) (*TicketReport, error) {
	id := t.id
	tr := &TicketReport{TicketID: id, Status: TicketOK, Missing: []MissingItem{}, Duplicated: []DuplicatedItem{}, Unexpected: []UnexpectedItem{}}
	plans, err := v.plans(t, g)
	if err != nil {
		// The archive changed since it was read: this ticket cannot be
		// judged, the others can.
		tr.Status, tr.Error = TicketUnreadable, fmt.Sprintf("read the sources again: %v", err)
		return tr, nil
	}
	scs, events, err := v.list(ctx, id)
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case zendesk.IsStatus(err, 401):
		return nil, fmt.Errorf("%w: authentication refused: %w", ErrFatal, err)
	case zendesk.IsStatus(err, 403):
		return nil, fmt.Errorf("%w: side conversations refused (403: the user's role, or an account without the side-conversations add-on): %w", ErrFatal, err)
	case zendesk.IsStatus(err, 404):
		tr.Status = TicketNotFound
		tr.Error = err.Error()
		scs, events = nil, nil
	case err != nil:
		tr.Status, tr.Error = TicketUnreadable, err.Error()
		v.opts.Logger.Warn().Err(err).Int64("ticket_id", id).Msg("could not read the ticket's side conversations")
		return tr, nil
	}
	cmp := compareTicket(id, plans, scs, events, v.keys)
	cmp.report(tr)
	switch {
	case tr.Status == TicketNotFound:
		// Nothing could be read: every missing item is missing because
		// the ticket is, unless it is rejected anyway. Nothing is adopted.
		for i := range tr.Missing {
			if tr.Missing[i].Reason != MissingRejected {
				tr.Missing[i].Reason = MissingTicketNotFound
			}
		}
		tr.Threads.MissingByReason, tr.Messages.MissingByReason = recount(tr.Missing)
	case v.opts.Checkpoint != nil:
		// The reasons are the checkpoint's before adopting.
		if err := v.reasons(ctx, tr); err != nil {
			return nil, err
		}
		if !v.opts.Adopt {
			break
		}
		res, err := v.opts.Checkpoint.Adopt(context.WithoutCancel(ctx), id, cmp.adoption(), cmp.present(), cmp.ids())
		if err != nil {
			return nil, fmt.Errorf("%w: adopt ticket %d: %w", ErrFatal, id, err)
		}
		tr.Adopted = &AdoptCounts{Threads: res.Threads, Imported: res.Imported, Reset: res.Reset, Kept: res.Kept, Elsewhere: res.Elsewhere}
	}
	if tr.Status == TicketOK && (tr.Threads.bad() || tr.Messages.bad()) {
		tr.Status = TicketProblems
	}
	return tr, nil
}

// plans maps t's threads again from g, in thread order, and releases g.
func (v *verifier) plans(t plannedTicket, g *loadedThreads) ([]*mapping.Plan, error) {
	defer g.release()
	plans := make([]*mapping.Plan, 0, len(t.threads))
	for _, p := range t.threads {
		th, err := g.thread(p.at)
		if err != nil {
			return nil, err
		}
		plan, _, err := mapThread(g.a, v.opts.Mapper, th, mapLoad)
		if err != nil {
			return nil, err
		}
		plans = append(plans, plan)
	}
	return plans, nil
}

// recount rebuilds the missing counts by reason from the items.
func recount(items []MissingItem) (threads, messages map[string]int) {
	threads, messages = map[string]int{}, map[string]int{}
	for _, m := range items {
		if m.MessageKey == "" {
			threads[m.Reason]++
		} else {
			messages[m.Reason]++
		}
	}
	return threads, messages
}

// reasons tells apart, from the checkpoint, why items missing for
// MissingNotImported are missing: their thread failed, or the checkpoint
// says they were imported (lost).
func (v *verifier) reasons(ctx context.Context, tr *TicketReport) error {
	type state struct {
		thread checkpoint.Thread
		found  bool
		msgs   map[string]string
	}
	rows := map[string]*state{}
	changed := false
	for i := range tr.Missing {
		m := &tr.Missing[i]
		if m.Reason != MissingNotImported {
			continue
		}
		st := rows[m.ThreadKey]
		if st == nil {
			th, found, err := v.opts.Checkpoint.Thread(ctx, m.ThreadKey)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrFatal, err)
			}
			st = &state{thread: th, found: found, msgs: map[string]string{}}
			if found {
				ms, err := v.opts.Checkpoint.Messages(ctx, m.ThreadKey)
				if err != nil {
					return fmt.Errorf("%w: %w", ErrFatal, err)
				}
				for _, x := range ms {
					st.msgs[x.Key] = x.State
				}
			}
			rows[m.ThreadKey] = st
		}
		if !st.found {
			continue
		}
		switch {
		case m.MessageKey != "" && st.msgs[m.MessageKey] == checkpoint.MessageImported,
			m.MessageKey == "" && st.thread.SideConversationID != "":
			m.Reason = MissingLost
		case st.thread.State == checkpoint.Failed:
			m.Reason = MissingFailed
		default:
			continue
		}
		changed = true
	}
	if changed {
		tr.Threads.MissingByReason, tr.Messages.MissingByReason = recount(tr.Missing)
	}
	return nil
}

// list reads a ticket's side conversations with their events, every page,
// retrying what is retryable within MaxAttempts; paced by the client's
// limiters and Retry-After gate like every import request.
func (v *verifier) list(ctx context.Context, id int64) (scs []zendesk.SideConversation, evs []zendesk.Event, err error) {
	vd := newRetrier(&v.opts.Options, &v.requestStats).call(ctx, try{ticket: id}, func(ctx context.Context) (err error) {
		scs, evs, err = v.api.ListSideConversations(ctx, id)
		return err
	})
	if vd.err != nil {
		return nil, nil, fmt.Errorf("list side conversations of ticket %d: %w", id, vd.err)
	}
	return scs, evs, nil
}

// ticketCompare is one ticket's plans set against what it holds.
type ticketCompare struct {
	id     int64
	plans  []*mapping.Plan
	keyTo  keyTickets
	scs    []zendesk.SideConversation
	byKey  map[string][]int           // thread key → its side conversations (indexes in scs)
	events map[string][]zendesk.Event // message key → its events on the ticket
	perSC  map[string]map[string]bool // side conversation → its message keys
	scAt   map[string]zendesk.SideConversation
	noKey  int
	evNoK  int
}

func compareTicket(id int64, plans []*mapping.Plan, scs []zendesk.SideConversation, events []zendesk.Event, keyTo keyTickets) *ticketCompare {
	c := &ticketCompare{id: id, plans: plans, keyTo: keyTo, scs: scs,
		byKey: map[string][]int{}, events: map[string][]zendesk.Event{}, perSC: map[string]map[string]bool{}, scAt: map[string]zendesk.SideConversation{}}
	keyed := map[string]bool{}
	for i, sc := range scs {
		c.scAt[sc.ID] = sc
		if k := sc.ExternalIDs[zendesk.ThreadKeyField]; k != "" {
			c.byKey[k] = append(c.byKey[k], i)
			keyed[sc.ID] = true
		} else {
			c.noKey++
		}
	}
	for _, e := range events {
		k := ""
		if e.Message != nil {
			k = e.Message.ExternalIDs[zendesk.MessageKeyField]
		}
		if k == "" {
			if keyed[e.SideConversationID] {
				c.evNoK++
			}
			continue
		}
		c.events[k] = append(c.events[k], e)
		if c.perSC[e.SideConversationID] == nil {
			c.perSC[e.SideConversationID] = map[string]bool{}
		}
		c.perSC[e.SideConversationID][k] = true
	}
	return c
}

// planned are a plan's message keys: the importable ones (events) and the
// rejected ones, each once; all rejected when the thread is.
func planned(p *mapping.Plan) (importable, rejected []mapping.Rejected) {
	seen := map[string]bool{}
	for _, e := range p.Events {
		if !seen[e.Key] {
			seen[e.Key] = true
			importable = append(importable, mapping.Rejected{Key: e.Key, Source: e.Source})
		}
	}
	for _, r := range p.Rejected {
		if !r.Duplicate && !seen[r.Key] {
			seen[r.Key] = true
			rejected = append(rejected, r)
		}
	}
	if !p.Valid() {
		rejected, importable = append(importable, rejected...), nil
	}
	return importable, rejected
}

func (c *ticketCompare) scIDs(idx []int) []string {
	out := make([]string, len(idx))
	for i, j := range idx {
		out[i] = c.scs[j].ID
	}
	return out
}

func eventSCs(evs []zendesk.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.SideConversationID
	}
	return out
}

// report fills tr with what the comparison finds. Missing items all get
// MissingNotImported or MissingRejected; reasons refines them.
func (c *ticketCompare) report(tr *TicketReport) {
	tr.SideConversations = len(c.scs)
	tr.WithoutKey = c.noKey
	tr.EventsWithoutKey = c.evNoK
	plannedKeys := map[string]bool{}   // every planned message key of the ticket
	plannedThread := map[string]bool{} // every planned thread key of the ticket
	for _, p := range c.plans {
		plannedThread[p.ThreadKey] = true
		imp, rej := planned(p)
		for _, m := range imp {
			plannedKeys[m.Key] = true
		}
		for _, m := range rej {
			plannedKeys[m.Key] = true
		}
	}
	for _, p := range c.plans {
		allHere := c.reportMessages(tr, p)
		c.reportThread(tr, p, allHere)
	}
	onUnexpected := c.reportUnexpected(tr, plannedKeys, plannedThread)
	c.reportStray(tr, plannedKeys, onUnexpected)
	if tr.Threads.MissingByReason == nil {
		tr.Threads.MissingByReason = map[string]int{}
	}
	if tr.Messages.MissingByReason == nil {
		tr.Messages.MissingByReason = map[string]int{}
	}
}

// reportMessages counts the messages of plan p on the ticket. allHere
// says every importable one is there exactly once (and there is one).
func (c *ticketCompare) reportMessages(tr *TicketReport, p *mapping.Plan) (allHere bool) {
	imp, rej := planned(p)
	allHere = len(imp) > 0
	for _, group := range []struct {
		items    []mapping.Rejected
		rejected bool
	}{{imp, false}, {rej, true}} {
		for _, m := range group.items {
			tr.Messages.Planned++
			switch n := len(c.events[m.Key]); {
			case n == 1:
				tr.Messages.Present++
			case n > 1:
				tr.Messages.Duplicated++
				tr.Duplicated = append(tr.Duplicated, DuplicatedItem{ThreadKey: p.ThreadKey, MessageKey: m.Key, Count: n,
					SideConversationIDs: eventSCs(c.events[m.Key])})
				allHere = false
			default:
				reason := MissingNotImported
				if group.rejected {
					reason = MissingRejected
				}
				tr.Messages.missing(reason)
				tr.Missing = append(tr.Missing, MissingItem{ThreadKey: p.ThreadKey, MessageKey: m.Key, Reason: reason, Source: m.Source.String()})
				if !group.rejected {
					allHere = false
				}
			}
		}
	}
	return allHere
}

// reportThread counts the thread of plan p on the ticket: present,
// duplicated, joined (allHere: its messages are there in other threads'
// side conversations) or missing.
func (c *ticketCompare) reportThread(tr *TicketReport, p *mapping.Plan, allHere bool) {
	tr.Threads.Planned++
	switch n := len(c.byKey[p.ThreadKey]); {
	case n == 1:
		tr.Threads.Present++
	case n > 1:
		tr.Threads.Duplicated++
		tr.Duplicated = append(tr.Duplicated, DuplicatedItem{ThreadKey: p.ThreadKey, Count: n, SideConversationIDs: c.scIDs(c.byKey[p.ThreadKey])})
	case allHere:
		tr.Threads.Joined++
	default:
		reason := MissingNotImported
		if !p.Valid() {
			reason = MissingRejected
		}
		tr.Threads.missing(reason)
		tr.Missing = append(tr.Missing, MissingItem{ThreadKey: p.ThreadKey, Reason: reason, Source: p.Source.String()})
	}
}

// reportUnexpected lists the side conversations with a threadlift key
// the plan does not have on this ticket, and returns them.
func (c *ticketCompare) reportUnexpected(tr *TicketReport, plannedKeys, plannedThread map[string]bool) map[string]bool {
	onUnexpected := map[string]bool{}
	for _, sc := range c.scs {
		k := sc.ExternalIDs[zendesk.ThreadKeyField]
		if k == "" || plannedThread[k] {
			continue
		}
		keys := c.perSC[sc.ID]
		if other := c.keyTo.ticketOf(k); other != 0 && other != c.id {
			tr.Unexpected = append(tr.Unexpected, UnexpectedItem{SideConversationID: sc.ID, ThreadKey: k, Messages: len(keys), ExpectedTicketID: other})
			onUnexpected[sc.ID] = true
			continue
		}
		part := len(keys) > 0 // a part of a thread joined by a backfill: its messages are planned here
		for mk := range keys {
			part = part && plannedKeys[mk]
		}
		if !part {
			tr.Unexpected = append(tr.Unexpected, UnexpectedItem{SideConversationID: sc.ID, ThreadKey: k, Messages: len(keys)})
			onUnexpected[sc.ID] = true
		}
	}
	return onUnexpected
}

// reportStray lists the events with message keys the plan does not have
// on this ticket, on side conversations not reported already.
func (c *ticketCompare) reportStray(tr *TicketReport, plannedKeys, onUnexpected map[string]bool) {
	var stray []UnexpectedItem
	for mk, evs := range c.events {
		if plannedKeys[mk] {
			continue
		}
		for _, e := range evs {
			if !onUnexpected[e.SideConversationID] {
				stray = append(stray, UnexpectedItem{SideConversationID: e.SideConversationID, MessageKey: mk})
			}
		}
	}
	sort.Slice(stray, func(i, j int) bool {
		if stray[i].MessageKey != stray[j].MessageKey {
			return stray[i].MessageKey < stray[j].MessageKey
		}
		return stray[i].SideConversationID < stray[j].SideConversationID
	})
	tr.Unexpected = append(tr.Unexpected, stray...)
}

// chosen is the side conversation a thread's new messages go to when the
// ticket holds its key: the one with most of its messages, then the
// earliest, then the first listed.
func (c *ticketCompare) chosen(p *mapping.Plan) string {
	best := ""
	bestN := -1
	var bestAt time.Time
	for _, i := range c.byKey[p.ThreadKey] {
		sc := c.scs[i]
		n := 0
		for _, e := range p.Events {
			if c.perSC[sc.ID][e.Key] {
				n++
			}
		}
		if n > bestN || n == bestN && sc.CreatedAt.Before(bestAt) {
			best, bestN, bestAt = sc.ID, n, sc.CreatedAt
		}
	}
	return best
}

// adoption is what Adopt records for the ticket's planned threads.
func (c *ticketCompare) adoption() []checkpoint.AdoptThread {
	out := make([]checkpoint.AdoptThread, 0, len(c.plans))
	for _, p := range c.plans {
		reg, _ := planRegistration(p)
		if !p.Valid() {
			reg.Thread.State, reg.Thread.Rule, reg.Thread.Reason = checkpoint.Rejected, p.Rule, p.Reason
		}
		out = append(out, checkpoint.AdoptThread{Registration: reg, SideConversationID: c.chosen(p)})
	}
	return out
}

// ids are the ticket's side conversations.
func (c *ticketCompare) ids() []string {
	out := make([]string, len(c.scs))
	for i, sc := range c.scs {
		out[i] = sc.ID
	}
	return out
}

// present maps every message key on the ticket to the side conversation
// holding it; a key held twice goes to the side conversation its thread
// was adopted into when that is one of them.
func (c *ticketCompare) present() map[string]string {
	home := map[string]string{}
	for _, p := range c.plans {
		if sc := c.chosen(p); sc != "" {
			for _, e := range p.Events {
				home[e.Key] = sc
			}
		}
	}
	out := make(map[string]string, len(c.events))
	for mk, evs := range c.events {
		out[mk] = evs[0].SideConversationID
		for _, e := range evs {
			if e.SideConversationID == home[mk] {
				out[mk] = home[mk]
			}
		}
	}
	return out
}
