package checkpoint

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Group commit.
//
// Every write method hands its transaction body to one committer
// goroutine and waits for the answer. The committer takes every write
// queued meanwhile and runs them in ONE transaction, each inside its own
// SAVEPOINT, then commits once: one fsync (synchronous=FULL) makes the
// whole batch durable, and only then is any caller answered. A write that
// fails is rolled back to its savepoint and gets its own error; the
// others in the batch are not affected. Callers thus see exactly what a
// transaction per write would give them, for one fsync per batch instead
// of one per write.
//
// A caller's context is watched until the write's turn in its batch: a
// write cancelled before then is not run. Once it has started, it runs to
// its end and the caller waits for the answer, so that an error always
// means "not written". The statements of a batch run without
// cancellation, since SQLite rolls back the whole transaction when an
// INSERT, UPDATE or DELETE inside it is interrupted, which would lose the
// other callers' writes too.

// maxBatch bounds the writes committed together, so that a caller never
// waits behind an unbounded batch.
const maxBatch = 256

// write is one write method's transaction body, queued for the committer.
type write struct {
	ctx  context.Context // the caller's: a write cancelled before its turn is not run
	op   string
	fn   func(context.Context, *wtx) error
	done chan error // buffered: the committer never blocks on an answer
}

// tx runs fn as one atomic write, durable when tx returns nil. fn must use
// the context and the transaction it is given.
func (s *Store) tx(ctx context.Context, op string, fn func(context.Context, *wtx) error) error {
	if s.readOnly {
		return fmt.Errorf("checkpoint: %s: opened read-only", op)
	}
	w := &write{ctx: ctx, op: op, fn: fn, done: make(chan error, 1)}
	select {
	case s.writes <- w:
	case <-ctx.Done():
		return fmt.Errorf("checkpoint: %s: %w", op, ctx.Err())
	case <-s.closing:
		return fmt.Errorf("checkpoint: %s: store closed", op)
	}
	return <-w.done
}

// stopCommitter makes the committer return once its batch is answered,
// and waits for it.
func (s *Store) stopCommitter() {
	s.stopOnce.Do(func() {
		if s.closing != nil {
			close(s.closing)
			<-s.committed
		}
	})
}

// commitLoop is the committer: it runs until Close.
func (s *Store) commitLoop() {
	defer close(s.committed)
	if s.checkDone != nil {
		// Nothing is written before the integrity check has passed.
		select {
		case <-s.checkDone:
		case <-s.closing:
			return
		}
	}
	batch := make([]*write, 0, maxBatch)
	for {
		select {
		case <-s.closing:
			return
		default:
		}
		select {
		case w := <-s.writes:
			batch = append(batch, w)
		case <-s.closing:
			return
		}
		// Every caller blocked in a send right now joins this batch.
		s.drain(&batch)
		s.commit(batch)
		clear(batch)
		batch = batch[:0]
	}
}

// drain adds the writes waiting to be handed over to batch.
func (s *Store) drain(batch *[]*write) {
	for len(*batch) < maxBatch {
		select {
		case w := <-s.writes:
			*batch = append(*batch, w)
		default:
			return
		}
	}
}

// commit runs batch in one transaction and answers every write.
func (s *Store) commit(batch []*write) {
	if s.checkErr != nil {
		for _, w := range batch {
			w.done <- s.checkErr
		}
		return
	}
	if !s.sealBroken {
		s.breakSeal()
		s.sealBroken = true
	}
	t := s.w
	defer t.closeTemp()
	bg := context.Background()
	if _, err := t.ExecContext(bg, sqlBegin); err != nil {
		for _, w := range batch {
			w.done <- s.wrap(w.op, err)
		}
		return
	}
	// A write alone needs no savepoint: when it fails, the transaction is
	// rolled back whole.
	savepoints := len(batch) > 1
	applied := make([]*write, 0, len(batch))
	var broken error // the transaction itself failed: nothing of it is kept
	for _, w := range batch {
		if broken != nil {
			w.done <- s.wrap(w.op, fmt.Errorf("transaction of the batch failed: %w", broken))
			continue
		}
		var ok bool
		if ok, broken = s.apply(t, w, savepoints); ok {
			applied = append(applied, w)
		}
	}
	if broken != nil || len(applied) == 0 {
		t.ExecContext(bg, sqlRollback) // nothing to keep; an error means nothing is left to undo
		for _, w := range applied {
			w.done <- s.wrap(w.op, fmt.Errorf("transaction of the batch failed: %w", broken))
		}
		return
	}
	_, err := t.ExecContext(bg, sqlCommit)
	if err != nil {
		t.ExecContext(bg, sqlRollback) // if the failed COMMIT left the transaction open
	}
	for _, w := range applied {
		if err != nil {
			w.done <- s.wrap(w.op, err)
		} else {
			w.done <- nil
		}
	}
}

