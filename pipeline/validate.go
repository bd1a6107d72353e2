package pipeline

import (
	"context"
	"fmt"

	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/pipeline/report"
	"github.com/threadlift/threadlift/sources"
)

// Validate reads, threads, maps and validates every thread, and returns
// the report. It posts nothing.
func Validate(ctx context.Context, opts Options) (*report.Report, error) {
	opts.defaults()
	a, err := readArchive(ctx, opts.Sources, opts.Read, opts.Threading, opts.Progress.ReadBytes)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	opts.Progress.Threads(len(a.threads))

	rep := &report.Report{}
	rejectedBySource := make(map[string]int)
	for _, b := range a.bad {
		rep.Threads++
		rep.InvalidThreads++
		rep.Issues = append(rep.Issues, report.Issue{
			Severity: string(sources.SeverityError), Rule: b.err.Rule,
			Source: b.err.Loc.String(), Message: b.err.Err.Error(),
		})
		rejectedBySource[b.err.Loc.File]++
	}
	tickets := make(map[int64]bool)
	n := opts.Mapper.MaxEventsPerRequest()
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
		addIssues(rep, plan.Issues)
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
			continue
		}
		rep.ValidThreads++
		rep.ImportableMsgs += len(plan.Events)
		tickets[plan.TicketID] = true
		chunks := len(mapping.Chunks(plan.Events, n))
		rep.RequestsByKind.Import++
		rep.RequestsByKind.EventsImport += chunks - 1
		opts.Progress.ThreadDone()
	}
	rep.Messages = len(a.envs) + len(a.bad)
	rep.Tickets = len(tickets)
	rep.RequestsPlanned = rep.RequestsByKind.Import + rep.RequestsByKind.EventsImport
	for _, s := range a.stats {
		name := s.Name
		if name == "" {
			name = s.Path
		}
		rep.Sources = append(rep.Sources, report.SourceStats{
			File: name, Format: s.Type, Bytes: s.bytes, Messages: s.messages, Rejected: rejectedBySource[name],
		})
	}
	rep.PredictedSeconds = predictSeconds(rep.RequestsPlanned, opts.RequestsPerMinute, opts.WritesPer10Minutes)
	rep.Finish()
	return rep, nil
}

func addIssues(rep *report.Report, issues []mapping.Issue) {
	for _, i := range issues {
		rep.Issues = append(rep.Issues, report.Issue{
			Severity: string(i.Severity), Rule: i.Rule, ThreadKey: i.ThreadKey,
			MessageKey: i.MessageKey, Source: i.Source.String(), Message: i.Reason,
		})
	}
}

// predictSeconds is how long n write requests take at the given limits:
// the tighter of the account ceiling and the write bucket decides.
func predictSeconds(n, perMinute, writesPer10Min int) float64 {
	var sec float64
	if perMinute > 0 {
		sec = float64(n) / float64(perMinute) * 60
	}
	if writesPer10Min > 0 {
		sec = max(sec, float64(n)/float64(writesPer10Min)*600)
	}
	return sec
}
