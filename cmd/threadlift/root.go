package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/threadlift/threadlift/configs"
	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/mapping/thread"
	"github.com/threadlift/threadlift/pipeline"
	"github.com/threadlift/threadlift/sources"
)

// globalOptions are the flags every command shares (contract §1).
type globalOptions struct {
	config     string
	logLevel   string
	logFormat  string
	noProgress bool

	stdout, stderr io.Writer
	getenv         func(string) string
}

func newRootCommand(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	g := &globalOptions{stdout: stdout, stderr: stderr, getenv: getenv}
	cmd := &cobra.Command{
		Use:   "threadlift",
		Short: "Move archived conversations into Zendesk side conversations, exactly once",
		Long: `threadlift reads conversation archives (mbox, csv, json), threads the
messages, and imports each thread into Zendesk Support as a side conversation
on its parent ticket, through the side-conversation import endpoints.

Every thread and message is recorded in a checkpoint (SQLite) before and after
each request, so a run can be killed at any moment and started again: nothing
is imported twice and nothing is lost. Run 'threadlift validate' first: it
posts nothing and tells you what would fail and why.

Rehearse on a sandbox account first: whether Zendesk emails the participants
of imported email side conversations is not documented.`,
		Example: `  threadlift validate -c threadlift.yaml --report out/
  ZENDESK_API_TOKEN=... threadlift import -c threadlift.yaml --summary run.json
  threadlift status -c threadlift.yaml
  threadlift failures -c threadlift.yaml --json`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w: %w (see '%s --help')", errUsage, err, c.CommandPath())
	})
	f := cmd.PersistentFlags()
	f.StringVarP(&g.config, "config", "c", "threadlift.yaml", "config file (YAML, see configs/threadlift.example.yaml)")
	f.StringVar(&g.logLevel, "log-level", "info", "log level: debug|info|warn|error")
	f.StringVar(&g.logFormat, "log-format", "", "log format: console|json (default: console when stderr is a terminal, json otherwise)")
	f.BoolVar(&g.noProgress, "no-progress", false, "no progress bar or progress log lines")

	cmd.AddCommand(
		newValidateCommand(g),
		newImportCommand(g),
		newStatusCommand(g),
		newFailuresCommand(g),
		newRetryCommand(g),
		newVersionCommand(g),
	)
	return cmd
}

func (g *globalOptions) stderrIsTerminal() bool {
	f, ok := g.stderr.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// logger builds the run's logger: console on a terminal, JSON otherwise.
func (g *globalOptions) logger() (zerolog.Logger, error) {
	level, err := zerolog.ParseLevel(strings.ToLower(g.logLevel))
	if err != nil || g.logLevel == "" {
		return zerolog.Nop(), fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", errUsage, g.logLevel)
	}
	format := g.logFormat
	if format == "" {
		format = "json"
		if g.stderrIsTerminal() {
			format = "console"
		}
	}
	var w io.Writer
	switch format {
	case "json":
		w = g.stderr
	case "console":
		w = zerolog.ConsoleWriter{Out: g.stderr, TimeFormat: "15:04:05", NoColor: !g.stderrIsTerminal()}
	default:
		return zerolog.Nop(), fmt.Errorf("%w: --log-format %q: want console or json", errUsage, format)
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger(), nil
}

func (g *globalOptions) loadConfig() (*configs.Config, error) {
	return configs.Load(g.config, g.getenv)
}

// pipelineOptions turns the config into the pipeline's options; this is
// the only place YAML-shaped settings become package options.
func pipelineOptions(cfg *configs.Config, log zerolog.Logger) (pipeline.Options, error) {
	files, err := cfg.SourceFiles()
	if err != nil {
		return pipeline.Options{}, err
	}
	var srcs []pipeline.Source
	for _, f := range files {
		srcs = append(srcs, pipeline.Source{Type: f.Type, Path: f.Path, Name: displayPath(cfg.Dir, f.Path), Fields: f.Fields})
	}
	rules := mapping.TicketRules{
		Header:          cfg.Mapping.Ticket.Header,
		SubjectRegex:    cfg.SubjectRegexp(),
		DefaultTicketID: cfg.Mapping.Ticket.DefaultTicketID,
	}
	if p := cfg.Mapping.Ticket.LookupCSV; p != "" {
		if rules.Lookup, err = mapping.LoadLookupCSV(p); err != nil {
			return pipeline.Options{}, fmt.Errorf("%w: mapping.ticket.lookup_csv: %w", configs.ErrConfig, err)
		}
	}
	var agents map[string]int64
	if p := cfg.Mapping.AgentsCSV; p != "" {
		if agents, err = mapping.LoadAgentsCSV(p); err != nil {
			return pipeline.Options{}, fmt.Errorf("%w: mapping.agents_csv: %w", configs.ErrConfig, err)
		}
	}
	return pipeline.Options{
		Sources:   srcs,
		Read:      sources.Options{MaxMessageBytes: int64(cfg.Mapping.MaxMessageBytes)},
		Threading: thread.Options{SubjectThreading: cfg.Mapping.SubjectThreading},
		Mapper: mapping.New(mapping.Options{
			Ticket:              rules,
			State:               cfg.Mapping.State,
			Agents:              agents,
			MaxEventsPerRequest: cfg.Mapping.MaxEventsPerRequest,
			Strict:              cfg.Mapping.Strict,
			Attachments: mapping.AttachmentPolicy{
				MaxBytes:     int64(cfg.Mapping.Attachments.MaxBytes),
				Allow:        cfg.Mapping.Attachments.AllowExtensions,
				Deny:         cfg.Mapping.Attachments.DenyExtensions,
				RejectThread: cfg.Mapping.Attachments.OnRefused == "reject",
			},
		}),
		ReuseUploadsFor:    time.Duration(cfg.Mapping.Attachments.ReuseUploadsFor),
		Workers:            cfg.Pipeline.Workers,
		MaxAttempts:        cfg.Pipeline.MaxAttempts,
		StopTimeout:        time.Duration(cfg.Zendesk.Timeout),
		RequestsPerMinute:  cfg.Zendesk.RequestsPerMinute,
		WritesPer10Minutes: cfg.Zendesk.WriteRequestsPer10Minutes,
		Logger:             log,
	}, nil
}

// displayPath shows a source path relative to the config's folder when it
// lies inside it: shorter in reports, and the same on every machine.
func displayPath(dir, path string) string {
	if rel, err := filepath.Rel(dir, path); err == nil && !strings.HasPrefix(rel, "..") {
		return filepath.ToSlash(rel)
	}
	return path
}
