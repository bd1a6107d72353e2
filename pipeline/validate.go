package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sourcegraph/conc/stream"

	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/mapping/thread"
	"github.com/threadlift/threadlift/pipeline/archive"
	"github.com/threadlift/threadlift/pipeline/report"
	"github.com/threadlift/threadlift/sources"
)

// ReportOptions tune what Validate puts in the report. The zero value
// means the defaults.
type ReportOptions struct {
	// OversizeAttachmentBytes: attachments larger than this are counted as
	// oversize; default report.DefaultOversizeAttachmentBytes (50 MiB).
	OversizeAttachmentBytes int64
	// Samples is how many valid threads get their first request shown in
	// full; default 3, negative for none.
	Samples int
	// TopTickets is how many tickets the top_tickets list holds; default 20.
	TopTickets int
	// Workers is how many threads are loaded and mapped at once; default
	// one more than GOMAXPROCS, at most 4. The report does not depend on
	// it: threads are added to it in thread order.
	Workers int
	// Threads, when set, is given one row per thread as it is validated
	// (threads.csv), unreadable records first, then threads in thread
	// order; an error stops the validation. No list of every thread is
	// kept.
	Threads func(report.ThreadRow) error
}

// oversizeFrom makes the mapper's attachment limit what "oversize"
// means, unless OversizeAttachmentBytes is set.
func (o *ReportOptions) oversizeFrom(m *mapping.Mapper) {
	if o.OversizeAttachmentBytes <= 0 {
		o.OversizeAttachmentBytes = m.Options().Attachments.MaxBytes
	}
}

func (o *ReportOptions) defaults() {
	if o.OversizeAttachmentBytes <= 0 {
		o.OversizeAttachmentBytes = report.DefaultOversizeAttachmentBytes
	}
	if o.Samples == 0 {
		o.Samples = 3
	}
	if o.TopTickets <= 0 {
		o.TopTickets = 20
	}
	if o.Workers <= 0 {
		// One more than the cores keeps them busy while a worker waits for
		// a read; beyond a few the in-order consumer is the limit, and
		// every worker holds a thread's messages.
		o.Workers = min(runtime.GOMAXPROCS(0)+1, 4)
	}
}

// Validate reads, threads, maps and validates every thread, and returns
// the report. It posts nothing.
func Validate(ctx context.Context, opts Options) (*report.Report, error) {
	return ValidateReport(ctx, opts, ReportOptions{})
}

// ValidateReport is Validate with report options. An archive of more
// than Options.ReadChunk messages is read in batches of complete threads
// (readForReport): the report is a whole read's, in bounded memory.
func ValidateReport(ctx context.Context, opts Options, ropts ReportOptions) (*report.Report, error) {
	opts.defaults()
	ropts.oversizeFrom(opts.Mapper)
	ropts.defaults()
	r, err := readForReport(ctx, opts, opts.Progress.ReadBytes)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("validate: %w", ErrInterrupted)
		}
		return nil, err
	}
	defer r.Close()
	opts.Progress.Threads(r.Threads())

	rep := &report.Report{}
	v := newValidation(rep, ropts, opts.Mapper.MaxEventsPerRequest(), make(map[string]int), make(map[string]int))
	var dates dateRange
	var stats []archive.Stat
	for first := true; ; first = false {
		a, err := r.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("validate: %w", ErrInterrupted)
			}
			return nil, fmt.Errorf("validate: %w", err)
		}
		if first {
			stats = a.Stats()
			err = v.begin(a)
		}
		if err == nil {
			dates.add(a)
			rep.Messages += a.Len() + len(a.Bad)
			err = v.addThreads(ctx, a, opts)
		}
		a.Close()
		if err != nil {
			return nil, err
		}
	}
	dates.fill(rep)
	tickets, perThread, perSC := v.tickets, v.perThread, v.perSC
	rep.Tickets = len(tickets)
	rep.RequestsPlanned = rep.RequestsByKind.Import + rep.RequestsByKind.EventsImport
	rep.Chunks.Total = rep.RequestsPlanned
	for _, s := range stats {
		name := s.File()
		rep.Sources = append(rep.Sources, report.SourceStats{
			File: name, Format: s.Type, Bytes: s.Bytes, Messages: s.Messages,
			Threads: v.threadsBySource[name], Rejected: v.rejectedBySource[name], Skipped: skippedCount(s.Skipped),
		})
	}

	v.finish(tickets, perThread, perSC, opts)
	return rep, nil
}

