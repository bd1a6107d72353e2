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

// ref returns ticket id's lock, counted as used until release.
func (l *ticketLocks) ref(id int64) (tl *ticketLock, release func()) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = make(map[int64]*ticketLock)
	}
	tl = l.locks[id]
	if tl == nil {
		tl = &ticketLock{ch: make(chan struct{}, 1)}
		l.locks[id] = tl
	}
	tl.refs++
	l.mu.Unlock()

	return tl, func() {
		l.mu.Lock()
		tl.refs--
		if tl.refs == 0 {
			delete(l.locks, id)
		}
		l.mu.Unlock()
	}
}

func (l *ticketLocks) lock(ctx context.Context, id int64) (unlock func(), err error) {
	tl, release := l.ref(id)
	select {
	case tl.ch <- struct{}{}:
		return func() { <-tl.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// tryLock takes the lock of ticket id if it is free, without waiting.
func (l *ticketLocks) tryLock(id int64) (unlock func(), ok bool) {
	tl, release := l.ref(id)
	select {
	case tl.ch <- struct{}{}:
		return func() { <-tl.ch; release() }, true
	default:
		release()
		return nil, false
	}
}
