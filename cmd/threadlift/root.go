package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
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
	// quiet (-q) logs warnings and errors only and draws no progress;
	// verbose (-v) logs at debug level.
	quiet, verbose bool
	// cpuProfile is the hidden --cpuprofile FILE: a pprof CPU profile of
	// the command, for performance work.
	cpuProfile string
	// shard is --shard I/N of import, status, failures and retry; the zero
	// value means no split. checkpointBase is checkpoint.path before the
	// shard's suffix.
	shard          shardFlag
	checkpointBase string

	stdout, stderr io.Writer
	getenv         func(string) string

	// atExit are called by main with the process's exit code, last of
	// all (the metrics' exit code).
	atExit []func(code int)
}

// envConfig names the config file when -c is not given.
const envConfig = "THREADLIFT_CONFIG"

// defaultConfig is -c's default: THREADLIFT_CONFIG, else threadlift.yaml.
func defaultConfig(getenv func(string) string) string {
	if p := getenv(envConfig); p != "" {
		return p
	}
	return "threadlift.yaml"
}

// environmentHelp lists the variables threadlift reads, for --help.
const environmentHelp = `Environment:
  THREADLIFT_CONFIG               the config file when -c is not given (default threadlift.yaml)
  THREADLIFT_ZENDESK_URL          overrides zendesk.url
  THREADLIFT_ZENDESK_EMAIL        overrides zendesk.email
  THREADLIFT_WORKERS              overrides pipeline.workers
  THREADLIFT_REQUESTS_PER_MINUTE  overrides zendesk.requests_per_minute
  THREADLIFT_CHECKPOINT           overrides checkpoint.path (and --shard's NAME.shard-I-of-N.EXT)
  THREADLIFT_READ_CHUNK_MESSAGES  overrides pipeline.read_chunk_messages (0: read the archive whole)
  ZENDESK_API_TOKEN               the API token: the variable zendesk.token_env names (this one by
                                  default); zendesk.oauth_token_env and the other *_env keys name theirs
  NO_COLOR                        set (to anything): console logs without colours (https://no-color.org)
  GOMEMLIMIT                      a memory limit for the Go runtime instead of threadlift's own GC target
  TMPDIR                          where the envelope index's temporary files go (default /tmp)`

// newRoot builds the command tree and returns the options it fills, whose
// atExit main calls.
func newRoot(stdout, stderr io.Writer, getenv func(string) string) (*cobra.Command, *globalOptions) {
	g := &globalOptions{stdout: stdout, stderr: stderr, getenv: getenv}
	cmd := &cobra.Command{
		Use:           "threadlift",
		Short:         "Move archived conversations into Zendesk side conversations, exactly once",
		Long:          rootLong,
		Example:       rootExample,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.SetVersionTemplate("{{.Version}}\n")
	cmd.Version = versionText()
	cmd.Flags().Bool("version", false, "print version, commit and Go version (the same as 'threadlift version')")
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w: %w (see '%s --help')", errUsage, err, c.CommandPath())
	})
	addGlobalFlags(cmd, g)

	status, failures, retry := newStatusCommand(g), newFailuresCommand(g), newRetryCommand(g)
	cmd.AddCommand(
		newValidateCommand(g),
		newImportCommand(g),
		status, failures, retry,
		newVerifyCommand(g),
		newCheckCommand(g),
		newInitCommand(g),
		newVersionCommand(g),
	)
	for _, c := range []*cobra.Command{status, failures, retry} {
		withShardCheckpoint(g, c)
	}
	for _, c := range cmd.Commands() {
		withCPUProfile(g, c)
	}
	return cmd, g
}

