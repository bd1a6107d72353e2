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

// Issue is one problem, as report.json lists it (contract §7).
type Issue struct {
	Severity   string `json:"severity"` // error | warning
	Rule       string `json:"rule"`
	ThreadKey  string `json:"thread_key"`
	MessageKey string `json:"message_key,omitempty"`
	Source     string `json:"source"`
	Message    string `json:"message"`
}

// SourceStats describes one source file.
type SourceStats struct {
	File     string `json:"file"`
	Format   string `json:"format"`
	Bytes    int64  `json:"bytes"`
	Messages int    `json:"messages"`
	Rejected int    `json:"rejected"`
}

// RuleCount is how often one rule was raised.
type RuleCount struct {
	Rule     string `json:"rule"`
	Severity string `json:"severity"`
	Count    int    `json:"count"`
}

// Requests counts the requests a run plans or made, by endpoint.
type Requests struct {
	Import       int `json:"import"`
	EventsImport int `json:"events_import"`
}

// Report is report.json. The first fields are the contract's; the rest
// are stable additions documented in the README.
type Report struct {
	Threads         int           `json:"threads"`
	Messages        int           `json:"messages"`
	ValidThreads    int           `json:"valid_threads"`
	InvalidThreads  int           `json:"invalid_threads"`
	RequestsPlanned int           `json:"requests_planned"`
	Issues          []Issue       `json:"issues"`
	ImportableMsgs  int           `json:"importable_messages"`
	RejectedMsgs    int           `json:"rejected_messages"`
	DuplicateMsgs   int           `json:"duplicate_messages"`
	Tickets         int           `json:"tickets"`
	RequestsByKind  Requests      `json:"requests_by_endpoint"`
	Sources         []SourceStats `json:"sources"`
	IssuesByRule    []RuleCount   `json:"issues_by_rule"`
	// PredictedSeconds is how long the import would take at the configured
	// rate limits, requests being the only cost that matters.
	PredictedSeconds float64 `json:"predicted_seconds"`
}

// Finish fills the derived fields (issue counts by rule) and sorts for
// stable output.
func (r *Report) Finish() {
	counts := map[[2]string]int{}
	for _, i := range r.Issues {
		counts[[2]string{i.Rule, i.Severity}]++
	}
	r.IssuesByRule = r.IssuesByRule[:0]
	for k, n := range counts {
		r.IssuesByRule = append(r.IssuesByRule, RuleCount{Rule: k[0], Severity: k[1], Count: n})
	}
	sort.Slice(r.IssuesByRule, func(a, b int) bool {
		x, y := r.IssuesByRule[a], r.IssuesByRule[b]
		if x.Count != y.Count {
			return x.Count > y.Count
		}
		return x.Rule+x.Severity < y.Rule+y.Severity
	})
	if r.Issues == nil {
		r.Issues = []Issue{}
	}
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
	StoppedByMaxDuration bool     `json:"stopped_by_max_duration,omitempty"`
	DryRun               bool     `json:"dry_run,omitempty"`
	RequestsByKind       Requests `json:"requests_by_endpoint"`
	StartedAt            string   `json:"started_at"`
	FinishedAt           string   `json:"finished_at"`
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

// WriteAtomic streams what write produces into a temp file in path's
// folder, syncs it and renames it over path.
func WriteAtomic(path string, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create folder for %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	bw := bufio.NewWriter(f)
	if err := write(bw); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
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
