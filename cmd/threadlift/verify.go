package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/configs"
	"github.com/threadlift/threadlift/pipeline"
)

type verifyOptions struct {
	json        bool
	adopt       bool
	startTicket int64
}

func newVerifyCommand(g *globalOptions) *cobra.Command {
	var o verifyOptions
	cmd := &cobra.Command{
		Use:   "verify -c FILE [--json] [--adopt] [--start-ticket ID]",
		Short: "Read every planned ticket back from Zendesk and prove each key is there exactly once",
		Long: `verify reads the sources as validate does (in batches through TMPDIR past
pipeline.read_chunk_messages), to learn every thread key, message key and
ticket of the plan, then lists every side conversation (with its
events, every page) of each of those tickets, and compares. It never writes
to Zendesk; its requests are paced by the same limits and Retry-After pause
as import's. It costs about one request per ticket (plus a page per 100 side
conversations): it prints the predicted duration before it starts.

It reports, per ticket and in total, threads and messages:
  present      exactly once on their ticket
  missing      not on their ticket: not_imported (nothing sent yet),
               rejected (fails validation, never sent: expected), failed
               (the checkpoint has the thread failed), lost (the checkpoint
               says imported, the ticket lacks it: another account's or a
               restored checkpoint), ticket_not_found
  duplicated   a thread key on two side conversations, or a message key on
               two events anywhere on the ticket
  unexpected   side conversations with a threadlift key the plan does not
               have on that ticket (another archive's, or on the wrong ticket)
Side conversations without threadlift keys, and events without a message
key (an agent's reply), are counted, not judged. A thread with no side
conversation of its own whose messages are all on the ticket (joined by a
backfill) counts as joined, not missing.

With --adopt, what each ticket holds is recorded in the checkpoint (created
if missing; the run lock is taken as import takes it), one transaction per
ticket: every key found is imported with its side conversation id, messages
the checkpoint believed imported in a side conversation the ticket does not
hold are handed back to import, in-flight and failed threads the ticket
holds are settled. The next
import sends only what is missing. Use it to rebuild a lost, stale or copied
checkpoint; it is safe to interrupt and to run again.

Interrupted (Ctrl-C), verify prints what it verified and the ticket to go on
from: --start-ticket ID verifies the tickets from ID on (ascending order).

--json prints one JSON document on stdout (schema in the README): a
"tickets" array with every ticket's counts and items, then the totals.

Exit status: 0 nothing missing (rejected items aside) or duplicated, 1
otherwise (or a ticket could not be read), 2 usage/config error, 3
authentication or permission refused (401/403: the role, or an account
without the side-conversations add-on), checkpoint locked or unusable, 130
interrupted.`,
		Example: `  threadlift verify -c threadlift.yaml
  threadlift verify -c threadlift.yaml --json > verify.json
  threadlift verify -c threadlift.yaml --adopt && threadlift import -c threadlift.yaml   # rebuild a lost checkpoint
  threadlift verify -c threadlift.yaml --start-ticket 48213                              # go on after an interruption`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runVerify(cmd, g, o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.json, "json", false, "print one JSON document on stdout (schema in the README)")
	f.BoolVar(&o.adopt, "adopt", false, "record what Zendesk holds into the checkpoint (creating it if missing), so that the next import sends only what is missing")
	f.Int64Var(&o.startTicket, "start-ticket", 0, "verify only the tickets with this id or above (to go on after an interruption)")
	return cmd
}

func runVerify(cmd *cobra.Command, g *globalOptions, o verifyOptions) error {
	if o.startTicket < 0 {
		return fmt.Errorf("%w: --start-ticket must be 0 or more", errUsage)
	}
	log, err := g.logger()
	if err != nil {
		return err
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	if err := cfg.CheckImport(g.getenv); err != nil {
		return err
	}
	opts, err := pipelineOptions(cfg, log)
	if err != nil {
		return err
	}
	client, err := newZendeskClient(g, cfg, log, true)
	if err != nil {
		return err
	}
	ctx := cmd.Context()

	store, err := openVerifyStore(ctx, g, cfg, log, o.adopt)
	if err != nil {
		return err
	}
	if store != nil {
		defer store.Close()
	}

	w := bufio.NewWriter(g.stdout)
	defer w.Flush()
	out := &verifyOutput{w: w, json: o.json, maxLines: 20}
	prog := newProgress(g, log, "verify")
	before := client.Stats().Requests["total"]
	rep, err := pipeline.Verify(ctx, client, pipeline.VerifyOptions{
		Options: opts, Progress: prog, Checkpoint: store, Adopt: o.adopt, StartTicket: o.startTicket,
		OnPlan:   out.plan,
		OnTicket: out.ticket,
	})
	prog.Close()
	if rep != nil {
		st := client.Stats()
		rep.Requests = int(st.Requests["total"] - before) // every page counts
		rep.RateLimited = int(st.RateLimited)
		if werr := out.finish(rep); werr != nil && err == nil {
			err = fmt.Errorf("write the verify report: %w", werr)
		}
	}
	if err != nil {
		if errors.Is(err, pipeline.ErrInterrupted) && rep != nil && rep.NextTicket != 0 {
			log.Warn().Int64("next_ticket", rep.NextTicket).
				Msgf("interrupted after %d of %d tickets: go on with 'threadlift verify --start-ticket %d'", rep.TicketsVerified, rep.TicketsTotal-rep.TicketsSkipped, rep.NextTicket)
		}
		return err
	}
	if !rep.OK {
		return errPartial
	}
	return nil
}

// openVerifyStore opens the checkpoint verify reads: for --adopt, to
// write, locked and checked like import's (created if missing); else
// read only and without the lock, or nil when there is none or it cannot
// be read (verify goes on without it).
func openVerifyStore(ctx context.Context, g *globalOptions, cfg *configs.Config, log zerolog.Logger, adopt bool) (*checkpoint.Store, error) {
	switch _, serr := os.Stat(cfg.Checkpoint.Path); {
	case adopt:
		if err := g.checkSplit(cfg); err != nil {
			return nil, err
		}
		// Like import: the lock, and the integrity check, before anything.
		return checkpoint.Open(ctx, cfg.Checkpoint.Path, checkpoint.Options{})
	case serr == nil:
		// Read only, no lock: verify can run while an import does. The
		// checkpoint only tells reasons apart: without it verify goes on.
		store, err := checkpoint.Open(ctx, cfg.Checkpoint.Path, checkpoint.Options{ReadOnly: true})
		if err != nil {
			log.Warn().Err(err).Msg("checkpoint unreadable: missing items are not told apart (failed, lost)")
			return nil, nil
		}
		return store, nil
	case !errors.Is(serr, fs.ErrNotExist):
		return nil, fmt.Errorf("%w: checkpoint: %w", checkpoint.ErrUnusable, serr)
	}
	return nil, nil
}

// verifyOutput writes verify's report as it goes: with json, the tickets
// array is streamed (one ticket at a time, never all held) and the totals
// close the document; otherwise a console summary, with at most maxLines
// tickets' problems.
type verifyOutput struct {
	w        *bufio.Writer
	json     bool
	maxLines int
	started  bool
	problems int // tickets with something to show
	err      error
}

func (v *verifyOutput) plan(p pipeline.VerifyPlan) {
	if v.json {
		return
	}
	fmt.Fprintf(v.w, "verify: reading back %d tickets (%d threads planned): about %d requests", p.Tickets, p.Threads, p.Duration.Requests)
	if p.Duration.RequestsPerMinute > 0 {
		fmt.Fprintf(v.w, ", %s at %d requests/min", p.Duration.Human, p.Duration.RequestsPerMinute)
	}
	fmt.Fprintln(v.w)
	v.err = v.w.Flush()
}

func (v *verifyOutput) ticket(tr *pipeline.TicketReport) error {
	if v.err != nil {
		return v.err
	}
	if v.json {
		sep := ",\n"
		if !v.started {
			sep = "{\"tickets\":[\n"
			v.started = true
		}
		b, err := json.Marshal(tr)
		if err != nil {
			return err
		}
		v.w.WriteString(sep)
		v.w.Write(b)
		return nil
	}
	if tr.Status == pipeline.TicketOK && len(tr.Unexpected) == 0 {
		return nil
	}
	v.problems++
	if v.problems > v.maxLines {
		return nil
	}
	writeTicketProblems(v.w, tr)
	return nil
}

func (v *verifyOutput) finish(rep *pipeline.VerifyReport) error {
	if v.err != nil {
		return v.err
	}
	if v.json {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if !v.started {
			v.w.WriteString("{\"tickets\":[")
		}
		// The totals close the document after the streamed tickets.
		v.w.WriteString("\n],\n")
		v.w.Write(b[2:]) // without the opening "{\n"
		v.w.WriteString("\n")
		return v.w.Flush()
	}
	if v.problems > v.maxLines {
		fmt.Fprintf(v.w, "… and %d more tickets with something to show (--json lists every one)\n", v.problems-v.maxLines)
	}
	writeVerifySummary(v.w, rep)
	return v.w.Flush()
}

// writeTicketProblems prints one ticket's problems, a few items of each
// kind.
func writeTicketProblems(w io.Writer, tr *pipeline.TicketReport) {
	const items = 5
	fmt.Fprintf(w, "ticket %d: %s", tr.TicketID, tr.Status)
	if tr.Error != "" {
		fmt.Fprintf(w, " (%s)", tr.Error)
	}
	fmt.Fprintln(w)
	shown := 0
	for _, m := range tr.Missing {
		if m.Reason == pipeline.MissingRejected {
			continue
		}
		if shown++; shown > items {
			break
		}
		if m.MessageKey == "" {
			fmt.Fprintf(w, "  missing     thread %s (%s) at %s\n", m.ThreadKey, m.Reason, m.Source)
		} else {
			fmt.Fprintf(w, "  missing     message %s of thread %s (%s) at %s\n", m.MessageKey, m.ThreadKey, m.Reason, m.Source)
		}
	}
	if n := tr.Threads.Missing + tr.Messages.Missing - tr.Threads.MissingByReason[pipeline.MissingRejected] - tr.Messages.MissingByReason[pipeline.MissingRejected]; n > items {
		fmt.Fprintf(w, "  missing     … %d in all\n", n)
	}
	for i, d := range tr.Duplicated {
		if i == items {
			fmt.Fprintf(w, "  duplicated  … %d in all\n", len(tr.Duplicated))
			break
		}
		if d.MessageKey == "" {
			fmt.Fprintf(w, "  duplicated  thread %s on %d side conversations: %s\n", d.ThreadKey, d.Count, strings.Join(d.SideConversationIDs, ", "))
		} else {
			fmt.Fprintf(w, "  duplicated  message %s of thread %s %d times, in %s\n", d.MessageKey, d.ThreadKey, d.Count, strings.Join(d.SideConversationIDs, ", "))
		}
	}
	for i, u := range tr.Unexpected {
		if i == items {
			fmt.Fprintf(w, "  unexpected  … %d in all\n", len(tr.Unexpected))
			break
		}
		switch {
		case u.MessageKey != "":
			fmt.Fprintf(w, "  unexpected  message %s in side conversation %s: not in the sources for this ticket\n", u.MessageKey, u.SideConversationID)
		case u.ExpectedTicketID != 0:
			fmt.Fprintf(w, "  unexpected  thread %s (side conversation %s) belongs on ticket %d\n", u.ThreadKey, u.SideConversationID, u.ExpectedTicketID)
		default:
			fmt.Fprintf(w, "  unexpected  thread %s (side conversation %s, %d messages): not in the sources\n", u.ThreadKey, u.SideConversationID, u.Messages)
		}
	}
}

func reasons(m map[string]int) string {
	var parts []string
	for r, n := range m {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, r))
		}
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func writeVerifySummary(w io.Writer, r *pipeline.VerifyReport) {
	fmt.Fprintf(w, "tickets:   %d read back", r.TicketsVerified)
	if r.TicketsNotFound > 0 || r.TicketsUnreadable > 0 {
		fmt.Fprintf(w, " (%d not found, %d unreadable)", r.TicketsNotFound, r.TicketsUnreadable)
	}
	if r.TicketsSkipped > 0 {
		fmt.Fprintf(w, ", %d skipped (below --start-ticket %d)", r.TicketsSkipped, r.StartTicket)
	}
	if left := r.TicketsTotal - r.TicketsSkipped - r.TicketsVerified; left > 0 {
		fmt.Fprintf(w, ", %d not read (interrupted: go on with --start-ticket %d)", left, r.NextTicket)
	}
	fmt.Fprintln(w)
	t := r.Threads
	fmt.Fprintf(w, "threads:   %d planned: %d exactly once", t.Planned, t.Present)
	if t.Joined > 0 {
		fmt.Fprintf(w, ", %d joined into other side conversations", t.Joined)
	}
	fmt.Fprintf(w, ", %d missing%s, %d duplicated", t.Missing, reasons(t.MissingByReason), t.Duplicated)
	if r.WithoutTicket > 0 {
		fmt.Fprintf(w, "; %d without a ticket (rejected, not looked for)", r.WithoutTicket)
	}
	fmt.Fprintln(w)
	m := r.Messages
	fmt.Fprintf(w, "messages:  %d planned: %d exactly once, %d missing%s, %d duplicated\n", m.Planned, m.Present, m.Missing, reasons(m.MissingByReason), m.Duplicated)
	fmt.Fprintf(w, "unexpected: %d side conversations with threadlift keys not in the sources, %d on the wrong ticket, %d stray messages\n",
		r.UnexpectedSideConversations, r.WrongTicket, r.UnexpectedMessages)
	fmt.Fprintf(w, "not judged: %d of %d side conversations without threadlift keys, %d events without a message key\n",
		r.WithoutKey, r.SideConversations, r.EventsWithoutKey)
	if a := r.Adopted; a != nil {
		fmt.Fprintf(w, "adopted:   %d threads recorded in the checkpoint, %d messages marked imported, %d handed back to import (the checkpoint had them, Zendesk does not)",
			a.Threads, a.Imported, a.Reset)
		if a.Kept > 0 {
			fmt.Fprintf(w, "; %d kept as imported (their side conversation is on the ticket, the listing did not show them)", a.Kept)
		}
		if len(a.Elsewhere) > 0 {
			fmt.Fprintf(w, "; %d left alone (the checkpoint has them on another ticket)", len(a.Elsewhere))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "requests:  %d (%d retried, %d rate-limited), %.1fs (predicted %.0fs)\n", r.Requests, r.Retries, r.RateLimited, r.ElapsedSeconds, r.PredictedSeconds)
	switch {
	case !r.OK:
		fmt.Fprintln(w, "result:    NOT exactly once: see the tickets above ('--json' lists every item)")
	case !r.Complete:
		fmt.Fprintln(w, "result:    every ticket read so far holds every planned thread and message exactly once")
	case r.Threads.MissingByReason[pipeline.MissingRejected]+r.Messages.MissingByReason[pipeline.MissingRejected] > 0:
		fmt.Fprintln(w, "result:    every planned thread and message is on its ticket exactly once, but for the rejected ones (never sent: see 'threadlift failures')")
	default:
		fmt.Fprintln(w, "result:    every planned thread and message is on its ticket exactly once")
	}
}