// rootLong is threadlift's --help text.
const rootLong = `threadlift reads conversation archives (mbox and Gmail Takeout, maildir,
folders of .eml files, csv, json and help desk exports), threads the
messages, and imports each thread into Zendesk Support as a side conversation
on its parent ticket, through the side-conversation import endpoints.

Every thread and message is recorded in a checkpoint (SQLite) before and after
each request, so a run can be killed at any moment and started again: nothing
is imported twice and nothing is lost. Run 'threadlift validate' first: it
posts nothing and tells you what would fail and why.

Rehearse on a sandbox account first: whether Zendesk emails the participants
of imported email side conversations is not documented.

Memory: about 200 bytes per message of the archive plus a small working set
(a 1 GB mbox of 125,000 messages validates in about 55 MiB); past 8 MiB, what
only loading a message needs goes to temporary files in TMPDIR (about 80
bytes per message). threadlift keeps the Go GC's target close to the live
heap; set GOMEMLIMIT to choose the limit yourself.

Logs go to stderr, data (summaries, JSON) to stdout. -q logs warnings and
errors only and draws no progress; -v logs everything (debug). Console logs
are coloured on a terminal unless NO_COLOR is set.

Shell completion: 'threadlift completion bash|zsh|fish|powershell --help'
says how to install it; flags with a fixed set of values (--log-level,
--log-format, --fail-on) complete their values.

` + environmentHelp

// rootExample is threadlift's --help examples.
const rootExample = `  threadlift init --write                                  # a commented threadlift.yaml to edit
  ZENDESK_API_TOKEN=... threadlift check -c threadlift.yaml # preflight: credentials, role, add-on, limits
  threadlift validate -c threadlift.yaml --report out/
  ZENDESK_API_TOKEN=... threadlift import -c threadlift.yaml --summary run.json
  ZENDESK_API_TOKEN=... threadlift verify -c threadlift.yaml # read it all back: exactly once?
  threadlift status -c threadlift.yaml
  threadlift failures -c threadlift.yaml --json
  threadlift --version`

// addGlobalFlags declares the flags every command shares into g, and
// checks -q, -v and --log-level before any command runs.
func addGlobalFlags(cmd *cobra.Command, g *globalOptions) {
	f := cmd.PersistentFlags()
	f.StringVarP(&g.config, "config", "c", defaultConfig(g.getenv), "config file (YAML, see 'threadlift init'); default: $THREADLIFT_CONFIG, else threadlift.yaml")
	f.StringVar(&g.logLevel, "log-level", "info", "log level: debug|info|warn|error")
	f.StringVar(&g.logFormat, "log-format", "", "log format: console|json (default: console when stderr is a terminal, json otherwise; NO_COLOR: no colours)")
	f.BoolVar(&g.noProgress, "no-progress", false, "no progress bar or progress log lines")
	f.BoolVarP(&g.quiet, "quiet", "q", false, "log warnings and errors only, no progress (the same as --log-level warn --no-progress)")
	f.BoolVarP(&g.verbose, "verbose", "v", false, "log everything (the same as --log-level debug)")
	cmd.MarkPersistentFlagFilename("config", "yaml", "yml")
	completeValues(cmd, "log-level", "debug", "info", "warn", "error")
	completeValues(cmd, "log-format", "console", "json")
	cmd.PersistentPreRunE = func(c *cobra.Command, _ []string) error {
		if g.quiet && g.verbose || c.Flags().Changed("log-level") && (g.quiet || g.verbose) {
			return fmt.Errorf("%w: give one of -q, -v and --log-level", errUsage)
		}
		switch {
		case g.quiet:
			g.logLevel, g.noProgress = "warn", true
		case g.verbose:
			g.logLevel = "debug"
		}
		return nil
	}
	f.StringVar(&g.cpuProfile, "cpuprofile", "", "write a pprof CPU profile of the command to this file")
	f.MarkHidden("cpuprofile")
}

// completeValues makes flag name of cmd (its own or persistent) complete
// to values in a shell.
func completeValues(cmd *cobra.Command, name string, values ...string) {
	cmd.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
}

// onExit registers f to be called with the process's exit code, last of
// all.
func (g *globalOptions) onExit(f func(code int)) { g.atExit = append(g.atExit, f) }

