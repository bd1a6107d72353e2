package zendesk

import (
	"context"
	"sync"
	"time"
)

// Gate is a shared pause that every request of a Client waits on. A
// Retry-After from the server closes it for all callers at once, not just
// for the one that got the 429. The zero value is an open gate; a Gate is
// safe for concurrent use.
type Gate struct {
	mu    sync.Mutex
	until time.Time
	// The pauses so far, for Paused: the current (or last) window
	// [from, to), and the sum of the windows before it.
	from, to time.Time
	paused   time.Duration
}

// Wait blocks until the gate is open or ctx is done. It re-checks after
// waking, so a window extended meanwhile is honoured.
func (g *Gate) Wait(ctx context.Context) error {
	for {
		d := time.Until(g.Until())
		if d <= 0 {
			return ctx.Err()
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// CloseFor closes the gate for d from now. It never shortens a window that
// is already closed for longer.
func (g *Gate) CloseFor(d time.Duration) {
	if d <= 0 {
		return
	}
	g.CloseUntil(time.Now().Add(d))
}

// CloseUntil closes the gate until t. It never shortens a window that is
// already closed past t.
func (g *Gate) CloseUntil(t time.Time) {
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if !t.After(g.until) {
		return
	}
	g.until = t
	switch {
	case !t.After(now): // over already: no pause
	case g.to.After(now): // closed now: the pause grows
		g.to = t
	default: // open: a new pause
		g.paused += g.to.Sub(g.from)
		g.from, g.to = now, t
	}
}

// Paused reports how long the gate has been closed so far, every pause
// summed up to now (a pause still going counts until now).
func (g *Gate) Paused() time.Duration {
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	d := g.paused
	end := g.to
	if now.Before(end) {
		end = now
	}
	if end.After(g.from) {
		d += end.Sub(g.from)
	}
	return d
}

// Until reports when the gate opens; a time in the past means it is open.
func (g *Gate) Until() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.until
}
