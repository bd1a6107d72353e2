package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/threadlift/threadlift/pipeline"
	"github.com/threadlift/threadlift/pipeline/report"
)

type validateOptions struct {
	report string
}

func newValidateCommand(g *globalOptions) *cobra.Command {
	var o validateOptions
	cmd := &cobra.Command{
		Use:   "validate -c FILE [--report DIR]",
		Short: "Dry run: read, thread, map and validate everything; post nothing",
		Long: `validate reads every source, threads the messages, maps each thread to the
requests import would send and checks every payload against the API's rules.
It needs no credentials and touches no network.

It prints a summary on stdout and, with --report DIR, writes DIR/report.json
(every issue with its rule, thread key and source location FILE@OFFSET or
FILE:LINE).

Exit status: 0 when everything would import, 1 when any thread or message
would be rejected, 2 for a usage or config error.`,
		Example: `  threadlift validate -c threadlift.yaml
  threadlift validate -c threadlift.yaml --report out/ && open out/report.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runValidate(cmd, g, o)
		},
	}
	cmd.Flags().StringVar(&o.report, "report", "", "write report.json into this folder")
	return cmd
}

func runValidate(cmd *cobra.Command, g *globalOptions, o validateOptions) error {
	log, err := g.logger()
	if err != nil {
		return err
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	opts, err := pipelineOptions(cfg, log)
	if err != nil {
		return err
	}
	prog := newProgress(g, log, "validate")
	opts.Progress = prog
	rep, err := pipeline.Validate(cmd.Context(), opts)
	prog.Close()
	if err != nil {
		return err
	}
	if o.report != "" {
		path := filepath.Join(o.report, "report.json")
		if err := report.WriteJSON(path, rep); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
		log.Info().Str("path", path).Msg("report written")
	}
	printValidation(g.stdout, rep)
	if rep.InvalidThreads > 0 || rep.RejectedMsgs > 0 {
		return errPartial
	}
	return nil
}

func printValidation(w io.Writer, r *report.Report) {
	fmt.Fprintf(w, "threads:   %d (%d valid, %d invalid) on %d tickets\n", r.Threads, r.ValidThreads, r.InvalidThreads, r.Tickets)
	fmt.Fprintf(w, "messages:  %d (%d importable, %d rejected, %d duplicates)\n", r.Messages, r.ImportableMsgs, r.RejectedMsgs, r.DuplicateMsgs)
	fmt.Fprintf(w, "requests:  %d planned (%d import, %d events/import)", r.RequestsPlanned, r.RequestsByKind.Import, r.RequestsByKind.EventsImport)
	if r.PredictedSeconds > 0 {
		fmt.Fprintf(w, ", about %s at the configured rate limits", humanDuration(r.PredictedSeconds))
	}
	fmt.Fprintln(w)
	if len(r.IssuesByRule) > 0 {
		fmt.Fprintln(w, "issues:")
		for _, rc := range r.IssuesByRule {
			fmt.Fprintf(w, "  %-8s %-24s %d\n", rc.Severity, rc.Rule, rc.Count)
		}
	}
}
