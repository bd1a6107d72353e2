package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/configs"
	"github.com/threadlift/threadlift/pipeline"
	"github.com/threadlift/threadlift/pipeline/report"
)

type jsonOption struct{ json bool }

// openReadOnly opens the checkpoint for reading while an import may hold
// its lock. A checkpoint that does not exist yet is a usage error: there is
// nothing to show.
func openReadOnly(ctx context.Context, g *globalOptions) (*checkpoint.Store, error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, err
	}
	if err := checkpointExists(cfg); err != nil {
		return nil, err
	}
	return checkpoint.Open(ctx, cfg.Checkpoint.Path, checkpoint.Options{ReadOnly: true})
}

// checkpointExists refuses a checkpoint that does not exist yet, for the
// commands that only work on one (status, failures, retry): there is
// nothing to show or re-queue, and creating an empty one would hide a
// wrong checkpoint.path.
func checkpointExists(cfg *configs.Config) error {
	if _, err := os.Stat(cfg.Checkpoint.Path); err != nil {
		return fmt.Errorf("%w: no checkpoint at %s yet (run 'threadlift import' first): %w", configs.ErrConfig, cfg.Checkpoint.Path, err)
	}
	return nil
}

func newStatusCommand(g *globalOptions) *cobra.Command {
	var o jsonOption
	cmd := &cobra.Command{
		Use:   "status -c FILE [--json]",
		Short: "Show what the checkpoint holds: threads per state and the last run",
		Long: `status reads only the checkpoint (no source, no network) and shows how many
threads are pending, in flight, created (partly imported), done, failed and
rejected, how many messages were imported, and the last run's summary. It
can run while an import is going on.`,
		Example: `  threadlift status -c threadlift.yaml
  threadlift status -c threadlift.yaml --json | jq .threads.failed
  threadlift status -c threadlift.yaml --shard 2/4        # the checkpoint of one shard
  THREADLIFT_CONFIG=/etc/threadlift/threadlift.yaml threadlift status`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := openReadOnly(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer store.Close()
			counts, err := store.Counts(cmd.Context())
			if err != nil {
				return err
			}
			last, err := store.LastRun(cmd.Context())
			if err != nil {
				return err
			}
			if o.json {
				return writeStatusJSON(g.stdout, counts, last)
			}
			return writeStatusText(g.stdout, counts, last)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print JSON: {threads:{...}, messages:{...}, last_run}")
	return cmd
}

type statusJSON struct {
	Threads  map[string]int  `json:"threads"`
	Messages map[string]int  `json:"messages"`
	LastRun  json.RawMessage `json:"last_run"`
}

func writeStatusJSON(w io.Writer, c checkpoint.Counts, last []byte) error {
	out := statusJSON{Threads: map[string]int{}, Messages: map[string]int{
		"imported": c.Messages.Imported, "rejected": c.Messages.Rejected, "pending": c.Messages.Pending,
	}, LastRun: json.RawMessage("null")}
	for _, s := range checkpoint.States() {
		out.Threads[string(s)] = c.Threads[s]
	}
	if len(last) > 0 {
		out.LastRun = last
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func writeStatusText(w io.Writer, c checkpoint.Counts, last []byte) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "threads\t")
	for _, s := range checkpoint.States() {
		fmt.Fprintf(tw, "  %s\t%d\n", s, c.Threads[s])
	}
	fmt.Fprintln(tw, "messages\t")
	fmt.Fprintf(tw, "  imported\t%d\n  rejected\t%d\n  pending\t%d\n", c.Messages.Imported, c.Messages.Rejected, c.Messages.Pending)
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(last) == 0 {
		fmt.Fprintln(w, "last run: none")
		return nil
	}
	var s report.Summary
	if err := json.Unmarshal(last, &s); err != nil {
		return fmt.Errorf("read last run summary: %w", err)
	}
	fmt.Fprintf(w, "last run: %s → %s\n", s.StartedAt, s.FinishedAt)
	printSummary(w, &s)
	return nil
}

func newFailuresCommand(g *globalOptions) *cobra.Command {
	var o jsonOption
	cmd := &cobra.Command{
		Use:   "failures -c FILE [--json]",
		Short: "List every failed or rejected thread and message, with source location and reason",
		Long: `failures lists what the checkpoint holds as failed (the API refused it, or
retries ran out) or rejected (it failed validation and was never sent):
thread key, message key, ticket, rule, reason, HTTP status, Zendesk request
id and the source location (FILE@OFFSET for mbox, FILE:LINE for csv/json).
Fix the cause, then 'threadlift retry' and 'threadlift import'. To fix the
records themselves, edit their copies in the newest failures/TIME/ folder
next to the checkpoint and add each file as a source (see 'import --help').`,
		Example: `  threadlift failures -c threadlift.yaml
  threadlift failures -c threadlift.yaml --json | jq -r '.[] | select(.rule == "http") | .thread_key'
  threadlift failures -c threadlift.yaml --json | jq 'group_by(.rule) | map({rule: .[0].rule, n: length})'
  threadlift failures -c threadlift.yaml --shard 0/4`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := openReadOnly(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer store.Close()
			fs, err := store.Failures(cmd.Context())
			if err != nil {
				return err
			}
			if o.json {
				return writeFailuresJSON(g.stdout, fs)
			}
			return writeFailuresText(g.stdout, fs)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print a JSON array of {thread_key, message_key?, ticket_id, state, rule, reason, http_status?, request_id?, source}")
	return cmd
}

func writeFailuresJSON(w io.Writer, fs []checkpoint.FailureRecord) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(pipeline.FailureRecords(fs))
}

func writeFailuresText(w io.Writer, fs []checkpoint.FailureRecord) error {
	if len(fs) == 0 {
		fmt.Fprintln(w, "no failures")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATE\tRULE\tSOURCE\tTICKET\tTHREAD\tREASON")
	for _, f := range fs {
		ticket := "-"
		if f.TicketID != 0 {
			ticket = fmt.Sprint(f.TicketID)
		}
		reason := f.Reason
		if f.HTTPStatus != 0 {
			reason = fmt.Sprintf("HTTP %d %s", f.HTTPStatus, reason)
		}
		if f.RequestID != "" {
			reason += " (request id " + f.RequestID + ")"
		}
		key := f.ThreadKey
		if f.MessageKey != "" {
			key += " / " + f.MessageKey
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.State, f.Rule, f.Source, ticket, key, reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d failures\n", len(fs))
	return nil
}

func newRetryCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "retry -c FILE",
		Short: "Re-queue failed threads so that the next import tries them again",
		Long: `retry moves every failed thread back to pending; the next 'threadlift import'
tries it again, after looking it up on its ticket so that nothing lands twice.
Rejected threads are re-validated by every import anyway: fix the config or
the source and import again. Like status and failures, it refuses (exit 2)
when the checkpoint does not exist.`,
		Example: `  threadlift failures -c threadlift.yaml      # what failed, and why
  threadlift retry -c threadlift.yaml         # after fixing the cause: re-queue the failed threads
  threadlift import -c threadlift.yaml        # tries them again
  threadlift retry -c threadlift.yaml --shard 1/4`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			if err := checkpointExists(cfg); err != nil {
				return err
			}
			store, err := checkpoint.Open(cmd.Context(), cfg.Checkpoint.Path, checkpoint.Options{})
			if err != nil {
				return err
			}
			defer store.Close()
			if err := store.Lock(); err != nil {
				return err
			}
			n, err := store.Retry(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%d failed threads re-queued; run 'threadlift import' to try them again\n", n)
			return nil
		},
	}
}
