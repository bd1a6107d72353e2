package zendesktest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"time"
)

// Fault is a misbehaviour injected into one request.
type Fault int

// The faults. Those that answer instantly do so before the request reaches
// any state, except CommitThenDrop and SlowAfterCommit which apply the
// request first.
const (
	// FaultNone serves the request normally.
	FaultNone Fault = iota
	// Fault500 answers 500 with a JSON error body; nothing is applied.
	Fault500
	// Fault502 answers 502 with an HTML body, as a load balancer would;
	// nothing is applied.
	Fault502
	// Fault503RetryAfter answers 503 text/plain with Retry-After in
	// seconds (Faults.RetryAfter); nothing is applied.
	Fault503RetryAfter
	// Fault429 answers 429 text/plain with Retry-After in seconds.
	Fault429
	// Fault429Date answers 429 with Retry-After as an HTTP date.
	Fault429Date
	// Fault429NoRetryAfter answers 429 without Retry-After.
	Fault429NoRetryAfter
	// FaultResetBeforeCommit closes the connection without applying the
	// request or writing a response.
	FaultResetBeforeCommit
	// FaultCommitThenDrop applies the request (the write lands), then
	// closes the connection without a response.
	FaultCommitThenDrop
	// FaultSlowAfterCommit applies the request, then waits Faults.Slow
	// (past the client's timeout) before answering, or until the client
	// goes away.
	FaultSlowAfterCommit
	// FaultLatency waits Faults.Latency, then serves normally.
	FaultLatency
	// Fault301 answers 301 Moved Permanently with Location at
	// Faults.RedirectTo (same path), as Zendesk does for a renamed or
	// mistyped subdomain; nothing is applied.
	Fault301
	// Fault307 answers 307 Temporary Redirect, likewise.
	Fault307
	// Fault403 answers 403 Forbidden with Zendesk's JSON body, as for a
	// user without permission or an account without side conversations;
	// nothing is applied.
	Fault403
	// FaultHugeBody applies the request, then answers with its real status
	// and JSON, with a field of Faults.HugeBody bytes streamed first inside
	// the object (so a client that decodes it whole holds it all).
	// HugeBodySent tells how much of it was written before the client
	// stopped reading.
	FaultHugeBody
	// FaultLateCommit answers nothing and holds the request until the
	// client goes away (its timeout), then applies it Faults.Late later:
	// a request Zendesk queued and carried out after the client gave up.
	// LateCommits counts those applied.
	FaultLateCommit
)

var faultNames = [...]string{"none", "500", "502", "503-retry-after", "429", "429-date",
	"429-no-retry-after", "reset-before-commit", "commit-then-drop", "slow-after-commit", "latency",
	"301", "307", "403", "huge-body", "late-commit"}

func (f Fault) String() string {
	if f >= 0 && int(f) < len(faultNames) {
		return faultNames[f]
	}
	return "fault(?)"
}

// Faults sets the probability (0..1) of each fault per request, drawn from
// a RNG seeded with Seed (Config.Seed when 0), and the parameters used by
// faults from the probabilities and from the hook alike.
type Faults struct {
	P500               float64
	P502               float64
	P503RetryAfter     float64
	P429               float64
	P429Date           float64
	P429NoRetryAfter   float64
	PResetBeforeCommit float64
	PCommitThenDrop    float64
	PSlowAfterCommit   float64
	PLatency           float64
	Seed               int64
	// WritesOnly limits random faults to POST and PUT requests.
	WritesOnly bool

	// RetryAfter is the wait announced by the 429 and 503 faults; 0 = 1s.
	RetryAfter time.Duration
	// Slow is how long FaultSlowAfterCommit holds the answer; 0 = 35s.
	Slow time.Duration
	// Latency is FaultLatency's delay; 0 = 2s.
	Latency time.Duration
	// RedirectTo is the scheme://host the redirect faults point at;
	// "" = https://moved.zendesk.invalid.
	RedirectTo string
	// HugeBody is the size of FaultHugeBody's padding; 0 = 64 MiB.
	HugeBody int64
	// Late is how long after the client went away FaultLateCommit applies
	// the request; 0 = 100ms.
	Late time.Duration
}

func (fs Faults) withDefaults() Faults {
	if fs.RetryAfter <= 0 {
		fs.RetryAfter = time.Second
	}
	if fs.Slow <= 0 {
		fs.Slow = 35 * time.Second
	}
	if fs.Latency <= 0 {
		fs.Latency = 2 * time.Second
	}
	if fs.RedirectTo == "" {
		fs.RedirectTo = "https://moved.zendesk.invalid"
	}
	if fs.HugeBody <= 0 {
		fs.HugeBody = 64 << 20
	}
	if fs.Late <= 0 {
		fs.Late = 100 * time.Millisecond
	}
	return fs
}