// begin starts the report with what the first batch holds for the whole
// archive: the sources' issues, the records that corrected copies
// replaced, and the unreadable records.
func (v *validation) begin(a *archive.Archive) error {
	rep := v.rep
	rep.Issues = append(rep.Issues, sourceIssues(a)...)
	v.names = newSourceNames(a)
	sup, err := supersededIssues(a)
	if err != nil {
		return fmt.Errorf("validate: %w", err)
	}
	rep.Issues = append(rep.Issues, sup...)
	for _, b := range a.Bad {
		rep.Threads++
		rep.InvalidThreads++
		rep.Issues = append(rep.Issues, report.Issue{
			Severity: string(sources.SeverityError), Rule: string(b.Err.Rule),
			Source: b.Err.Loc.String(), Message: b.Err.Err.Error(),
		})
		v.rejectedBySource[v.names.of(b.Err.Loc.File)]++
		v.threadsBySource[v.names.of(b.Err.Loc.File)]++
		if v.ropts.Threads != nil {
			row := report.ThreadRow{Messages: 1, Status: report.ThreadInvalid, Source: b.Err.Loc.String(),
				FirstIssue: string(b.Err.Rule) + ": " + b.Err.Err.Error()}
			if err := v.ropts.Threads(row); err != nil {
				return fmt.Errorf("validate: %w", err)
			}
		}
	}
	return nil
}

// dateRange is the report's dates of every message read, rejected ones
// included, gathered batch by batch.
type dateRange struct {
	months           map[string]int
	earliest, latest time.Time
	undated          int
}

// add counts a's messages.
func (d *dateRange) add(a *archive.Archive) {
	if d.months == nil {
		d.months = make(map[string]int)
	}
	for i := range a.Len() {
		t := a.Date(i)
		if t.IsZero() {
			d.undated++
			continue
		}
		t = t.UTC()
		d.months[t.Format("2006-01")]++
		if d.earliest.IsZero() || t.Before(d.earliest) {
			d.earliest = t
		}
		if d.latest.IsZero() || t.After(d.latest) {
			d.latest = t
		}
	}
	d.undated += len(a.Bad)
}

// fill writes the dates into rep.
func (d *dateRange) fill(rep *report.Report) {
	if !d.earliest.IsZero() {
		rep.DateRange.Earliest = d.earliest.Format(time.RFC3339)
		rep.DateRange.Latest = d.latest.Format(time.RFC3339)
	}
	rep.DateRange.Undated += d.undated
	for m, n := range d.months {
		rep.MessagesPerMonth = append(rep.MessagesPerMonth, report.MonthCount{Month: m, Messages: n})
	}
	sort.Slice(rep.MessagesPerMonth, func(i, j int) bool { return rep.MessagesPerMonth[i].Month < rep.MessagesPerMonth[j].Month })
}

// validation is the part of the report built thread by thread, in thread
// order.
type validation struct {
	rep              *report.Report
	ropts            ReportOptions
	n                int // events per request
	tickets          map[int64]*report.TicketCount
	perThread, perSC []int
	rejectedBySource map[string]int
	threadsBySource  map[string]int
	names            sourceNames // a record's file → its source's name
}

// newValidation starts the validation that fills rep: n events per
// request; the unreadable records are counted by source already.
func newValidation(rep *report.Report, ropts ReportOptions, n int, rejectedBySource, threadsBySource map[string]int) *validation {
	rep.Chunks.MaxEventsPerRequest = n
	rep.Attachments.LimitBytes = ropts.OversizeAttachmentBytes
	return &validation{rep: rep, ropts: ropts, n: n,
		tickets: make(map[int64]*report.TicketCount), rejectedBySource: rejectedBySource, threadsBySource: threadsBySource}
}

