package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/configs"
	"github.com/threadlift/threadlift/pipeline"
	"github.com/threadlift/threadlift/pipeline/report"
	"github.com/threadlift/threadlift/zendesk"
)

type importOptions struct {
	dryRun      bool
	summary     string
	limit       int
	fullRead    bool
	maxDuration time.Duration
	report      string
	metricsFile string
	metricsPush string
	failOn      []string
}

// Outcomes --fail-on takes: each listed one makes its exit status (1 for
// rejected and failed, 75 for paused); one not listed exits 0.
const (
	failOnRejected = "rejected"
	failOnFailed   = "failed"
	failOnPaused   = "paused"
	failOnNone     = "none"
)

var failOnDefault = []string{failOnRejected, failOnFailed, failOnPaused}

// failOnSet checks --fail-on's values.
func failOnSet(values []string) (map[string]bool, error) {
	set := map[string]bool{}
	for _, v := range values {
		switch v {
		case failOnRejected, failOnFailed, failOnPaused:
			set[v] = true
		case failOnNone:
			if len(values) > 1 {
				return nil, fmt.Errorf("%w: --fail-on none goes alone", errUsage)
			}
		default:
			return nil, fmt.Errorf("%w: --fail-on %q: want rejected, failed, paused (any of them, comma-separated) or none", errUsage, v)
		}
	}
	return set, nil
}

func newImportCommand(g *globalOptions) *cobra.Command {
	var o importOptions
	cmd := &cobra.Command{
		Use:     "import -c FILE [--dry-run] [--summary FILE] [--limit N] [--shard I/N] [--metrics-file FILE] [--metrics-push URL] [--fail-on LIST]",
		Short:   "Import threads into Zendesk, resuming from the checkpoint",
		Long:    importLong,
		Example: importExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.dryRun {
				if g.shard.Sharded() {
					return fmt.Errorf("%w: --shard does not apply to --dry-run: validate checks every thread", errUsage)
				}
				return runValidate(cmd, g, validateOptions{report: o.report})
			}
			return runImport(cmd, g, o)
		},
	}
	addImportFlags(cmd, g, &o)
	return cmd
}

// addImportFlags declares import's flags into o (and --shard into g).
func addImportFlags(cmd *cobra.Command, g *globalOptions, o *importOptions) {
	f := cmd.Flags()
	f.BoolVar(&o.dryRun, "dry-run", false, "validate only, post nothing (same as 'threadlift validate')")
	f.StringVar(&o.summary, "summary", "", "write the run summary as JSON to this file")
	f.StringVar(&o.report, "report", "", "write report.html and summary.json of this run into this folder (with --dry-run: the validation report)")
	f.BoolVar(&o.fullRead, "full-read", false, "read every source in full, even when the checkpoint's record of the last read lets a backfill read only what was appended")
	f.IntVar(&o.limit, "limit", 0, "post at most N threads in this run: threads that send at least one request (rejected or already imported threads do not count; 0: all)")
	f.DurationVar(&o.maxDuration, "max-duration", 0, "stop taking new threads after this long (e.g. 6h) and exit cleanly; the next run goes on (0: no limit)")
	f.Var(&g.shard, "shard", shardHelp)
	f.StringVar(&o.metricsFile, "metrics-file", "", "write Prometheus text metrics to this file every 30s and at the end of the run (atomically; for node_exporter's textfile collector)")
	f.StringVar(&o.metricsPush, "metrics-push", "", "POST the same metrics to the Prometheus Pushgateway at this URL (http://host:9091) every 30s and at the end")
	f.StringSliceVar(&o.failOn, "fail-on", failOnDefault, "outcomes that make a non-zero exit, comma-separated: rejected (1), failed (1), paused (75); or none")
	completeValues(cmd, "fail-on", failOnRejected, failOnFailed, failOnPaused, failOnNone)
}

