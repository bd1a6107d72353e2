package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/threadlift/threadlift/checkpoint"
)

// ledger is how a worker records its threads in the checkpoint, in the
// import's terms: register, write ahead, record an answer or a failure,
// record what a ticket holds. Every error it returns is classified
// already: a checkpoint that refuses a write (or a read) stops the run,
// so the error wraps ErrFatal and is recorded as the run's (firstError).
//
// The ledger also holds the answer to its worker's last request, when
// that request completed a thread (hold), until the worker's next write:
// the answer is then recorded in the same transaction as the next
// thread's write-ahead record (checkpoint.Store.RegisterInFlight), one
// commit per thread instead of two; any other write records it first.
// Until then that thread is in flight and unresolved in the checkpoint,
// which is what a crash right after the response would leave anyway and
// what the next run reconciles. While it holds an answer, the ledger
// keeps the answer's ticket locked: no other worker may look that ticket
// up (and resolve the thread in flight from the listing) before the
// answer is recorded. BenchmarkNewThreadWrites measures what this saves
// on top of the store's group commit.
type ledger struct {
	store *checkpoint.Store
	fatal *firstError
	// imported is called once a thread's last answer is recorded.
	imported func()
	held     *heldAnswer
}

// heldAnswer is the answer a ledger holds, with its ticket's lock.
type heldAnswer struct {
	c      checkpoint.Completion
	ticket int64
	// unlock releases the ticket; nil once the lock went on to the
	// worker's next thread on the same ticket (takeLock).
	unlock func()
}

// firstError is the first error that must stop the run. It is safe for
// concurrent use.
type firstError struct {
	mu  sync.Mutex
	err error
}

// set records err unless an error was recorded before, and returns err.
func (f *firstError) set(err error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
	return err
}

func (f *firstError) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// refused is the error of a checkpoint that refused a read or a write:
// it stops the run.
func (l *ledger) refused(err error) error {
	return l.fatal.set(fmt.Errorf("%w: %w", ErrFatal, err))
}

// write records the held answer, then runs fn.
func (l *ledger) write(ctx context.Context, fn func(context.Context) error) error {
	if err := l.flush(ctx); err != nil {
		return err
	}
	if err := fn(ctx); err != nil {
		return l.refused(err)
	}
	return nil
}

// hold keeps c, the answer to the last request of a thread on ticket,
// with the ticket's lock (unlock), until the next write.
func (l *ledger) hold(c checkpoint.Completion, ticket int64, unlock func()) {
	l.held = &heldAnswer{c: c, ticket: ticket, unlock: unlock}
}

// takeLock passes the held answer's lock on to the worker's next thread
// when it is on the same ticket: the answer is then recorded with that
// thread's first write.
func (l *ledger) takeLock(ticket int64) (unlock func(), ok bool) {
	h := l.held
	if h == nil || h.unlock == nil || h.ticket != ticket {
		return nil, false
	}
	unlock, h.unlock = h.unlock, nil
	return unlock, true
}

// flush records the held answer, if any, and releases its ticket unless
// the lock went on (takeLock). It records even when the run is stopping:
// the server said yes.
func (l *ledger) flush(ctx context.Context) error {
	if l.held == nil {
		return nil
	}
	if err := l.store.Complete(context.WithoutCancel(ctx), l.held.c); err != nil {
		return l.refused(err)
	}
	l.recorded()
	return nil
}

// recorded is called once the held answer is in the checkpoint.
func (l *ledger) recorded() {
	if l.held.unlock != nil {
		l.held.unlock()
	}
	l.held = nil
	l.imported()
}

// release unlocks a thread's ticket (unlock), recording first the held
// answer whose lock the thread took over (takeLock), if it is still held.
func (l *ledger) release(ctx context.Context, unlock func()) error {
	var err error
	if l.held != nil && l.held.unlock == nil {
		err = l.flush(ctx)
	}
	unlock()
	return err
}

// thread reads the row of key.
func (l *ledger) thread(ctx context.Context, key string) (checkpoint.Thread, bool, error) {
	row, found, err := l.store.Thread(ctx, key)
	if err != nil {
		return row, false, l.refused(err)
	}
	return row, found, nil
}

// parts reads the thread row of key, the rows of ticket that hold any
// of its message keys, and those of other tickets (checkpoint.Store.Parts).
func (l *ledger) parts(ctx context.Context, ticket int64, key string, keys []string) (own *checkpoint.Part, parts, elsewhere []checkpoint.Part, err error) {
	own, parts, elsewhere, err = l.store.Parts(ctx, ticket, key, keys)
	if err != nil {
		return nil, nil, nil, l.refused(err)
	}
	return own, parts, elsewhere, nil
}

// lastAttempt reads the last request recorded for row key.
func (l *ledger) lastAttempt(ctx context.Context, key string) (checkpoint.Attempt, bool, error) {
	a, found, err := l.store.LastAttempt(ctx, key)
	if err != nil {
		return a, false, l.refused(err)
	}
	return a, found, nil
}

// uploads reads the attachment uploads recorded for row key.
func (l *ledger) uploads(ctx context.Context, key string) (map[string]map[int]checkpoint.Upload, error) {
	u, err := l.store.Uploads(ctx, key)
	if err != nil {
		return nil, l.refused(err)
	}
	return u, nil
}

// register registers a thread (checkpoint.Store.RegisterBatch).
func (l *ledger) register(ctx context.Context, reg checkpoint.Registration) error {
	return l.write(ctx, func(ctx context.Context) error {
		return l.store.RegisterBatch(ctx, []checkpoint.Registration{reg})
	})
}

