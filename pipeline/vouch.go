package pipeline

import (
	"context"
	"sync"

	"github.com/threadlift/threadlift/checkpoint"
)

// DefaultVouchProbes is how many tickets an import looks up before its
// first write to them when its checkpoint trusts itself (or is new),
// to find out whether it is older than what Zendesk holds.
const DefaultVouchProbes = 20

// vouchMode says which tickets are looked up before their first write.
type vouchMode int

const (
	// probing: the checkpoint trusts itself, or is new. The first tickets
	// written are looked up; if one holds a threadlift key the checkpoint
	// did not know, it is stale (lookupAll), else it is trusted (trustAll).
	probing vouchMode = iota
	trustAll
	lookupAll
)

// vouch decides, for each ticket, whether it must be looked up on
// Zendesk before this run's first write to it (contract §6: a checkpoint
// that cannot vouch for a ticket never causes a duplicate). It is safe for
// concurrent use.
type vouch struct {
	mu      sync.Mutex
	mode    vouchMode
	probes  int // probes not started yet
	left    int // probes still to finish before the checkpoint is trusted
	vouched map[int64]bool
	listed  map[int64]bool // tickets listed in this run
	changed chan struct{}  // closed and replaced whenever the mode may have changed
}

func newVouch(run *checkpoint.Run, probes int) *vouch {
	v := &vouch{listed: map[int64]bool{}, changed: make(chan struct{}), vouched: run.Vouched}
	switch {
	case !run.Trusted:
		v.mode = lookupAll
	case probes <= 0:
		v.mode = trustAll
	default:
		v.mode, v.probes, v.left = probing, probes, probes
	}
	return v
}

// need reports whether ticket must be looked up before this run's first
// write to it, and whether that lookup is a probe (report its outcome
// with looked, or abandon it). While the probes decide, it may wait for
// them.
func (v *vouch) need(ctx context.Context, ticket int64) (need, probe bool, err error) {
	for {
		v.mu.Lock()
		if v.listed[ticket] || v.vouched[ticket] {
			v.mu.Unlock()
			return false, false, nil
		}
		switch v.mode {
		case trustAll:
			v.mu.Unlock()
			return false, false, nil
		case lookupAll:
			v.mu.Unlock()
			return true, false, nil
		}
		if v.probes > 0 {
			v.probes--
			v.mu.Unlock()
			return true, true, nil
		}
		ch := v.changed
		v.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false, false, ctx.Err()
		}
	}
}

// looked records that ticket was listed (and recorded) in this run;
// unknown says whether it held keys the checkpoint did not know. It
// returns true when that made the checkpoint lose trust just now.
func (v *vouch) looked(ticket int64, probe, unknown bool) (distrust bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.listed[ticket] = true
	if unknown && v.mode != lookupAll {
		v.mode = lookupAll
		v.broadcast()
		return true
	}
	if probe && v.mode == probing {
		if v.left--; v.left <= 0 {
			v.mode = trustAll
			v.broadcast()
		}
	}
	return false
}

// wasListed reports whether ticket was listed in this run.
func (v *vouch) wasListed(ticket int64) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.listed[ticket]
}

// abandon gives back a probe that could not be made (the listing
// failed): another ticket takes it.
func (v *vouch) abandon() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.mode == probing {
		v.probes++
		v.broadcast()
	}
}

func (v *vouch) broadcast() {
	close(v.changed)
	v.changed = make(chan struct{})
}