// importLong is import's --help text.
const importLong = `import posts every thread that is not done yet: one side_conversations/import
request with the first max_events_per_request events, then events/import
requests for the rest. It resumes from the checkpoint automatically: threads
already done are skipped, a thread found in flight is first looked up on its
ticket by its threadlift_thread_key, and new messages of done threads are
appended (scheduled backfills). A backfill reads only the bytes appended
to the sources since the last import when the files only grew (the
checkpoint records what each import read); anything else reads every
source in full and logs why. --full-read always reads in full.

A full read of an archive bigger than pipeline.read_chunk_messages (default
500000 messages) reads, threads and imports it a chunk at a time, so that
memory stays bounded whatever its size: a thread of an earlier chunk that a
later chunk's messages join is handed again, and only its new messages are
sent, to its side conversation (README, "Big archives").

Credentials come from the environment, never from the config file:
zendesk.token_env (default ZENDESK_API_TOKEN) with zendesk.email, or
zendesk.oauth_token_env for an OAuth bearer token.

--limit N stops once N threads have sent at least one request: threads
that are rejected, already imported or another shard's do not count, so
that an archive whose first threads are invalid still makes progress.
Threads are taken in archive order, but with several workers the N that
reach the network first are the ones sent (use pipeline.workers: 1 or
THREADLIFT_WORKERS=1 for exactly the first N).

The checkpoint records the Zendesk account it is used with (zendesk.url)
and is refused for another one (exit 3): skipping its done threads there
would lose them. It also records whether its last run ended cleanly. When
it cannot vouch for what Zendesk holds (the last run was killed or
crashed, or the file is a copy taken without its -wal, or a restored
backup), each ticket is looked up (one list request) before the first
write to it, and what it holds is recorded: nothing is sent twice. A new
or trusted checkpoint looks up the first 20 tickets it writes to, and
switches to looking up every ticket if one holds threadlift keys it did
not know. 'threadlift verify --adopt' rebuilds a lost or stale
checkpoint in one pass. After a clean end (exit 0, 1 or 130) the .db file
alone is complete: copy it, and only it, as a backup then; during a run,
copy the .db and its -wal together or not at all.

A thread whose messages were imported as parts of other threads (a
backfill brought a reply that links two imported threads, their missing
root, or subject_threading was switched on; or a thread split off one)
never sends those messages again: they stay where they are, new ones go
to the side conversation of the part imported first, and the summary
lists a thread-joined warning.

A thread whose source file changed between the scan and the load fails
with source-changed ("the source changed while importing; run import
again"), never rejected; the next import takes it up by itself.

Every failure is listed in failures.jsonl next to the checkpoint, rewritten
by every run. The records that were not imported (rejected messages, the
messages of failed or rejected threads, csv rows and json records that could
not be read) are copied, each in its source's own format, into a NEW folder
per run: failures/YYYY-MM-DDTHH-MM-SSZ/ next to the checkpoint, one file per
source file, named after it (json as .jsonl). A run never writes into a
folder that exists, so fixing a file in place is safe; a run whose copies
are the same as the latest folder's writes none (the log and the summary's
failures_dir name the folder). Each copy carries a mark (the
X-Threadlift-Source header; the threadlift_source and threadlift_key csv
columns and json fields): leave the marks and the Message-ID / message_id /
thread_id as they are, fix the rest, and add the file as a source of the
same type, fields and thread_key_prefix as its original. The next import
posts each fixed record once, in place of the original, into its thread.
A thread that failed (HTTP) needs 'threadlift retry' as well.

With --max-duration D, no new thread is started after D; requests in
flight finish, the run exits 0 (unless something failed) and the next run
goes on from there.

With --shard I/N (I is 0-based), this process imports only the threads
whose ticket id hashes to I: 64-bit FNV-1a of the ticket id in decimal,
modulo N (a thread that maps to no ticket: of its thread key). All writes to
one ticket thus come from one process, and N processes with 0/N .. N-1/N
import every thread exactly once between them. The others' threads are
loaded and mapped, then left alone (other_shards in the summary). Each shard
has its own checkpoint, NAME.shard-I-of-N.EXT next to checkpoint.path
(unless THREADLIFT_CHECKPOINT is set), its own failures.shard-I-of-N.jsonl
and failures.shard-I-of-N/ folder, and 1/N of requests_per_minute and write_requests_per_10_minutes
(rounded down, at least 1), since the account's limits are shared. Keep N
for the whole migration and its backfills: a new N means new checkpoints,
and import refuses to start one next to checkpoints of another split.

With --metrics-file FILE, Prometheus text metrics (for node_exporter's
textfile collector; the file is 0644) are written to FILE every 30s and at
the very end: threads and messages by state, requests by endpoint,
responses by status, 429s, retries, seconds paused by Retry-After, bytes
read, events imported, the last success time (when a thread was last marked
done, this run or an earlier one), and the run's start, end, in-progress
flag, exit code and threadlift's version (threadlift_build_info). With
--metrics-push URL the same are POSTed to a Prometheus Pushgateway at URL
(job "threadlift", the shard as a grouping label): the way to see how a
Kubernetes Job or CronJob ended after its pod is gone. A metrics write or
push that fails is logged and never stops the run.

--fail-on says which outcomes make a non-zero exit: by default all of
rejected (exit 1: a thread or message was rejected), failed (exit 1: a
thread failed and waits for 'threadlift retry') and paused (exit 75). A
scheduled backfill that should page only for what a person must act on
runs with --fail-on failed: rejected records (the archive's content; fix
them through the failures folder) and a pause (the next run resumes) then
exit 0, and are still in the summary, the failures and the metrics.
--fail-on none exits 0 for all three. Usage, config and fatal errors
(2, 3) and interrupts (130) always exit non-zero.

With --report DIR, DIR/threads.csv lists every thread of the sources with
its ticket, messages, first and last date, its state in the checkpoint
(not-run: the run stopped before it, or it is another shard's) and the first
reason it or a message of it was not imported; the sources' envelopes are
read again for it (a scan, nothing is sent).

Interrupt (Ctrl-C, SIGTERM) to stop cleanly: no new threads are taken,
requests in flight may finish within zendesk.timeout, exit status 130.
Interrupt twice to quit at once; the next import still resumes safely.

Some answers concern every request, not one thread, and stop the run at the
first one instead of failing thread after thread: a redirect (zendesk.url is
not the account's address; the Location is shown, never followed) and a 403
on a write (the user may not import side conversations, or the account has
them off: check the role and the Collaboration add-on, or run 'threadlift
check'), both exit 3; a Retry-After longer than zendesk.max_retry_after
(default 15m), exit 75 with the time after which to run import again. The
thread refused is pending again; threads in flight are looked up on their
ticket by the next run.

A write that got no answer (the timeout, a 504, a run killed with it in
flight) is given zendesk.settle (default 10s) to land before its ticket is
looked up: a lookup made at once could miss a write Zendesk carried out
late, and send it twice.

Bounds: answers are read up to a cap (64 MiB a page of side conversations,
16 MiB or twice the request an import); an import answered with more is
looked up on its ticket, never sent again.

Only one import (or retry) may use a checkpoint at a time, whatever path
names it (a symlink, .., a hard link, a bind mount): the lock is taken on
the file itself, and the second run exits 3 naming the holder's pid. A
checkpoint whose folder or file cannot be written exits 3 saying
"read-only": the checkpoint is not damaged, do not delete it.

Exit status: 0 all imported, 1 some threads or messages failed or were
rejected (see 'threadlift failures'), 2 usage/config error, 3 fatal
(authentication refused, a redirect, a 403 on a write, checkpoint
unusable, read-only, locked by another run or used with another
account), 75 Zendesk asked to pause longer than zendesk.max_retry_after
(run import again after the time printed; it resumes), 130 interrupted.`