// reject marks row key rejected.
func (l *ledger) reject(ctx context.Context, key string, f checkpoint.Failure) error {
	return l.write(ctx, func(ctx context.Context) error { return l.store.MarkRejected(ctx, key, f) })
}

// requeue makes a failed row key pending (or created) again.
func (l *ledger) requeue(ctx context.Context, key string) error {
	return l.write(ctx, func(ctx context.Context) error { return l.store.Requeue(ctx, key) })
}

// join records that the thread of reg sends its new messages to row into
// (checkpoint.Store.Join).
func (l *ledger) join(ctx context.Context, ticket int64, into string, reg checkpoint.Registration) error {
	return l.write(ctx, func(ctx context.Context) error { return l.store.Join(ctx, ticket, into, reg) })
}

// recordUpload records an attachment uploaded for row key.
func (l *ledger) recordUpload(ctx context.Context, key string, u checkpoint.Upload) error {
	return l.write(ctx, func(ctx context.Context) error { return l.store.RecordUpload(ctx, key, u) })
}

// writeAhead records, durably and before a request is sent, that row key
// is about to send the messages keys with a request of kind
// (checkpoint.Store.MarkInFlight). With reg, the thread is registered in
// the same write (checkpoint.Store.RegisterInFlight), which records the
// held answer too.
func (l *ledger) writeAhead(ctx context.Context, key, kind string, keys []string, reg *checkpoint.Registration) error {
	if reg == nil {
		return l.write(ctx, func(ctx context.Context) error { return l.store.MarkInFlight(ctx, key, kind, keys) })
	}
	var prev *checkpoint.Completion
	if l.held != nil {
		prev = &l.held.c
	}
	if err := l.store.RegisterInFlight(ctx, prev, *reg, kind, keys); err != nil {
		return l.refused(err)
	}
	if prev != nil {
		l.recorded()
	}
	return nil
}

// created records a 2xx to a request that was not a thread's last: its
// messages keys are imported in side conversation scID. It records even
// when the run is stopping: the server said yes.
func (l *ledger) created(ctx context.Context, key, scID string, keys []string) error {
	return l.write(context.WithoutCancel(ctx), func(ctx context.Context) error {
		return l.store.MarkCreated(ctx, key, scID, keys)
	})
}

// doneJoined records a 2xx to the last request of a thread whose
// messages go to another row, into: that row is done, then the thread's
// own row (th) is done joined to it. It records even when the run is
// stopping: the server said yes.
func (l *ledger) doneJoined(ctx context.Context, into, scID string, keys []string, th checkpoint.Thread, hash string) error {
	ctx = context.WithoutCancel(ctx)
	if err := l.complete(ctx, checkpoint.Completion{Key: into, SideConversationID: scID, MessageKeys: keys}); err != nil {
		return err
	}
	return l.joinedDone(ctx, th, into, hash)
}

// complete records c (checkpoint.Store.Complete).
func (l *ledger) complete(ctx context.Context, c checkpoint.Completion) error {
	return l.write(ctx, func(ctx context.Context) error { return l.store.Complete(ctx, c) })
}

// joinedDone records that thread th is complete in row into
// (checkpoint.Store.MarkJoinedDone).
func (l *ledger) joinedDone(ctx context.Context, th checkpoint.Thread, into, hash string) error {
	return l.write(ctx, func(ctx context.Context) error { return l.store.MarkJoinedDone(ctx, th, into, hash) })
}

// answered records the status of an answer that leaves the outcome of
// row key's request unknown (checkpoint.Store.MarkAnswered).
func (l *ledger) answered(ctx context.Context, key string, status int) error {
	return l.write(ctx, func(ctx context.Context) error { return l.store.MarkAnswered(ctx, key, status) })
}

// notSent records that row key's request was not carried out.
func (l *ledger) notSent(ctx context.Context, key string) error {
	return l.write(context.WithoutCancel(ctx), func(ctx context.Context) error { return l.store.MarkNotSent(ctx, key) })
}

// markFailed marks row key failed; a done row stays done (stayedDone):
// what it imported is complete, and the next run looks at it again,
// since its archive holds other keys now. It records even when the run
// is stopping.
func (l *ledger) markFailed(ctx context.Context, key string, f checkpoint.Failure) (stayedDone bool, err error) {
	ctx = context.WithoutCancel(ctx)
	if err := l.flush(ctx); err != nil {
		return false, err
	}
	err = l.store.MarkFailed(ctx, key, f)
	if errors.Is(err, checkpoint.ErrTransition) {
		if row, found, rerr := l.store.Thread(ctx, key); rerr == nil && found && row.State == checkpoint.Done {
			return true, nil
		}
	}
	if err != nil {
		return false, l.refused(err)
	}
	return false, nil
}

// recordTicket records what a listing of ticket shows
// (checkpoint.Store.RecordTicket).
func (l *ledger) recordTicket(ctx context.Context, ticket int64, convs []checkpoint.ListedConversation) (checkpoint.TicketRecord, error) {
	var rec checkpoint.TicketRecord
	err := l.write(ctx, func(ctx context.Context) (err error) {
		rec, err = l.store.RecordTicket(ctx, ticket, convs)
		return err
	})
	return rec, err
}

// distrust records that the checkpoint is older than what Zendesk holds.
func (l *ledger) distrust(ctx context.Context) error {
	return l.write(ctx, l.store.Distrust)
}
