package report

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// Version is report.json's report_version: it changes only when a field
// is renamed or removed (never so far), not when one is added.
const Version = 1

// Issue is one problem, as report.json lists it (contract §7).
type Issue struct {
	Severity   string `json:"severity"` // error | warning
	Rule       string `json:"rule"`
	ThreadKey  string `json:"thread_key"`
	MessageKey string `json:"message_key,omitempty"`
	Source     string `json:"source"`
	Message    string `json:"message"`
	// ThreadSubject is the subject the thread's side conversation would
	// get; "" for a record that could not be read.
	ThreadSubject string `json:"thread_subject,omitempty"`
}

// SourceStats describes one source file.
type SourceStats struct {
	File     string `json:"file"`
	Format   string `json:"format"`
	Bytes    int64  `json:"bytes"`
	Messages int    `json:"messages"`
	// Threads counts the threads whose earliest message is in this file
	// (unreadable records included, one thread each).
	Threads  int `json:"threads"`
	Rejected int `json:"rejected"`
	// Skipped counts the messages the source left out as the config
	// asks (mbox skip_labels): not in Messages, not imported.
	Skipped int `json:"skipped,omitempty"`
}

// Occurrence is where one issue of a rule was raised.
type Occurrence struct {
	ThreadKey  string `json:"thread_key"`
	MessageKey string `json:"message_key,omitempty"`
	Source     string `json:"source"`
}

// RuleCount is how often one rule was raised, and where.
type RuleCount struct {
	Rule        string       `json:"rule"`
	Severity    string       `json:"severity"`
	Count       int          `json:"count"`
	Occurrences []Occurrence `json:"occurrences"`
}

// Requests counts the requests a run plans or made, by endpoint.
type Requests struct {
	Import       int `json:"import"`
	EventsImport int `json:"events_import"`
	Uploads      int `json:"uploads,omitempty"`
}

// Report is report.json. The first fields are the contract's; the rest
// are stable additions documented in the README and in
// report.schema.json.
type Report struct {
	Threads         int     `json:"threads"`
	Messages        int     `json:"messages"`
	ValidThreads    int     `json:"valid_threads"`
	InvalidThreads  int     `json:"invalid_threads"`
	RequestsPlanned int     `json:"requests_planned"`
	Issues          []Issue `json:"issues"`

	ReportVersion  int           `json:"report_version"`
	ImportableMsgs int           `json:"importable_messages"`
	RejectedMsgs   int           `json:"rejected_messages"`
	DuplicateMsgs  int           `json:"duplicate_messages"`
	Tickets        int           `json:"tickets"`
	RequestsByKind Requests      `json:"requests_by_endpoint"`
	Sources        []SourceStats `json:"sources"`
	IssuesByRule   []RuleCount   `json:"issues_by_rule"`
	// PredictedSeconds is how long the import would take at the configured
	// rate limits, requests being the only cost that matters
	// (Duration.Seconds).
	PredictedSeconds float64  `json:"predicted_seconds"`
	Duration         Duration `json:"duration"`

	DateRange                 DateRange     `json:"date_range"`
	MessagesPerMonth          []MonthCount  `json:"messages_per_month"`
	MessagesPerThread         Distribution  `json:"messages_per_thread"`
	ThreadsPerTicket          Distribution  `json:"threads_per_ticket"`
	EventsPerSideConversation Distribution  `json:"events_per_side_conversation"`
	Chunks                    Chunks        `json:"chunks"`
	Attachments               Attachments   `json:"attachments"`
	TopTickets                []TicketCount `json:"top_tickets"`
	Samples                   []Sample      `json:"samples"`

	// Provenance is set by the command that writes the report: when, by
	// which threadlift, from which config.
	Provenance *Provenance `json:"provenance,omitempty"`
}

// DateRange is the span of the archive's message dates.
type DateRange struct {
	Earliest string `json:"earliest"` // RFC 3339 UTC; "" when no message has a date
	Latest   string `json:"latest"`
	Undated  int    `json:"messages_without_date"`
}

// MonthCount is how many messages are dated in one month (UTC).
type MonthCount struct {
	Month    string `json:"month"` // YYYY-MM
	Messages int    `json:"messages"`
}