// importExample is import's --help examples.
const importExample = `  ZENDESK_API_TOKEN=... threadlift import -c threadlift.yaml
  threadlift import -c threadlift.yaml --limit 10        # a first small batch
  threadlift import -c threadlift.yaml --max-duration 6h # a nightly window
  threadlift import -c threadlift.yaml --summary run.json
  threadlift import -c threadlift.yaml --report run/     # run/report.html + run/summary.json
  threadlift import -c threadlift.yaml --dry-run         # the same as validate
  threadlift import -c threadlift.yaml --shard 2/4       # the third of four processes
  threadlift import -c threadlift.yaml --metrics-file /var/lib/node_exporter/threadlift.prom
  threadlift import -c threadlift.yaml --metrics-push http://pushgateway:9091 --fail-on failed  # a nightly CronJob`

// newMetricsPublisher is the publisher of --metrics-file and
// --metrics-push, or nil; its Finish runs with the process's exit code
// last of all, whatever stops the run (even a config error).
func newMetricsPublisher(g *globalOptions, o importOptions) (*pipeline.MetricsPublisher, error) {
	if o.metricsFile == "" && o.metricsPush == "" {
		return nil, nil
	}
	if o.metricsPush != "" {
		u, err := url.Parse(o.metricsPush)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%w: --metrics-push %q: want the Pushgateway's http:// or https:// URL", errUsage, redactURL(o.metricsPush))
		}
	}
	p := &pipeline.MetricsPublisher{File: o.metricsFile, PushURL: o.metricsPush, Version: version, Commit: buildCommit(), Started: time.Now()}
	if sh := g.shard.Shard; sh.Sharded() {
		p.Labels = map[string]string{"shard": sh.String()}
	}
	g.onExit(func(code int) { p.Finish(context.Background(), code) })
	return p, nil
}