// finish fills the report's top tickets and distributions (side
// conversations per ticket, from tickets; messages per thread; events
// per side conversation) and the predicted duration, then finishes it.
func (v *validation) finish(tickets map[int64]*report.TicketCount, perThread, perSC []int, opts Options) {
	rep := v.rep
	perTicket := make([]int, 0, len(tickets))
	for _, tc := range tickets {
		perTicket = append(perTicket, tc.SideConversations)
		rep.TopTickets = append(rep.TopTickets, *tc)
	}
	sort.Slice(rep.TopTickets, func(i, j int) bool {
		x, y := rep.TopTickets[i], rep.TopTickets[j]
		if x.SideConversations != y.SideConversations {
			return x.SideConversations > y.SideConversations
		}
		if x.Events != y.Events {
			return x.Events > y.Events
		}
		return x.TicketID < y.TicketID
	})
	rep.TopTickets = rep.TopTickets[:min(len(rep.TopTickets), v.ropts.TopTickets)]
	rep.MessagesPerThread = report.NewDistribution(perThread)
	rep.ThreadsPerTicket = report.NewDistribution(perTicket)
	rep.EventsPerSideConversation = report.NewDistribution(perSC)
	rep.Duration = report.PredictDuration(rep.RequestsPlanned, opts.RequestsPerMinute, opts.WritesPer10Minutes)
	rep.PredictedSeconds = rep.Duration.Seconds
	rep.Finish()
}

// threadResult is one thread loaded and mapped by a worker.
type threadResult struct {
	t        thread.Thread
	messages int // members and duplicates
	plan     *mapping.Plan
	err      error
}

// addThreads loads and maps the threads on ropts.Workers goroutines and adds
// them to the report in thread order, so the report is the same whatever
// the number of workers. At most Workers+2 threads are loaded and not yet
// added (the stream's queue), whatever the archive's size.
func (v *validation) addThreads(ctx context.Context, a *archive.Archive, opts Options) error {
	// Messages are loaded without the text of HTML bodies: nothing the
	// report counts depends on it. Samples show the text, and are loaded
	// again in full (see add).
	light := sources.LoadOptions{NoHTMLText: true}
	s := stream.New().WithMaxGoroutines(v.ropts.Workers)
	var stop atomic.Bool // set by the consumer at the first error
	var err error        // the consumer's first error; read after s.Wait
	added := 0
	for _, t := range a.Threads {
		if ctx.Err() != nil || stop.Load() {
			break
		}
		s.Go(func() stream.Callback {
			r := threadResult{t: t}
			if ctx.Err() == nil && !stop.Load() {
				r.plan, r.messages, r.err = mapThread(a, opts.Mapper, t, light)
			}
			return func() {
				if err != nil || r.plan == nil && r.err == nil {
					return // stopping: this thread and the rest are not added
				}
				if r.err == nil {
					r.err = v.add(a, opts.Mapper, r)
				}
				if r.err != nil {
					err = r.err
					stop.Store(true)
					return
				}
				added++
				opts.Progress.ThreadDone()
			}
		})
	}
	s.Wait()
	switch {
	case err != nil:
		return err
	case added < len(a.Threads):
		return fmt.Errorf("validate: %w", ErrInterrupted)
	}
	return nil
}

// mapThread loads a thread's messages with lo and maps them. messages
// counts its members and duplicates.
func mapThread(a *archive.Archive, m *mapping.Mapper, t thread.Thread, lo sources.LoadOptions) (plan *mapping.Plan, messages int, err error) {
	msgs, dups, err := a.LoadThread(t, lo)
	if err != nil {
		return nil, 0, err
	}
	return m.Map(t.Key, msgs, dups), len(msgs) + len(dups), nil
}