// Chunks says how the valid threads' events split into requests.
type Chunks struct {
	MaxEventsPerRequest int `json:"max_events_per_request"`
	// Total is the number of requests (import + events/import).
	Total int `json:"total"`
	// Split counts the side conversations that need events/import calls.
	Split int `json:"split_side_conversations"`
	// MaxPerSideConversation is the most requests one thread needs.
	MaxPerSideConversation int `json:"max_per_side_conversation"`
}

// DefaultOversizeAttachmentBytes is the attachment size above which an
// attachment counts as oversize (Zendesk's attachment limit, 50 MB).
const DefaultOversizeAttachmentBytes = 50 * 1024 * 1024

// Attachments summarizes the attachments of the importable messages.
type Attachments struct {
	Count         int             `json:"count"`
	Bytes         int64           `json:"bytes"`
	Messages      int             `json:"messages_with_attachments"`
	LimitBytes    int64           `json:"oversize_limit_bytes"`
	Oversize      int             `json:"oversize"`
	OversizeBytes int64           `json:"oversize_bytes"`
	OversizeList  []AttachmentRef `json:"oversize_attachments"`
}

// AttachmentRef is one attachment, located.
type AttachmentRef struct {
	ThreadKey   string `json:"thread_key"`
	MessageKey  string `json:"message_key"`
	Source      string `json:"source"`
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
}

// TicketCount is what one ticket receives.
type TicketCount struct {
	TicketID          int64 `json:"ticket_id"`
	SideConversations int   `json:"side_conversations"`
	Events            int   `json:"events"`
	Requests          int   `json:"requests"`
}

// Sample is the first request of one valid thread, exactly as it would be
// posted.
type Sample struct {
	ThreadKey string `json:"thread_key"`
	TicketID  int64  `json:"ticket_id"`
	Subject   string `json:"subject"`
	Source    string `json:"source"`
	Events    int    `json:"events"`
	// Requests is how many requests the thread needs; Body is the first.
	Requests int             `json:"requests"`
	Method   string          `json:"method"`
	Path     string          `json:"path"`
	Body     json.RawMessage `json:"body"`
}

// Finish fills the derived fields (issue counts by rule, with every
// occurrence: errors first, then the most frequent) and replaces nil lists
// by empty ones, for stable output.
func (r *Report) Finish() {
	r.ReportVersion = Version
	type key struct{ rule, sev string }
	idx := map[key]int{}
	r.IssuesByRule = r.IssuesByRule[:0]
	for _, i := range r.Issues {
		k := key{i.Rule, i.Severity}
		n, ok := idx[k]
		if !ok {
			n = len(r.IssuesByRule)
			idx[k] = n
			r.IssuesByRule = append(r.IssuesByRule, RuleCount{Rule: i.Rule, Severity: i.Severity, Occurrences: []Occurrence{}})
		}
		rc := &r.IssuesByRule[n]
		rc.Count++
		rc.Occurrences = append(rc.Occurrences, Occurrence{ThreadKey: i.ThreadKey, MessageKey: i.MessageKey, Source: i.Source})
	}
	sort.SliceStable(r.IssuesByRule, func(a, b int) bool {
		x, y := r.IssuesByRule[a], r.IssuesByRule[b]
		if x.Severity != y.Severity {
			return x.Severity == "error" // errors first: they gate the import
		}
		if x.Count != y.Count {
			return x.Count > y.Count
		}
		return x.Rule < y.Rule
	})
	if r.Issues == nil {
		r.Issues = []Issue{}
	}
	if r.IssuesByRule == nil {
		r.IssuesByRule = []RuleCount{}
	}
	if r.Sources == nil {
		r.Sources = []SourceStats{}
	}
	if r.MessagesPerMonth == nil {
		r.MessagesPerMonth = []MonthCount{}
	}
	if r.TopTickets == nil {
		r.TopTickets = []TicketCount{}
	}
	if r.Samples == nil {
		r.Samples = []Sample{}
	}
	if r.Attachments.OversizeList == nil {
		r.Attachments.OversizeList = []AttachmentRef{}
	}
	if r.Duration.ByPlan == nil {
		r.Duration.ByPlan = []PlanDuration{}
	}
	for _, d := range []*Distribution{&r.MessagesPerThread, &r.ThreadsPerTicket, &r.EventsPerSideConversation} {
		if d.Buckets == nil {
			*d = NewDistribution(nil)
		}
	}
}