// withShardCheckpoint gives a command that reads the checkpoint a --shard
// flag, and a hint to use it when the checkpoint it names does not exist
// but those of shards do.
func withShardCheckpoint(g *globalOptions, c *cobra.Command) {
	c.Flags().Var(&g.shard, "shard", shardReadHelp)
	c.Use += " [--shard I/N]"
	run := c.RunE
	c.RunE = func(cmd *cobra.Command, args []string) error {
		cfg, err := g.loadConfig()
		if err != nil {
			return err
		}
		if _, err := os.Stat(cfg.Checkpoint.Path); errors.Is(err, fs.ErrNotExist) && g.getenv(configs.EnvCheckpoint) == "" {
			if others := otherCheckpoints(g.checkpointBase, g.shard.Shard); len(others) > 0 {
				return fmt.Errorf("%w: no checkpoint at %s, but there is %s: pick one with --shard I/N",
					errUsage, cfg.Checkpoint.Path, strings.Join(others, ", "))
			}
		}
		return run(cmd, args)
	}
}

func (g *globalOptions) stderrIsTerminal() bool {
	f, ok := g.stderr.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// colour says whether console logs are coloured: on a terminal, unless
// NO_COLOR is set to anything (https://no-color.org).
func colour(terminal bool, getenv func(string) string) bool {
	return terminal && getenv("NO_COLOR") == ""
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
		w = zerolog.ConsoleWriter{Out: g.stderr, TimeFormat: "15:04:05", NoColor: !colour(g.stderrIsTerminal(), g.getenv)}
	default:
		return zerolog.Nop(), fmt.Errorf("%w: --log-format %q: want console or json", errUsage, format)
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger(), nil
}

// loadConfig loads the config; with --shard, checkpoint.path becomes the
// shard's (NAME.shard-I-of-N.EXT), unless THREADLIFT_CHECKPOINT names it.
func (g *globalOptions) loadConfig() (*configs.Config, error) {
	cfg, err := configs.Load(g.config, g.getenv)
	if err != nil {
		return nil, err
	}
	g.checkpointBase = cfg.Checkpoint.Path
	if g.getenv(configs.EnvCheckpoint) == "" {
		cfg.Checkpoint.Path = g.shard.Path(cfg.Checkpoint.Path)
	}
	return cfg, nil
}

// logConfig says at debug level (-v) which config a command runs with:
// where the settings came from is the first question when a run
// surprises.
func (g *globalOptions) logConfig(log zerolog.Logger, cfg *configs.Config) {
	log.Debug().Str("config", absPath(g.config)).Str("checkpoint", cfg.Checkpoint.Path).Int("sources", len(cfg.Sources)).
		Int("workers", cfg.Pipeline.Workers).Int("requests_per_minute", cfg.Zendesk.RequestsPerMinute).
		Int("write_requests_per_10_minutes", cfg.Zendesk.WriteRequestsPer10Minutes).Str("version", version).Msg("config loaded")
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
		srcs = append(srcs, pipeline.Source{Type: f.Type, Path: f.Path, Name: displayPath(cfg.Dir, f.Path), Fields: f.Fields, ThreadKeyPrefix: f.ThreadKeyPrefix, Format: f.Format})
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
	var defaultRecipient *sources.Address
	if r := cfg.Mapping.DefaultRecipient; !r.IsZero() {
		defaultRecipient = &sources.Address{Email: r.Email, Name: r.Name, UserID: r.UserID}
	}
	return pipeline.Options{
		Sources:   srcs,
		Read:      sources.Options{MaxMessageBytes: int64(cfg.Mapping.MaxMessageBytes), DefaultRecipient: defaultRecipient != nil},
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
			DefaultRecipient: defaultRecipient,
		}),
		ReuseUploadsFor:    time.Duration(cfg.Mapping.Attachments.ReuseUploadsFor),
		Workers:            cfg.Pipeline.Workers,
		MaxAttempts:        cfg.Pipeline.MaxAttempts,
		ReadChunk:          cfg.Pipeline.ReadChunkMessages,
		StopTimeout:        time.Duration(cfg.Zendesk.Timeout),
		Settle:             settle(cfg.Zendesk.Settle),
		RequestsPerMinute:  cfg.Zendesk.RequestsPerMinute,
		WritesPer10Minutes: cfg.Zendesk.WriteRequestsPer10Minutes,
		Logger:             log,
	}, nil
}