// add adds one thread's plan to the report.
func (v *validation) add(a *archive.Archive, m *mapping.Mapper, r threadResult) error {
	rep, plan := v.rep, r.plan
	if plan.Valid() && len(rep.Samples) < v.ropts.Samples {
		// A sample shows the requests as import sends them: load the
		// thread again in full. The plan is the same but for body text.
		full, _, err := mapThread(a, m, r.t, sources.LoadOptions{})
		if err != nil {
			return err
		}
		plan = full
	}
	rep.Threads++
	v.perThread = append(v.perThread, r.messages)
	v.threadsBySource[v.names.of(plan.Source.File)]++
	first := len(rep.Issues)
	addIssues(rep, plan)
	if v.ropts.Threads != nil {
		if err := v.ropts.Threads(threadRow(a, r, rep.Issues[first:])); err != nil {
			return fmt.Errorf("validate: %w", err)
		}
	}
	for _, r := range plan.Rejected {
		if r.Duplicate {
			rep.DuplicateMsgs++
			continue
		}
		rep.RejectedMsgs++
		v.rejectedBySource[v.names.of(r.Source.File)]++
	}
	if !plan.Valid() {
		rep.InvalidThreads++
		return nil
	}
	rep.ValidThreads++
	rep.ImportableMsgs += len(plan.Events)
	v.perSC = append(v.perSC, len(plan.Events))
	chunks := mapping.Chunks(plan.Events, v.n)
	rep.RequestsByKind.Import++
	rep.RequestsByKind.EventsImport += len(chunks) - 1
	if len(chunks) > 1 {
		rep.Chunks.Split++
	}
	rep.Chunks.MaxPerSideConversation = max(rep.Chunks.MaxPerSideConversation, len(chunks))
	tc := v.tickets[plan.TicketID]
	if tc == nil {
		tc = &report.TicketCount{TicketID: plan.TicketID}
		v.tickets[plan.TicketID] = tc
	}
	tc.SideConversations++
	tc.Events += len(plan.Events)
	tc.Requests += len(chunks)
	addAttachments(&rep.Attachments, plan)
	if len(rep.Samples) < v.ropts.Samples {
		s, err := sample(plan, chunks[0], len(chunks))
		if err != nil {
			return err
		}
		rep.Samples = append(rep.Samples, s)
	}
	return nil
}

// threadRow is the threads.csv line of a validated thread.
func threadRow(a *archive.Archive, r threadResult, issues []report.Issue) report.ThreadRow {
	plan := r.plan
	row := report.ThreadRow{ThreadKey: plan.ThreadKey, TicketID: plan.TicketID, Messages: r.messages,
		Status: report.ThreadValid, FirstIssue: report.FirstIssue(issues), Source: plan.Source.String()}
	if !plan.Valid() {
		row.Status = report.ThreadInvalid
	}
	row.FirstDate, row.LastDate = a.Dates(r.t)
	return row
}

func addIssues(rep *report.Report, plan *mapping.Plan) {
	for _, i := range plan.Issues {
		rep.Issues = append(rep.Issues, report.Issue{
			Severity: string(i.Severity), Rule: i.Rule, ThreadKey: i.ThreadKey,
			MessageKey: i.MessageKey, Source: i.Source.String(), Message: i.Reason,
			ThreadSubject: plan.SideConversation.Subject,
		})
	}
}

func addAttachments(at *report.Attachments, plan *mapping.Plan) {
	for _, e := range plan.Events {
		if len(e.Attachments) > 0 {
			at.Messages++
		}
		for _, x := range e.Attachments {
			at.Count++
			at.Bytes += x.Size
			if x.Size > at.LimitBytes {
				at.Oversize++
				at.OversizeBytes += x.Size
				at.OversizeList = append(at.OversizeList, report.AttachmentRef{
					ThreadKey: plan.ThreadKey, MessageKey: e.Key, Source: e.Source.String(),
					Name: x.Name, ContentType: x.ContentType, Size: x.Size,
				})
			}
		}
	}
}

// sample is the first request of a valid thread, encoded as the client
// sends it.
func sample(plan *mapping.Plan, first []mapping.Event, requests int) (report.Sample, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(plan.ImportRequest(first)); err != nil {
		return report.Sample{}, fmt.Errorf("encode sample of thread %s: %w", plan.ThreadKey, err)
	}
	return report.Sample{
		ThreadKey: plan.ThreadKey, TicketID: plan.TicketID, Subject: plan.SideConversation.Subject,
		Source: plan.Source.String(), Events: len(plan.Events), Requests: requests,
		Method: "POST", Path: "/api/v2/tickets/" + strconv.FormatInt(plan.TicketID, 10) + "/side_conversations/import",
		Body: json.RawMessage(bytes.TrimSpace(buf.Bytes())),
	}, nil
}