// redactURL drops a password from a URL for messages.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "(unparsable URL)"
}

func runImport(cmd *cobra.Command, g *globalOptions, o importOptions) error {
	pub, err := newMetricsPublisher(g, o)
	if err != nil {
		return err
	}
	failOn, err := failOnSet(o.failOn)
	if err != nil {
		return err
	}
	if o.limit < 0 || o.maxDuration < 0 {
		return fmt.Errorf("%w: --limit and --max-duration must be 0 or more", errUsage)
	}
	log, err := g.logger()
	if err != nil {
		return err
	}
	if pub != nil {
		pub.Logger = log
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	g.logConfig(log, cfg)
	if err := cfg.CheckImport(g.getenv); err != nil {
		return err
	}
	if err := g.checkSplit(cfg); err != nil {
		return err
	}
	shardRates(g, cfg, log)
	opts, err := pipelineOptions(cfg, log)
	if err != nil {
		return err
	}
	opts.Limit = o.limit
	opts.FullRead = o.fullRead
	opts.Account = cfg.Zendesk.URL
	opts.MaxDuration = o.maxDuration
	opts.Shard = g.shard.Shard
	opts.Metrics = pub
	client, err := newImportClient(g, cfg, log)
	if err != nil {
		return err
	}

	ctx := cmd.Context()
	// The integrity check runs while pipeline.Import reads the archive;
	// Import waits for it before anything is written or sent.
	store, err := checkpoint.Open(ctx, cfg.Checkpoint.Path, checkpoint.Options{DeferCheck: true})
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Lock(); err != nil {
		return err
	}

	prog := newProgress(g, log, "import")
	prog.limit = int64(o.limit)
	opts.Progress = prog
	sum, err := pipeline.Import(ctx, client, store, opts)
	prog.Close()
	if sum != nil {
		writeImportOutputs(ctx, g, o, log, sum, opts, store)
	}
	return importExit(err, sum, failOn, o, log)
}

// shardRates gives a shard its share of the account's rate limits: they
// are shared by every shard.
func shardRates(g *globalOptions, cfg *configs.Config, log zerolog.Logger) {
	sh := g.shard.Shard
	if !sh.Sharded() {
		return
	}
	cfg.Zendesk.RequestsPerMinute = sh.Rate(cfg.Zendesk.RequestsPerMinute)
	cfg.Zendesk.WriteRequestsPer10Minutes = sh.Rate(cfg.Zendesk.WriteRequestsPer10Minutes)
	log.Info().Str("shard", sh.String()).Str("checkpoint", cfg.Checkpoint.Path).
		Int("requests_per_minute", cfg.Zendesk.RequestsPerMinute).
		Int("write_requests_per_10_minutes", cfg.Zendesk.WriteRequestsPer10Minutes).
		Msgf("shard %s: own checkpoint, 1/%d of the account's rate limits", sh, sh.Count)
}

// newImportClient builds import's API client: with the OAuth refresh
// token when there is one, and zendesk.max_retry_after.
func newImportClient(g *globalOptions, cfg *configs.Config, log zerolog.Logger) (*zendesk.Client, error) {
	email, token, oauth := cfg.Credentials(g.getenv)
	var refresh *zendesk.OAuthRefresh
	if rt, id, secret := cfg.OAuthRefresh(g.getenv); rt != "" && oauth != "" {
		refresh = &zendesk.OAuthRefresh{RefreshToken: rt, ClientID: id, ClientSecret: secret}
	}
	client, err := zendesk.New(zendesk.Options{
		OAuthRefresh: refresh,
		OnTokenRefresh: func(string, string) {
			// Zendesk retires the old pair on refresh; the new tokens live
			// only in this process (they are never written anywhere).
			// The variable's name is not logged: a *_env key may hold a
			// pasted secret by mistake.
			log.Warn().Str("key", "zendesk.oauth_refresh_token_env").
				Msg("OAuth access token refreshed; the refresh token in the variable named in zendesk.oauth_refresh_token_env no longer works: put a new one there before the next run")
		},
		BaseURL:                   cfg.Zendesk.URL,
		Email:                     email,
		Token:                     token,
		OAuthToken:                oauth,
		RequestsPerMinute:         cfg.Zendesk.RequestsPerMinute,
		WriteRequestsPer10Minutes: cfg.Zendesk.WriteRequestsPer10Minutes,
		Timeout:                   time.Duration(cfg.Zendesk.Timeout),
		MaxRetryAfter:             time.Duration(cfg.Zendesk.MaxRetryAfter),
		Logger:                    log,
		UserAgent:                 "threadlift/" + version,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: zendesk: %w", errUsage, err)
	}
	return client, nil
}

// writeImportOutputs completes the run's summary (failures by reason,
// provenance), writes --summary and --report, and prints it.
func writeImportOutputs(ctx context.Context, g *globalOptions, o importOptions, log zerolog.Logger, sum *report.Summary, opts pipeline.Options, store *checkpoint.Store) {
	// What failed, by reason, as `failures` will list it.
	var failures []report.Failure
	if recs, ferr := store.Failures(context.WithoutCancel(ctx)); ferr != nil {
		log.Warn().Err(ferr).Msg("could not read the failures from the checkpoint")
	} else {
		failures = pipeline.FailureRecords(recs)
	}
	sum.FailedByReason = report.CountFailures(failures)
	sum.Provenance = report.NewProvenance(time.Now(), version, buildCommit(), absPath(g.config), sourceStats(opts.Sources))
	if o.summary != "" {
		if werr := report.WriteJSON(o.summary, sum); werr != nil {
			log.Error().Err(werr).Msg("could not write the summary")
		}
	}
	if o.report != "" {
		writeImportReport(ctx, o, log, sum, failures, opts, store)
	}
	printSummary(g.stdout, sum)
}

// writeImportReport writes --report's folder: threads.csv (not when
// interrupted), report.html and summary.json.
func writeImportReport(ctx context.Context, o importOptions, log zerolog.Logger, sum *report.Summary, failures []report.Failure, opts pipeline.Options, store *checkpoint.Store) {
	wrote := false
	if ctx.Err() != nil {
		log.Warn().Msg("interrupted: no threads.csv in the run report")
	} else if werr := writeImportThreads(ctx, filepath.Join(o.report, report.ThreadsCSVName), opts, store); werr != nil {
		log.Error().Err(werr).Msg("could not write threads.csv")
	} else {
		wrote = true
	}
	if werr := report.WriteRunDir(o.report, report.RunReport{Summary: sum, Failures: failures}, report.HTMLOptions{ThreadsCSV: wrote}); werr != nil {
		log.Error().Err(werr).Msg("could not write the run report")
	} else {
		log.Info().Str("html", filepath.Join(o.report, "report.html")).Str("json", filepath.Join(o.report, "summary.json")).Msg("run report written")
	}
}

// importExit is what import returns: err (nil for a pause that --fail-on
// leaves out), errPartial for what failed or was rejected when --fail-on
// lists it, else nil.
func importExit(err error, sum *report.Summary, failOn map[string]bool, o importOptions, log zerolog.Logger) error {
	if err != nil {
		if errors.Is(err, pipeline.ErrInterrupted) {
			log.Warn().Msg("interrupted: run 'threadlift import' again to resume")
		}
		if errors.Is(err, pipeline.ErrPaused) && !failOn[failOnPaused] {
			log.Warn().Msg("paused by Zendesk; exit status 0 as --fail-on leaves out paused: the next run resumes")
		} else {
			return err
		}
	}
	if sum == nil {
		return nil
	}
	failed := sum.Failed > 0
	rejected := sum.Rejected > 0 || sum.RejectedMsgs > 0
	switch {
	case failed && failOn[failOnFailed], rejected && failOn[failOnRejected]:
		return errPartial
	case failed || rejected:
		log.Warn().Bool("failed", failed).Bool("rejected", rejected).Strs("fail_on", o.failOn).
			Msg("some threads or messages were not imported (see 'threadlift failures'); exit status 0 as --fail-on leaves them out")
	}
	return nil
}

// sourceStats describes the source files for the summary's provenance.
func sourceStats(srcs []pipeline.Source) []report.SourceStats {
	out := make([]report.SourceStats, 0, len(srcs))
	for _, s := range srcs {
		st := report.SourceStats{File: s.Name, Format: s.Type}
		if fi, err := os.Stat(s.Path); err == nil {
			st.Bytes = fi.Size()
		}
		out = append(out, st)
	}
	return out
}

// writeImportThreads writes threads.csv of an import run atomically.
func writeImportThreads(ctx context.Context, path string, opts pipeline.Options, store *checkpoint.Store) error {
	f, err := report.CreateAtomic(path)
	if err != nil {
		return err
	}
	defer f.Abort()
	rows, err := report.NewThreadsCSV(f)
	if err != nil {
		return err
	}
	if err := pipeline.ImportThreads(ctx, opts, store, rows.Add); err != nil {
		return err
	}
	if err := rows.Flush(); err != nil {
		return err
	}
	return f.Commit()
}

func printSummary(w io.Writer, s *report.Summary) {
	rate := 0.0
	if s.ElapsedSeconds > 0 {
		rate = float64(s.Requests) / s.ElapsedSeconds * 60
	}
	fmt.Fprintf(w, "threads:   %d total: %d imported, %d already done, %d failed, %d rejected", s.ThreadsTotal, s.Imported, s.AlreadyDone, s.Failed, s.Rejected)
	if s.Skipped > 0 {
		fmt.Fprintf(w, ", %d left for later (--limit)", s.Skipped)
	}
	if s.Shard != "" {
		fmt.Fprintf(w, ", %d for other shards (this is shard %s)", s.OtherShards, s.Shard)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "messages:  %d seen: %d events imported, %d rejected, %d duplicate%s", s.Messages, s.EventsImported, s.RejectedMsgs, s.Duplicates, plural(s.Duplicates))
	if rest := s.Messages - s.EventsImported - s.RejectedMsgs - s.Duplicates; rest > 0 {
		fmt.Fprintf(w, ", %d imported before or not sent in this run", rest)
	}
	fmt.Fprintln(w)
	if s.Duplicates > 0 {
		fmt.Fprintln(w, "           (a duplicate repeats the message key of a message seen before: that one is imported, once)")
	}
	fmt.Fprintf(w, "requests:  %d (%d import, %d events/import, %d attachment uploads), %d retries, %d rate-limited (429), %d reconciliations\n",
		s.Requests, s.RequestsByKind.Import, s.RequestsByKind.EventsImport, s.RequestsByKind.Uploads, s.Retries, s.RateLimited, s.Reconciled)
	fmt.Fprintf(w, "elapsed:   %s (%.0f requests/min effective)\n", (time.Duration(s.ElapsedSeconds * float64(time.Second))).Round(time.Millisecond), rate)
	if len(s.FailedByReason) > 0 {
		fmt.Fprintln(w, "not imported, by reason (see 'threadlift failures'):")
		for _, r := range s.FailedByReason {
			fmt.Fprintf(w, "  %-8s %-32s %6d %s%s\n", r.State, r.Rule, r.Count, r.Kind, plural(r.Count))
		}
	}
	if s.WarningsTotal > 0 {
		n := map[string]int{}
		var rules []string
		for _, i := range s.Warnings {
			if n[i.Rule] == 0 {
				rules = append(rules, i.Rule)
			}
			n[i.Rule]++
		}
		fmt.Fprintf(w, "warnings:  %d", s.WarningsTotal)
		for i, r := range rules {
			sep := ", "
			if i == 0 {
				sep = " ("
			}
			fmt.Fprintf(w, "%s%s: %d", sep, r, n[r])
		}
		if len(rules) > 0 {
			fmt.Fprint(w, ")")
		}
		fmt.Fprintln(w, " (see the log, or the summary's warnings)")
	}
	if s.Interrupted {
		fmt.Fprintln(w, "interrupted: run import again to resume")
	}
	if s.StoppedByMaxDuration {
		fmt.Fprintln(w, "stopped by --max-duration: the next import goes on where this one stopped")
	}
	if s.PausedUntil != "" {
		until := s.PausedUntil
		if t, err := time.Parse(time.RFC3339, s.PausedUntil); err == nil {
			until = t.Local().Format("15:04 MST on 2006-01-02")
		}
		fmt.Fprintf(w, "paused by Zendesk until %s: run import again after that; it resumes\n", until)
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
