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
