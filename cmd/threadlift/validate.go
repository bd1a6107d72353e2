package main

import (
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/threadlift/threadlift/pipeline"
	"github.com/threadlift/threadlift/pipeline/report"
)

type validateOptions struct {
	report string
	failOn string
}

func newValidateCommand(g *globalOptions) *cobra.Command {
	var o validateOptions
	cmd := &cobra.Command{
		Use:   "validate -c FILE [--report DIR]",
		Short: "Dry run: read, thread, map and validate everything; post nothing",
		Long: `validate reads every source, threads the messages, maps each thread to the
requests import would send and checks every payload against the API's rules.
It needs no credentials and touches no network. An archive bigger than
pipeline.read_chunk_messages (default 500000 messages) is threaded a chunk
at a time into a temporary file in TMPDIR (about 200 bytes a message,
removed at the end), then read back a chunk of complete threads at a time:
the report is a whole read's, in bounded memory.

It prints a summary on stdout and, with --report DIR, writes DIR/report.json
(every issue with its rule, thread key and source location FILE@OFFSET or
FILE:LINE, counts, distributions, the predicted duration on each Zendesk
plan and sample payloads; see the README), DIR/report.html, one
self-contained page to hand to the team (no network needed to view it),
and DIR/threads.csv, one line per thread (thread_key, ticket_id, messages,
first_date, last_date, status valid|invalid, first_issue, source): "what
will ticket X receive?" in a spreadsheet. The report says when and from
which config and threadlift version it was made.

Damaged mail is repaired where nothing is lost, each repair a warning: a
message with more recipients than the API takes (100, at most 48 not
agents) goes to the first ones and lists the rest at the end of its body
(recipients-truncated); a message without text gets "(empty message)"; a
message with no recipient is rejected unless mapping.default_recipient is
set; an mbox separator taken without a blank line before it, or a
Content-Length ignored, is said (README: "Messy archives").

Exit status: 0 when everything would import, 1 when any thread or message
would be rejected (with --fail-on warning: also when anything had to be
repaired), 2 for a usage or config error. Use it to gate a pipeline.`,
		Example: `  threadlift validate -c threadlift.yaml
  threadlift validate -c threadlift.yaml --report out/ && open out/report.html
  threadlift validate -c threadlift.yaml --fail-on warning   # CI gate: no repairs allowed`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runValidate(cmd, g, o)
		},
	}
	cmd.Flags().StringVar(&o.report, "report", "", "write report.json, report.html and threads.csv into this folder")
	cmd.Flags().StringVar(&o.failOn, "fail-on", "error", "exit 1 when an issue of this severity or worse is found: error|warning")
	completeValues(cmd, "fail-on", "error", "warning")
	return cmd
}

func runValidate(cmd *cobra.Command, g *globalOptions, o validateOptions) error {
	switch o.failOn {
	case "", "error", "warning":
	default:
		return fmt.Errorf("%w: --fail-on %q: want error or warning", errUsage, o.failOn)
	}
	log, err := g.logger()
	if err != nil {
		return err
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	g.logConfig(log, cfg)
	opts, err := pipelineOptions(cfg, log)
	if err != nil {
		return err
	}
	prog := newProgress(g, log, "validate")
	opts.Progress = prog
	var ropts pipeline.ReportOptions
	var threads *report.AtomicFile
	var rows *report.ThreadsCSV
	if o.report != "" {
		// threads.csv is written as threads are validated, never held.
		if threads, err = report.CreateAtomic(filepath.Join(o.report, report.ThreadsCSVName)); err != nil {
			prog.Close()
			return fmt.Errorf("write report: %w", err)
		}
		defer threads.Abort() // no-op once committed
		if rows, err = report.NewThreadsCSV(threads); err != nil {
			prog.Close()
			return fmt.Errorf("write report: %w", err)
		}
		ropts.Threads = rows.Add
	}
	rep, err := pipeline.ValidateReport(cmd.Context(), opts, ropts)
	prog.Close()
	if err != nil {
		return err
	}
	if o.report != "" {
		rep.Provenance = report.NewProvenance(time.Now(), version, buildCommit(), absPath(g.config), rep.Sources)
		if err := rows.Flush(); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
		if err := threads.Commit(); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
		if err := report.WriteDir(o.report, rep, report.HTMLOptions{ThreadsCSV: true}); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
		log.Info().Str("json", filepath.Join(o.report, "report.json")).Str("html", filepath.Join(o.report, "report.html")).
			Str("threads", filepath.Join(o.report, report.ThreadsCSVName)).Msg("report written")
	}
	printValidation(g.stdout, rep)
	switch {
	case rep.InvalidThreads > 0 || rep.RejectedMsgs > 0:
		return errPartial
	case o.failOn == "warning" && rep.HasWarnings():
		return fmt.Errorf("%w (--fail-on warning: some messages had to be repaired)", errPartial)
	}
	return nil
}

// absPath is path made absolute, for the reports' provenance; path itself
// when that fails.
func absPath(path string) string {
	if a, err := filepath.Abs(path); err == nil {
		return a
	}
	return path
}

func printValidation(w io.Writer, r *report.Report) {
	fmt.Fprintf(w, "threads:   %d (%d valid, %d invalid) on %d tickets\n", r.Threads, r.ValidThreads, r.InvalidThreads, r.Tickets)
	fmt.Fprintf(w, "messages:  %d (%d importable, %d rejected, %d duplicates)\n", r.Messages, r.ImportableMsgs, r.RejectedMsgs, r.DuplicateMsgs)
	fmt.Fprintf(w, "requests:  %d planned (%d import, %d events/import)", r.RequestsPlanned, r.RequestsByKind.Import, r.RequestsByKind.EventsImport)
	if r.Duration.LimitedBy != report.LimitedByNone && r.Duration.LimitedBy != "" {
		fmt.Fprintf(w, ", about %s at the configured rate limits (%s)", r.Duration.Human, r.Duration.LimitedBy)
	}
	fmt.Fprintln(w)
	if r.DateRange.Earliest != "" {
		fmt.Fprintf(w, "dates:     %s to %s\n", r.DateRange.Earliest, r.DateRange.Latest)
	}
	if len(r.IssuesByRule) > 0 {
		fmt.Fprintln(w, "issues:")
		for _, rc := range r.IssuesByRule {
			fmt.Fprintf(w, "  %-8s %-32s %6d\n", rc.Severity, rc.Rule, rc.Count)
		}
	}
}