// apply runs w in the batch's transaction t, in a savepoint of its own
// when the batch has others. ok says it was applied (its answer waits for
// the commit); otherwise it has been answered with its error. broken is
// the error that left the transaction itself unusable: none of the batch
// can be kept.
func (s *Store) apply(t *wtx, w *write, savepoints bool) (ok bool, broken error) {
	if err := w.ctx.Err(); err != nil {
		w.done <- fmt.Errorf("checkpoint: %s: %w", w.op, err)
		return false, nil
	}
	ctx := context.WithoutCancel(w.ctx)
	if savepoints {
		if _, err := t.ExecContext(ctx, sqlSavepoint); err != nil {
			w.done <- s.wrap(w.op, err)
			return false, err
		}
	}
	if err := runWrite(ctx, w, t); err != nil {
		if errors.Is(err, errWritePanicked) {
			// The transaction is in an unknown state: none of the batch is
			// kept.
			w.done <- s.wrap(w.op, err)
			return false, err
		}
		// Undo this write only. Should that fail, SQLite has rolled back
		// the whole transaction (an I/O error, a full disk).
		if savepoints {
			if _, rerr := t.ExecContext(ctx, sqlRollbackTo); rerr != nil {
				broken = rerr
			} else if _, rerr := t.ExecContext(ctx, sqlRelease); rerr != nil {
				broken = rerr
			}
		}
		w.done <- s.writeError(w.op, err)
		return false, broken
	}
	if savepoints {
		if _, err := t.ExecContext(ctx, sqlRelease); err != nil {
			w.done <- s.wrap(w.op, err)
			return false, err
		}
	}
	return true, nil
}

// errWritePanicked marks a write whose function panicked.
var errWritePanicked = errors.New("internal error: the write panicked")

// runWrite runs w's function, turning a panic into its error: the
// committer serves every worker, and a worker's bug must fail that
// worker's thread, not the process.
func runWrite(ctx context.Context, w *write, t *wtx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errWritePanicked, r)
		}
	}()
	return w.fn(ctx, t)
}

// writeError is the error a write method returns for what fn returned.
func (s *Store) writeError(op string, err error) error {
	if errors.Is(err, ErrTransition) {
		return &transitionError{op: op, msg: strings.TrimPrefix(err.Error(), ErrTransition.Error()+": ")}
	}
	return s.wrap(op, err)
}

// transitionError reads "checkpoint: OP: invalid state change: WHY" and
// wraps ErrTransition.
type transitionError struct{ op, msg string }

func (e *transitionError) Error() string {
	return "checkpoint: " + e.op + ": invalid state change: " + e.msg
}

func (e *transitionError) Unwrap() error { return ErrTransition }

// wtx is the transaction of a batch, on the committer's connection. Its
// methods run the statement prepared at Open when the query is one of
// hotStatements (modernc.org/sqlite compiles a statement at every
// execution otherwise, which costs more than running it), and compile it
// otherwise.
type wtx struct {
	conn  *sql.Conn
	stmts map[string]*sql.Stmt // prepared on conn
	temp  []*sql.Stmt          // prepared for this batch, closed at its end
}

// ExecContext is sql.Tx.ExecContext.
func (t *wtx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st, ok := t.stmts[q]; ok {
		return st.ExecContext(ctx, args...)
	}
	return t.conn.ExecContext(ctx, q, args...)
}

// QueryRowContext is sql.Tx.QueryRowContext.
func (t *wtx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if st, ok := t.stmts[q]; ok {
		return st.QueryRowContext(ctx, args...)
	}
	return t.conn.QueryRowContext(ctx, q, args...)
}

// QueryContext is sql.Tx.QueryContext.
func (t *wtx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st, ok := t.stmts[q]; ok {
		return st.QueryContext(ctx, args...)
	}
	return t.conn.QueryContext(ctx, q, args...)
}

// Stmt returns q prepared, for a statement run many times in one write.
func (t *wtx) Stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := t.stmts[q]; ok {
		return st, nil
	}
	st, err := t.conn.PrepareContext(ctx, q)
	if err == nil {
		t.temp = append(t.temp, st)
	}
	return st, err
}

func (t *wtx) closeTemp() {
	for _, st := range t.temp {
		st.Close()
	}
	clear(t.temp)
	t.temp = t.temp[:0]
}

// prepare takes the connection the committer writes on, for good, and
// prepares the statements of the write path on it. Reads go to the
// pool's other connection: in WAL mode they see every committed write and
// do not wait for the committer's fsync.
func (s *Store) prepare(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return s.wrapUnusable("prepare statements", err)
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA cache_size(-%d)", writeCacheKiB)); err != nil {
		conn.Close()
		return s.wrapUnusable("prepare statements", err)
	}
	qs := hotStatements()
	s.w = &wtx{conn: conn, stmts: make(map[string]*sql.Stmt, len(qs))}
	for _, q := range qs {
		st, err := conn.PrepareContext(ctx, q)
		if err != nil {
			return s.wrapUnusable("prepare statements", err)
		}
		s.w.stmts[q] = st
	}
	return nil
}

// closeWriter closes the statements and gives the committer's connection
// back to the pool.
func (s *Store) closeWriter() {
	if s.w == nil {
		return
	}
	for _, st := range s.w.stmts {
		st.Close()
	}
	s.w.conn.Close()
	s.w = nil
}