// HasWarnings reports whether any issue is a warning.
func (r *Report) HasWarnings() bool {
	for _, i := range r.Issues {
		if i.Severity == "warning" {
			return true
		}
	}
	return false
}

// Summary is the import run summary (contract §7, import --summary).
type Summary struct {
	ThreadsTotal   int     `json:"threads_total"`
	Imported       int     `json:"imported"`
	AlreadyDone    int     `json:"already_done"`
	Failed         int     `json:"failed"`
	Rejected       int     `json:"rejected"`
	Requests       int     `json:"requests"`
	Retries        int     `json:"retries"`
	RateLimited    int     `json:"rate_limited"`
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	Messages       int     `json:"messages"`
	EventsImported int     `json:"events_imported"`
	RejectedMsgs   int     `json:"rejected_messages"`
	Reconciled     int     `json:"reconciled"`
	Skipped        int     `json:"skipped_by_limit"`
	Interrupted    bool    `json:"interrupted"`
	// StoppedByMaxDuration: the --max-duration window ended the run; the
	// threads not started are left for the next one.
	StoppedByMaxDuration bool `json:"stopped_by_max_duration,omitempty"`
	// PausedUntil (RFC 3339, UTC): Zendesk asked to pause longer than
	// zendesk.max_retry_after, so the run stopped; run import again after it.
	PausedUntil    string   `json:"paused_until,omitempty"`
	DryRun         bool     `json:"dry_run,omitempty"`
	RequestsByKind Requests `json:"requests_by_endpoint"`
	StartedAt      string   `json:"started_at"`
	FinishedAt     string   `json:"finished_at"`
	// FailedByReason counts the checkpoint's failure records at the end of
	// the run (this run's and earlier runs' still unresolved, as
	// `failures` lists them) by state and rule.
	FailedByReason []ReasonCount `json:"failed_by_reason"`
	// Shard is "I/N" when the run imported one shard of a split migration
	// (import --shard); OtherShards counts the threads it left to the other
	// shards, before sending anything for them.
	Shard       string `json:"shard,omitempty"`
	OtherShards int    `json:"other_shards,omitempty"`
	// Warnings lists what the run did that deserves a look, as issues of
	// the validation report's shape: thread-joined (a backfill joined
	// threads imported separately, or a thread split off one: its new
	// messages went to the side conversation of the earliest imported
	// part). At most 1000; WarningsTotal counts them all.
	Warnings      []Issue `json:"warnings,omitempty"`
	WarningsTotal int     `json:"warnings_total,omitempty"`
	// FailuresDir is the folder holding copies of the records that were
	// not imported, in their sources' formats, ready to fix and add as
	// sources; "" when every record was imported.
	FailuresDir string `json:"failures_dir,omitempty"`
	// Duplicates counts the messages of the sources whose message key
	// repeats one seen before (contract §4): each is imported once, and
	// the repeats are neither imported nor rejected. Messages =
	// importable + rejected + Duplicates.
	Duplicates int `json:"duplicates"`
	// Provenance is set by the command: when, by which threadlift, from
	// which config.
	Provenance *Provenance `json:"provenance,omitempty"`
}

// ReasonCount is how many failure records share a state and a rule.
type ReasonCount struct {
	State string `json:"state"` // failed | rejected
	// Kind is "thread" for a failed or rejected thread, "message" for a
	// rejected message of a thread that is otherwise imported.
	Kind  string `json:"kind"`
	Rule  string `json:"rule"`
	Count int    `json:"count"`
}