// serveHugeBody applies r and answers with its real status and JSON, a
// padding field of fs.HugeBody bytes streamed first inside the object.
// It counts the padding bytes the client took.
func (f *Fake) serveHugeBody(w http.ResponseWriter, r *http.Request, fs Faults) {
	rec := httptest.NewRecorder()
	f.mux.ServeHTTP(rec, r)
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Del("Content-Length")
	w.WriteHeader(rec.Code)
	rest := bytes.TrimPrefix(bytes.TrimSpace(rec.Body.Bytes()), []byte("{"))
	if _, err := io.WriteString(w, `{"padding":"`); err != nil {
		return
	}
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	for left := fs.HugeBody; left > 0; {
		n := min(left, int64(len(chunk)))
		if _, err := w.Write(chunk[:n]); err != nil {
			return
		}
		f.hugeSent.Add(n)
		left -= n
	}
	sep := []byte(`",`)
	if len(bytes.TrimSpace(rest)) == 0 || bytes.Equal(bytes.TrimSpace(rest), []byte("}")) {
		sep = []byte(`"`)
	}
	w.Write(append(sep, rest...))
}

// HugeBodySent returns how many padding bytes FaultHugeBody answers have
// written so far: a client that caps bodies stops them early.
func (f *Fake) HugeBodySent() int64 { return f.hugeSent.Load() }

// pick draws a fault for r. Called with f.mu held.
func (f *Fake) pickLocked(r *http.Request) Fault {
	fs := f.faults
	if fs.WritesOnly && r.Method != http.MethodPost && r.Method != http.MethodPut {
		return FaultNone
	}
	probs := []struct {
		p float64
		f Fault
	}{
		{fs.P500, Fault500}, {fs.P502, Fault502}, {fs.P503RetryAfter, Fault503RetryAfter},
		{fs.P429, Fault429}, {fs.P429Date, Fault429Date}, {fs.P429NoRetryAfter, Fault429NoRetryAfter},
		{fs.PResetBeforeCommit, FaultResetBeforeCommit}, {fs.PCommitThenDrop, FaultCommitThenDrop},
		{fs.PSlowAfterCommit, FaultSlowAfterCommit}, {fs.PLatency, FaultLatency},
	}
	total := 0.0
	for _, p := range probs {
		if p.p > 0 {
			total += p.p
		}
	}
	if total <= 0 {
		return FaultNone
	}
	x := f.rng.Float64()
	acc := 0.0
	for _, p := range probs {
		if p.p <= 0 {
			continue
		}
		acc += p.p
		if x < acc {
			return p.f
		}
	}
	return FaultNone
}

// serveLateCommit holds r without an answer until the client goes away
// (at most lateCommitHold), then applies it fs.Late later, answering no
// one: the write lands after the client stopped waiting for it.
func (f *Fake) serveLateCommit(r *http.Request, fs Faults) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // the request never fully arrived: nothing to apply
	}
	hold := time.NewTimer(lateCommitHold)
	defer hold.Stop()
	select {
	case <-r.Context().Done():
	case <-hold.C:
	}
	time.Sleep(fs.Late)
	late := r.Clone(context.WithoutCancel(r.Context()))
	late.Body = io.NopCloser(bytes.NewReader(body))
	f.mux.ServeHTTP(httptest.NewRecorder(), late)
	f.mu.Lock()
	f.lateCommits.Add(1)
	if f.lateNote != nil {
		close(f.lateNote)
		f.lateNote = nil
	}
	f.mu.Unlock()
}

// lateCommitHold bounds how long FaultLateCommit waits for the client to
// go away.
const lateCommitHold = 5 * time.Minute

// LateCommits returns how many requests FaultLateCommit applied.
func (f *Fake) LateCommits() int64 { return f.lateCommits.Load() }

// AwaitLateCommits waits until FaultLateCommit has applied n requests, or
// ctx ends.
func (f *Fake) AwaitLateCommits(ctx context.Context, n int64) error {
	for {
		f.mu.Lock()
		if f.lateCommits.Load() >= n {
			f.mu.Unlock()
			return nil
		}
		if f.lateNote == nil {
			f.lateNote = make(chan struct{})
		}
		note := f.lateNote
		f.mu.Unlock()
		select {
		case <-note:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
