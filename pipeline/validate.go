package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/threadlift/threadlift/mapping"
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
}

// Validate reads, threads, maps and validates every thread, and returns
// the report. It posts nothing.
func Validate(ctx context.Context, opts Options) (*report.Report, error) {
	return ValidateReport(ctx, opts, ReportOptions{})
}

// ValidateReport is Validate with report options.
func ValidateReport(ctx context.Context, opts Options, ropts ReportOptions) (*report.Report, error) {
	opts.defaults()
	if ropts.OversizeAttachmentBytes <= 0 {
		// The configured attachment limit is what "oversize" means.
		ropts.OversizeAttachmentBytes = opts.Mapper.Options().Attachments.MaxBytes
	}
	ropts.defaults()
	a, err := readArchive(ctx, opts.Sources, opts.Read, opts.Threading, opts.Progress.ReadBytes)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("validate: %w", ErrInterrupted)
		}
		return nil, err
	}
	defer a.Close()
	opts.Progress.Threads(len(a.threads))

	rep := &report.Report{}
	rejectedBySource := make(map[string]int)
	threadsBySource := make(map[string]int)
	for _, b := range a.bad {
		rep.Threads++
		rep.InvalidThreads++
		rep.Issues = append(rep.Issues, report.Issue{
			Severity: string(sources.SeverityError), Rule: b.err.Rule,
			Source: b.err.Loc.String(), Message: b.err.Err.Error(),
		})
		rejectedBySource[b.err.Loc.File]++
		threadsBySource[b.err.Loc.File]++
	}

	// Dates: every message read, rejected ones included.
	months := make(map[string]int)
	var earliest, latest time.Time
	for i := range a.idx.len() {
		d := a.idx.date(i)
		if d.IsZero() {
			rep.DateRange.Undated++
			continue
		}
		d = d.UTC()
		months[d.Format("2006-01")]++
		if earliest.IsZero() || d.Before(earliest) {
			earliest = d
		}
		if latest.IsZero() || d.After(latest) {
			latest = d
		}
	}
	if !earliest.IsZero() {
		rep.DateRange.Earliest = earliest.Format(time.RFC3339)
		rep.DateRange.Latest = latest.Format(time.RFC3339)
	}
	rep.DateRange.Undated += len(a.bad)
	for m, n := range months {
		rep.MessagesPerMonth = append(rep.MessagesPerMonth, report.MonthCount{Month: m, Messages: n})
	}
	sort.Slice(rep.MessagesPerMonth, func(i, j int) bool { return rep.MessagesPerMonth[i].Month < rep.MessagesPerMonth[j].Month })

	tickets := make(map[int64]*report.TicketCount)
	var perThread, perSC []int
	n := opts.Mapper.MaxEventsPerRequest()
	rep.Chunks.MaxEventsPerRequest = n
	rep.Attachments.LimitBytes = ropts.OversizeAttachmentBytes
	for _, t := range a.threads {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("validate: %w", ErrInterrupted)
		}
		msgs, dups, err := a.loadThread(t)
		if err != nil {
			return nil, err
		}
		plan := opts.Mapper.Map(t.Key, msgs, dups)
		rep.Threads++
		perThread = append(perThread, len(msgs)+len(dups))
		threadsBySource[plan.Source.File]++
		addIssues(rep, plan)
		for _, r := range plan.Rejected {
			if r.Duplicate {
				rep.DuplicateMsgs++
				continue
			}
			rep.RejectedMsgs++
			rejectedBySource[r.Source.File]++
		}
		if !plan.Valid() {
			rep.InvalidThreads++
			opts.Progress.ThreadDone()
			continue
		}
		rep.ValidThreads++
		rep.ImportableMsgs += len(plan.Events)
		perSC = append(perSC, len(plan.Events))
		chunks := mapping.Chunks(plan.Events, n)
		rep.RequestsByKind.Import++
		rep.RequestsByKind.EventsImport += len(chunks) - 1
		if len(chunks) > 1 {
			rep.Chunks.Split++
		}
		rep.Chunks.MaxPerSideConversation = max(rep.Chunks.MaxPerSideConversation, len(chunks))
		tc := tickets[plan.TicketID]
		if tc == nil {
			tc = &report.TicketCount{TicketID: plan.TicketID}
			tickets[plan.TicketID] = tc
		}
		tc.SideConversations++
		tc.Events += len(plan.Events)
		tc.Requests += len(chunks)
		addAttachments(&rep.Attachments, plan)
		if len(rep.Samples) < ropts.Samples {
			s, err := sample(plan, chunks[0], len(chunks))
			if err != nil {
				return nil, err
			}
			rep.Samples = append(rep.Samples, s)
		}
		opts.Progress.ThreadDone()
	}
	rep.Messages = a.idx.len() + len(a.bad)
	rep.Tickets = len(tickets)
	rep.RequestsPlanned = rep.RequestsByKind.Import + rep.RequestsByKind.EventsImport
	rep.Chunks.Total = rep.RequestsPlanned
	for _, s := range a.stats {
		name := s.Name
		if name == "" {
			name = s.Path
		}
		rep.Sources = append(rep.Sources, report.SourceStats{
			File: name, Format: s.Type, Bytes: s.bytes, Messages: s.messages,
			Threads: threadsBySource[name], Rejected: rejectedBySource[name],
		})
	}

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
	rep.TopTickets = rep.TopTickets[:min(len(rep.TopTickets), ropts.TopTickets)]
	rep.MessagesPerThread = report.NewDistribution(perThread)
	rep.ThreadsPerTicket = report.NewDistribution(perTicket)
	rep.EventsPerSideConversation = report.NewDistribution(perSC)

	rep.Duration = report.PredictDuration(rep.RequestsPlanned, opts.RequestsPerMinute, opts.WritesPer10Minutes)
	rep.PredictedSeconds = rep.Duration.Seconds
	rep.Finish()
	return rep, nil
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