// CountFailures groups failure records by state, kind and rule, the most
// frequent first.
func CountFailures(fs []Failure) []ReasonCount {
	type key struct{ state, kind, rule string }
	n := map[key]int{}
	for _, f := range fs {
		k := key{f.State, "thread", f.Rule}
		if f.MessageKey != "" {
			k.kind = "message"
		}
		n[k]++
	}
	out := make([]ReasonCount, 0, len(n))
	for k, c := range n {
		out = append(out, ReasonCount{State: k.state, Kind: k.kind, Rule: k.rule, Count: c})
	}
	sort.Slice(out, func(a, b int) bool {
		x, y := out[a], out[b]
		if x.Count != y.Count {
			return x.Count > y.Count
		}
		if x.State != y.State {
			return x.State < y.State
		}
		if x.Kind != y.Kind {
			return x.Kind > y.Kind // thread before message
		}
		return x.Rule < y.Rule
	})
	return out
}

// WriteJSON writes v as indented JSON to path atomically: a temp file in
// the same folder, synced, then renamed over path.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return WriteFileAtomic(path, append(b, '\n'))
}

// WriteFileAtomic writes data to path so that readers see the old file or
// the new one, never a torn write, even if the process dies.
func WriteFileAtomic(path string, data []byte) error {
	return WriteAtomic(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// FileMode is the mode of every file WriteAtomic writes (reports,
// summaries, metrics, failures files): readable by everyone, whatever the
// umask, so that a collector running as another user can read them.
const FileMode = 0o644

// WriteAtomic streams what write produces into a temp file in path's
// folder, syncs it and renames it over path.
func WriteAtomic(path string, write func(io.Writer) error) error {
	f, err := CreateAtomic(path)
	if err != nil {
		return err
	}
	defer f.Abort() // no-op after Commit
	if err := write(f); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Commit()
}

// AtomicFile is a file being written in place of path: a temp file in
// path's folder that Commit syncs and renames over path. Until then
// readers see the old file, or none.
type AtomicFile struct {
	path string
	f    *os.File
	bw   *bufio.Writer
	done bool
}

// CreateAtomic starts writing path (its folder is created if needed).
// Call Commit to put it in place, or Abort to drop it.
func CreateAtomic(path string) (*AtomicFile, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create folder for %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return &AtomicFile{path: path, f: f, bw: bufio.NewWriter(f)}, nil
}

// Write writes to the temp file.
func (a *AtomicFile) Write(p []byte) (int, error) { return a.bw.Write(p) }

// Abort removes the temp file, unless Commit put it in place.
func (a *AtomicFile) Abort() {
	if a.done {
		return
	}
	a.done = true
	a.f.Close()
	os.Remove(a.f.Name())
}

// Commit flushes and syncs the temp file and renames it over path.
func (a *AtomicFile) Commit() error {
	if a.done {
		return fmt.Errorf("write %s: already committed or aborted", a.path)
	}
	fail := func(what string, err error) error {
		a.Abort()
		return fmt.Errorf("%s %s: %w", what, a.path, err)
	}
	if err := a.bw.Flush(); err != nil {
		return fail("write", err)
	}
	// CreateTemp makes the file private (0600); reports, summaries and
	// metrics are read by others (node_exporter's textfile collector runs
	// as its own user). Only the checkpoint stays private.
	if err := a.f.Chmod(FileMode); err != nil {
		return fail("write", err)
	}
	if err := a.f.Sync(); err != nil {
		return fail("sync", err)
	}
	if err := a.f.Close(); err != nil {
		return fail("write", err)
	}
	if err := os.Rename(a.f.Name(), a.path); err != nil {
		return fail("write", err)
	}
	a.done = true
	if d, err := os.Open(filepath.Dir(a.path)); err == nil {
		_ = d.Sync() // make the rename durable; not fatal where unsupported
		d.Close()
	}
	return nil
}

// Failure is one line of `failures --json` and of failures.jsonl
// (contract §10).
type Failure struct {
	ThreadKey  string `json:"thread_key"`
	MessageKey string `json:"message_key,omitempty"`
	TicketID   *int64 `json:"ticket_id"`
	State      string `json:"state"`
	Rule       string `json:"rule"`
	Reason     string `json:"reason"`
	HTTPStatus int    `json:"http_status,omitempty"`
	RequestID  string `json:"request_id,omitempty"`
	Source     string `json:"source"`
}
