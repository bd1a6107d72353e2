package pipeline

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/threadlift/threadlift/zendesk"
)

// requestStats counts a run's requests for its summary.
type requestStats struct {
	requests    atomic.Int64 // attempts sent
	retries     atomic.Int64 // attempts that were retried
	rateLimited atomic.Int64 // 429s received
}

// retrier is the one retry loop of a run, in the spirit of rclone's
// lib/pacer: every request that may be retried, read or write, goes
// through call. The zendesk package classifies (Retryable,
// OutcomeUnknown, AnswerPending, Misconfigured); call keeps the attempt
// budget, backs off with full jitter, and counts. A Retry-After is not
// waited for here: the client has closed its Gate for every worker
// already, and the next attempt waits on it.
type retrier struct {
	maxAttempts int           // per request (Options.MaxAttempts)
	base, max   time.Duration // full-jitter backoff bounds (Options.BackoffBase, BackoffMax)
	stats       *requestStats
	log         zerolog.Logger
}

func newRetrier(o *Options, stats *requestStats) *retrier {
	return &retrier{maxAttempts: o.MaxAttempts, base: o.BackoffBase, max: o.BackoffMax, stats: stats, log: o.Logger}
}

// try describes one request for call.
type try struct {
	// write makes an answer that leaves the outcome unknown end call
	// (after the backoff), so that the caller looks the write up before
	// it is sent again.
	write bool
	// failed counts the request's failed attempts against the budget. A
	// write keeps it across calls: looking it up in between does not give
	// it new attempts. nil: a count of call's own.
	failed *int
	// before, if set, runs before each attempt (the attachments' uploads
	// and the write-ahead record of a write); its error ends call at once,
	// as a verdict with local set.
	before func(context.Context) error
	// threadKey and ticket go on the log line of a retry.
	threadKey string
	ticket    int64
}

// verdict is what call says of a request once it stops trying.
type verdict struct {
	err error // nil: the request succeeded
	// local: err is before's, not a request's.
	local bool
	// stopping: ctx ended, the run is stopping; what is in flight is left
	// to the next run.
	stopping bool
	// stop: err says nothing of this request but of every request:
	// Zendesk asked to pause longer than allowed (a *zendesk.PauseError),
	// or the account or zendesk.url is wrong (zendesk.Misconfigured). The
	// run must stop.
	stop bool
	// unknown (writes only): the write may have landed although it
	// failed (zendesk.OutcomeUnknown). settle: Zendesk may still be
	// carrying it out (zendesk.AnswerPending).
	unknown, settle bool
	// again (with unknown): the write may be sent again once a lookup
	// shows it did not land; the backoff has been waited.
	again bool
}

// call makes attempts of one request, fn, until one succeeds, an error
// is not worth another (zendesk.Retryable), the attempts run out, ctx
// ends, or a write's outcome is unknown.
func (r *retrier) call(ctx context.Context, t try, fn func(context.Context) error) verdict {
	failed := t.failed
	if failed == nil {
		failed = new(int)
	}
	for {
		if t.before != nil {
			if err := t.before(ctx); err != nil {
				return verdict{err: err, local: true}
			}
		}
		r.stats.requests.Add(1)
		err := fn(ctx)
		if err == nil {
			return verdict{}
		}
		*failed++
		if zendesk.IsStatus(err, http.StatusTooManyRequests) {
			r.stats.rateLimited.Add(1)
		}
		v := classify(err, t.write)
		if ctx.Err() != nil {
			v.stopping = true
			return v
		}
		retry, wait := zendesk.Retryable(err)
		if v.stop || !retry || *failed >= r.maxAttempts {
			return v
		}
		r.stats.retries.Add(1)
		r.logRetry(t, err, *failed)
		if wait == 0 {
			if err := sleep(ctx, backoff(*failed, r.base, r.max)); err != nil {
				return verdict{err: err, stopping: true}
			}
		}
		if v.unknown {
			v.again = true
			return v
		}
		if ctx.Err() != nil {
			return verdict{err: ctx.Err(), stopping: true}
		}
	}
}

func (r *retrier) logRetry(t try, err error, attempt int) {
	e := r.log.Debug().Err(err).Int("attempt", attempt)
	if t.threadKey != "" {
		e = e.Str("thread_key", t.threadKey)
	}
	if t.ticket != 0 {
		e = e.Int64("ticket_id", t.ticket)
	}
	e.Msg("retrying")
}

// classify is the verdict on a failed attempt's err.
func classify(err error, write bool) verdict {
	v := verdict{err: err}
	var pause *zendesk.PauseError
	_, wrong := zendesk.Misconfigured(err)
	v.stop = wrong || errors.As(err, &pause)
	if write && zendesk.OutcomeUnknown(err) {
		v.unknown, v.settle = true, zendesk.AnswerPending(err)
	}
	return v
}

// backoff returns a full-jitter exponential delay for the given attempt
// (1-based): uniform in [0, min(max, base·2^(attempt-1))].
func backoff(attempt int, base, max time.Duration) time.Duration {
	d := base
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	if d <= 0 {
		return 0
	}
	return rand.N(d + 1)
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
