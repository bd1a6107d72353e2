package pipeline

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/rs/zerolog"

	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/mapping/thread"
	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/formats"
	"github.com/threadlift/threadlift/zendesk"
)

// DefaultSettle is Options.Settle's default: how long a write that got no
// answer is given to land before its ticket is looked up.
const DefaultSettle = 10 * time.Second

// ErrInterrupted is returned when a run stopped early because its context
// was cancelled (SIGINT/SIGTERM). The checkpoint is consistent; the next
// import resumes.
var ErrInterrupted = errors.New("pipeline: interrupted")

// ErrFatal wraps errors that stop the whole run: authentication refused,
// a redirect (zendesk.url is wrong), a 403 on a write (the account may not
// import), the checkpoint refusing a write.
var ErrFatal = errors.New("pipeline: fatal")

// ErrPaused is returned when Zendesk asked to pause longer than the
// client's maximum (a *zendesk.PauseError): the run stopped taking
// threads, the checkpoint is consistent, and the next import, after the
// time the error gives, resumes.
var ErrPaused = errors.New("pipeline: paused by Zendesk")

// API is the part of the Zendesk client a run uses. *zendesk.Client
// implements it; tests may wrap it.
type API interface {
	Import(ctx context.Context, ticketID int64, req *zendesk.ImportRequest) (*zendesk.ImportResponse, error)
	ImportEvents(ctx context.Context, ticketID int64, sideConversationID string, req *zendesk.EventsImportRequest) (*zendesk.ImportResponse, error)
	ListSideConversations(ctx context.Context, ticketID int64) ([]zendesk.SideConversation, []zendesk.Event, error)
	UploadAttachment(ctx context.Context, fileName, contentType string, body io.Reader) (*zendesk.AttachmentInfo, error)
}

var _ API = (*zendesk.Client)(nil)

// Progress receives progress as a run goes; every method may be called
// from several goroutines. A nil Progress is fine.
type Progress interface {
	// ReadBytes is called while sources are scanned.
	ReadBytes(n int64)
	// Threads is called once threading is done with the number of threads.
	Threads(total int)
	// ThreadDone is called when a thread is finished, whatever the outcome.
	ThreadDone()
}

// SkipProgress is a Progress that also tells the threads an import had
// nothing to do for (complete already, or failed and waiting for
// `threadlift retry`): ThreadSkipped is then called for them instead of
// ThreadDone, so that a rate measured from ThreadDone is the rate of the
// threads worked on, and --limit, which counts threads posted, bounds
// what is left after the skipped ones.
type SkipProgress interface {
	Progress
	ThreadSkipped()
}

// threadSkipped reports a thread skipped to p (see SkipProgress).
func threadSkipped(p Progress) {
	if sp, ok := p.(SkipProgress); ok {
		sp.ThreadSkipped()
		return
	}
	p.ThreadDone()
}

// Options configure a run. Zero values mean the contract's defaults.
type Options struct {
	Sources []Source
	// Formats opens each source by its Type; default: every format
	// threadlift reads (sources/formats).
	Formats   *sources.Registry
	Read      sources.Options
	Threading thread.Options
	Mapper    *mapping.Mapper

	Workers     int // default 8
	MaxAttempts int // per request, default 8
	// Limit stops after this many threads were posted: threads that sent
	// at least one request (0: no limit). Threads rejected, already
	// complete, or left to another shard do not count.
	Limit int
	// FullRead makes Import read every source in full, even when the
	// checkpoint's record of the last scan would let it read only what
	// was appended since (appended.go).
	FullRead bool
	// ReadChunk, when > 0, makes a full read of an import hold at most
	// this many messages at once: a bigger archive is read, threaded and
	// imported in chunks of that many (archive.ReadChunks), so that
	// memory stays bounded whatever its size. 0 reads it whole.
	ReadChunk int
	// Account is the Zendesk account (zendesk.url) the run writes to. The
	// checkpoint records it and refuses another (checkpoint.ErrOtherAccount);
	// "" skips that check.
	Account string
	// VouchProbes is how many of the first tickets written are looked up
	// before their first write when the checkpoint trusts itself or is
	// new, to find out whether it is older than what Zendesk holds
	// (default DefaultVouchProbes; see vouch).
	VouchProbes int
	// MaxDuration stops taking new threads once it has passed since the
	// start (0: no limit); requests in flight finish and the run ends
	// cleanly, for scheduled windows.
	MaxDuration time.Duration
	// StopTimeout is how long in-flight requests may go on after the run
	// is told to stop (contract §6: the request timeout).
	StopTimeout time.Duration
	// Settle is how long a write that got no answer — the client's timeout,
	// the connection lost after it was sent, a 504, or a run that died with
	// it in flight — is given to land before its ticket is looked up: Zendesk
	// may carry out a request after the client stopped waiting for it, and
	// a lookup made before would find nothing and send it again. Default
	// DefaultSettle; negative: no wait.
	Settle time.Duration
	// ReuseUploadsFor is how long an attachment upload recorded in the
	// checkpoint is re-used by a resume; default 30m.
	ReuseUploadsFor time.Duration
	// BackoffBase and BackoffMax bound the full-jitter backoff between
	// retries; defaults 1s and 60s.
	BackoffBase, BackoffMax time.Duration

	// RequestsPerMinute and WritesPer10Minutes are the configured rate
	// limits, used by Validate to predict how long the import will take.
	RequestsPerMinute, WritesPer10Minutes int

	Logger   zerolog.Logger
	Progress Progress
	Now      func() time.Time

	// Scale-out (shard.go, metrics.go).

	// Shard restricts Import to the threads this shard owns; the others
	// are counted as OtherShards and sent nothing. The zero value imports
	// every thread.
	Shard Shard
	// MetricsFile, when set, is rewritten by Import with Prometheus text
	// metrics every MetricsInterval (default 30s) and at the end.
	MetricsFile     string
	MetricsInterval time.Duration
	// Metrics, when set, is given the same snapshots (and writes them to
	// its own file, pushes them to a Pushgateway); its Finish adds the
	// process's exit code at the very end.
	Metrics *MetricsPublisher
}

func (o *Options) defaults() {
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.VouchProbes <= 0 {
		o.VouchProbes = DefaultVouchProbes
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 30 * time.Second
	}
	switch {
	case o.Settle == 0:
		o.Settle = DefaultSettle
	case o.Settle < 0:
		o.Settle = 0
	}
	if o.ReuseUploadsFor <= 0 {
		o.ReuseUploadsFor = 30 * time.Minute
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = time.Second
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Formats == nil {
		o.Formats = formats.Registry()
	}
	if o.Mapper == nil {
		o.Mapper = mapping.New(mapping.Options{Now: o.Now})
	}
	if o.Progress == nil {
		o.Progress = nopProgress{}
	}
	if o.MetricsInterval <= 0 {
		o.MetricsInterval = DefaultMetricsInterval
	}
}

type nopProgress struct{}

func (nopProgress) ReadBytes(int64) {}
func (nopProgress) Threads(int)     {}
func (nopProgress) ThreadDone()     {}
