package pipeline

import (
	"context"
	"sync"
)

// ticketLocks serializes writes per ticket: Zendesk refuses concurrent
// changes of one resource (409), and a thread's events must land in order.
type ticketLocks struct {
	mu    sync.Mutex
	locks map[int64]*ticketLock
}

type ticketLock struct {
	ch   chan struct{} // a one-slot semaphore, so waiting can be cancelled
	refs int
}

func (l *ticketLocks) lock(ctx context.Context, id int64) (unlock func(), err error) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = make(map[int64]*ticketLock)
	}
	tl := l.locks[id]
	if tl == nil {
		tl = &ticketLock{ch: make(chan struct{}, 1)}
		l.locks[id] = tl
	}
	tl.refs++
	l.mu.Unlock()

	release := func() {
		l.mu.Lock()
		tl.refs--
		if tl.refs == 0 {
			delete(l.locks, id)
		}
		l.mu.Unlock()
	}
	select {
	case tl.ch <- struct{}{}:
		return func() { <-tl.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}
