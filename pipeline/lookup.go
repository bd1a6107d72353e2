package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/zendesk"
)

// Looking a ticket up: before a request whose outcome is unknown is sent
// again, and before the first write to a ticket the checkpoint cannot
// vouch for (vouch.go), the ticket's side conversations are listed and
// what it holds is recorded (checkpoint.Store.RecordTicket).

// reconcile lists the ticket and records what it holds. probe says
// whether the listing is one of the run's probes (see vouch); own and
// parts are what the checkpoint holds of the thread. again is true once
// it is recorded (decide again); false when the thread is finished with
// (the listing failed, and so did the thread) or the run is stopping.
func (p *posting) reconcile(ctx context.Context, probe bool, own *checkpoint.Part, parts []checkpoint.Part) (again bool, err error) {
	im := p.im
	// The answer the ledger holds may be for this ticket: record it before
	// the listing resolves its thread from what the ticket holds.
	if err := p.l.flush(ctx); err != nil {
		return false, err
	}
	if err := p.awaitSettle(ctx, own, parts); err != nil {
		if ctx.Err() != nil {
			return false, nil // stopping: the thread stays as it is
		}
		return false, err
	}
	convs, err := im.list(ctx, p.ticket)
	if err != nil {
		if probe {
			im.vouch.abandon()
		}
		if ctx.Err() != nil {
			return false, nil
		}
		return false, p.failLookup(ctx, own, parts, err)
	}
	rec, err := p.l.recordTicket(ctx, p.ticket, convs)
	if err != nil {
		return false, err
	}
	im.c.reconciled.Add(1)
	if err := p.trust(ctx, probe, rec); err != nil {
		return false, err
	}
	p.mustList, p.listed = false, true
	return true, nil
}

// trust tells vouch what the listing found: keys the checkpoint did not
// know make it lose trust (it is older than what Zendesk holds).
func (p *posting) trust(ctx context.Context, probe bool, rec checkpoint.TicketRecord) error {
	log := p.im.opts.Logger
	if p.im.vouch.looked(p.ticket, probe, rec.UnknownCount > 0) {
		log.Warn().Int64("ticket_id", p.ticket).Int("unknown_keys", rec.UnknownCount).Strs("examples", rec.Unknown).
			Msg("this ticket holds threadlift keys the checkpoint did not know: the checkpoint is older than what Zendesk holds " +
				"(a copy, a restored backup, or a new file); what each ticket holds is now looked up before the first write to it " +
				"(`threadlift verify --adopt` rebuilds the checkpoint in one go)")
		return p.l.distrust(ctx)
	}
	if rec.UnknownCount > 0 {
		log.Info().Int64("ticket_id", p.ticket).Int("unknown_keys", rec.UnknownCount).Strs("examples", rec.Unknown).
			Msg("recorded what the ticket holds that the checkpoint did not know")
	}
	return nil
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
			t, err := p.landsBy(ctx, r)
			if err != nil {
				return err
			}
			if t.After(until) {
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

// landsBy is when the last request of row r, left unresolved by an
// earlier run and unanswered, has had Options.Settle to land; zero when
// there is none.
func (p *posting) landsBy(ctx context.Context, r checkpoint.Part) (time.Time, error) {
	if !r.Unresolved {
		return time.Time{}, nil
	}
	a, found, err := p.l.lastAttempt(ctx, r.Key)
	if err != nil || !found {
		return time.Time{}, err
	}
	if a.HTTPStatus != 0 && a.HTTPStatus != http.StatusGatewayTimeout {
		return time.Time{}, nil // answered: Zendesk was done with it (MarkAnswered)
	}
	return a.StartedAt.Add(p.im.opts.Settle), nil
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
	if stop := p.w.stopRun(ctx, p.key, err, false); stop != nil {
		return stop
	}
	f, fatal := p.requestFailure(err)
	if fatal != nil {
		return fatal
	}
	return p.failWith(ctx, own, parts, f)
}

// list reads a ticket's side conversations with their threadlift keys,
// retrying within the attempt budget.
func (im *importer) list(ctx context.Context, ticket int64) ([]checkpoint.ListedConversation, error) {
	var scs []zendesk.SideConversation
	var events []zendesk.Event
	v := im.retrier().call(ctx, try{ticket: ticket}, func(ctx context.Context) (err error) {
		scs, events, err = im.api.ListSideConversations(ctx, ticket)
		return err
	})
	if v.err != nil {
		return nil, fmt.Errorf("look up ticket %d: %w", ticket, v.err)
	}
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