// settle maps zendesk.settle to pipeline.Options.Settle, whose zero means
// the default: a configured 0 (look at once) is negative there.
func settle(d configs.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return time.Duration(d)
}

// displayPath shows a source path relative to the config's folder when it
// lies inside it: shorter in reports, and the same on every machine.
func displayPath(dir, path string) string {
	if rel, err := filepath.Rel(dir, path); err == nil && !strings.HasPrefix(rel, "..") {
		return filepath.ToSlash(rel)
	}
	return path
}

// shardHelp is the --shard help of import; shardReadHelp that of the
// commands that only pick the shard's checkpoint.
const (
	shardHelp = "import only shard I of N, I 0-based (0 ≤ I < N): the threads whose ticket id hashes to I " +
		"(64-bit FNV-1a of the decimal ticket id, mod N; a thread with no ticket: of its thread key), " +
		"with its own checkpoint NAME.shard-I-of-N.EXT (unless THREADLIFT_CHECKPOINT is set) " +
		"and 1/N of requests_per_minute and write_requests_per_10_minutes. Keep N for the whole migration"
	shardReadHelp = "use the checkpoint of shard I of N (I 0-based), as written by 'import --shard I/N'"
)

// shardFlag is the value of --shard I/N.
type shardFlag struct{ pipeline.Shard }

func (f *shardFlag) String() string { return f.Shard.String() }
func (f *shardFlag) Type() string   { return "I/N" }
func (f *shardFlag) Set(s string) error {
	sh, err := pipeline.ParseShard(s)
	if err != nil {
		return err
	}
	f.Shard = sh
	return nil
}

// checkSplit returns an error when cfg's checkpoint does not exist yet but
// one of another split does (the same name without --shard, or with
// another N): a fresh checkpoint would send again every thread the others
// hold. Not when THREADLIFT_CHECKPOINT names the checkpoint.
func (g *globalOptions) checkSplit(cfg *configs.Config) error {
	if g.getenv(configs.EnvCheckpoint) != "" {
		return nil
	}
	if _, err := os.Stat(cfg.Checkpoint.Path); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	others := otherCheckpoints(g.checkpointBase, g.shard.Shard)
	if len(others) == 0 {
		return nil
	}
	return fmt.Errorf("%w: no checkpoint at %s, but %s exists: this migration was run with another --shard I/N (or none), "+
		"and a new checkpoint would import its threads again; run with the same --shard as before, "+
		"or set %s to start a separate checkpoint on purpose",
		errUsage, cfg.Checkpoint.Path, strings.Join(others, ", "), configs.EnvCheckpoint)
}

// otherCheckpoints lists the checkpoints next to base written with another
// split than sh: base itself (no --shard) and NAME.shard-I-of-M.EXT with
// M ≠ sh.Count.
func otherCheckpoints(base string, sh pipeline.Shard) []string {
	var out []string
	if sh.Sharded() {
		if _, err := os.Stat(base); err == nil {
			out = append(out, base)
		}
	}
	dir, name := filepath.Split(base)
	ext := filepath.Ext(name)
	if ext == name {
		ext = ""
	}
	stem := strings.TrimSuffix(name, ext) + ".shard-"
	entries, _ := os.ReadDir(filepath.Clean(dir))
	for _, e := range entries {
		n := e.Name()
		if !strings.HasPrefix(n, stem) || !strings.HasSuffix(n, ext) {
			continue
		}
		i, m, ok := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(n, stem), ext), "-of-")
		_, err1 := strconv.Atoi(i)
		count, err2 := strconv.Atoi(m)
		if !ok || err1 != nil || err2 != nil {
			continue
		}
		if count != sh.Count && !(count <= 1 && !sh.Sharded()) {
			out = append(out, filepath.Join(dir, n))
		}
	}
	return out
}
