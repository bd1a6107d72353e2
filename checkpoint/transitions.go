package checkpoint

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// transitions lists, for each state, the states a thread may move to it
// from, across all methods (see doc.go for which method does what).
// Staying in the same state is listed where a method allows it.
var transitions = map[State][]State{
	Pending:  {Pending, Rejected, Failed},                          // Register (re-validated), Retry, MarkNotSent
	InFlight: {Pending, InFlight, Created, Done},                   // MarkInFlight
	Created:  {InFlight, Created, Pending, Failed, Rejected, Done}, // MarkCreated, MarkMessagesImported, Retry, MarkNotSent; Register/Join (new messages of a done thread)
	Done:     {Created, Done},                                      // MarkDone, Complete, MarkJoinedDone
	Failed:   {Pending, InFlight, Created, Failed},                 // MarkFailed
	Rejected: {Pending, Rejected, InFlight, Failed},                // Register, MarkRejected
}

// Allowed reports whether any method may move a thread from one state to
// another. A thread never moves out of done except to in_flight (new
// messages appended), and never loses its side conversation id.
func Allowed(from, to State) bool { return slices.Contains(transitions[to], from) }

// threadRow is what the write methods read before deciding.
type threadRow struct {
	id         int64
	state      State
	scID       string
	unresolved bool
}

func (s *Store) getThread(ctx context.Context, tx *wtx, key string) (threadRow, error) {
	var r threadRow
	if key == "" {
		return r, fmt.Errorf("%w: empty thread key", ErrTransition)
	}
	err := tx.QueryRowContext(ctx, sqlThreadByKey, key).Scan(&r.id, &r.state, &r.scID, &r.unresolved)
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("%w: thread %q is not registered", ErrTransition, key)
	}
	return r, err
}

func need(r threadRow, key string, to State, from ...State) error {
	if !slices.Contains(from, r.state) {
		return fmt.Errorf("%w: thread %q is %s, cannot become %s", ErrTransition, key, r.state, to)
	}
	return nil
}

// Register records the threads seen in this run; see RegisterBatch.
func (s *Store) Register(ctx context.Context, t Thread, msgs []Message) error {
	return s.RegisterBatch(ctx, []Registration{{Thread: t, Messages: msgs}})
}

// RegisterBatch records threads seen in this run, all in one transaction
// (use it for the planner's bulk registration: one commit for 100k threads
// instead of 100k).
//
// A new thread is stored as pending, or rejected when Thread.State says
// so (with Rule, Reason, Excerpt). Only "", pending and rejected are
// accepted in Thread.State. A record that could not be read at all is
// registered with Key "" and a non-empty Source (its identity), rejected.
//
// An existing thread gets its Subject, Source and EventsTotal updated; its
// state only moves between pending and rejected (it was validated again);
// in_flight, created, done and failed threads keep their state. Its
// TicketID is updated only while nothing was ever sent for it: once a
// request may have landed, the stored ticket is the one to use.
//
// Messages are inserted as given (State "", pending, rejected or
// duplicate). An existing message takes the given state, seq and source,
// except that an imported message stays imported.
func (s *Store) RegisterBatch(ctx context.Context, regs []Registration) error {
	op := "register threads"
	if len(regs) == 1 {
		op = fmt.Sprintf("register thread %q", regs[0].Thread.Key)
	}
	for _, r := range regs {
		if err := checkRegistration(r); err != nil {
			return s.writeError(op, err)
		}
	}
	return s.tx(ctx, op, func(ctx context.Context, tx *wtx) error {
		return s.register(ctx, tx, regs)
	})
}

// existing is a thread row as Register needs it.
type existing struct {
	threadRow
	ticket int64
}

// bulkThreshold is the batch size above which Register reads every
// thread in one scan instead of one lookup per thread.
const bulkThreshold = 2000

func (s *Store) register(ctx context.Context, tx *wtx, regs []Registration) error {
	// modernc.org/sqlite compiles a statement at every execution, so the
	// statement count is what costs: threads are looked up in one scan for
	// big batches, and messages go in multi-row upserts.
	g, err := newRegistrar(ctx, tx, s.stamp(), len(regs) > bulkThreshold)
	if err != nil {
		return err
	}
	for _, r := range regs {
		id, err := g.thread(r)
		if err != nil {
			return err
		}
		for _, m := range r.Messages {
			if err := g.msgs.add(id, m); err != nil {
				return err
			}
		}
	}
	if err := g.msgs.flush(); err != nil {
		return err
	}
	for _, id := range g.grown {
		// A done thread with a message to send is not done: a crash before
		// it is sent must not leave it looking complete.
		if _, err := tx.ExecContext(ctx, `UPDATE threads SET state = 'created', updated_at = ?2 WHERE id = ?1 AND state = 'done'
			AND EXISTS (SELECT 1 FROM messages WHERE thread_id = ?1 AND state = 'pending')`, id, g.now); err != nil {
			return err
		}
	}
	return nil
}

// registrar is one register call: its statements, and for a big batch
// every known thread, read in one scan.
type registrar struct {
	ctx                                  context.Context
	tx                                   *wtx
	now                                  string
	known                                map[string]existing // nil: look each thread up
	byKey, insThread, updThread, updKeep *sql.Stmt
	msgs                                 *messageWriter
	grown                                []int64 // done threads given messages: done only while none is pending
}

func newRegistrar(ctx context.Context, tx *wtx, now string, bulk bool) (*registrar, error) {
	g := &registrar{ctx: ctx, tx: tx, now: now, msgs: &messageWriter{ctx: ctx, tx: tx, now: now}}
	if bulk {
		if err := g.readKnown(); err != nil {
			return nil, err
		}
	}
	for _, st := range []struct {
		stmt **sql.Stmt
		q    string
	}{{&g.byKey, sqlRegisterByKey}, {&g.insThread, sqlInsertThread}, {&g.updThread, sqlRevalidateThread}, {&g.updKeep, sqlKeepThread}} {
		var err error
		if *st.stmt, err = tx.Stmt(ctx, st.q); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// readKnown reads every thread with a key.
func (g *registrar) readKnown() error {
	g.known = map[string]existing{}
	rows, err := g.tx.QueryContext(g.ctx, "SELECT id, key, state, side_conversation_id, unresolved, ticket_id FROM threads WHERE key <> ''")
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var e existing
		var key string
		if err := rows.Scan(&e.id, &key, &e.state, &e.scID, &e.unresolved, &e.ticket); err != nil {
			return err
		}
		g.known[key] = e
	}
	return rows.Err()
}

// lookup finds the row of t: by key, or by source for a record without
// key.
func (g *registrar) lookup(t Thread) (existing, bool, error) {
	if g.known != nil && t.Key != "" {
		e, ok := g.known[t.Key]
		return e, ok, nil
	}
	var e existing
	var row *sql.Row
	if t.Key == "" {
		row = g.tx.QueryRowContext(g.ctx, sqlRegisterBad, t.Source)
	} else {
		row = g.byKey.QueryRowContext(g.ctx, t.Key)
	}
	err := row.Scan(&e.id, &e.state, &e.scID, &e.unresolved, &e.ticket)
	if errors.Is(err, sql.ErrNoRows) {
		return e, false, nil
	}
	return e, err == nil, err
}

// remember updates the known row of key, when the rows are known.
func (g *registrar) remember(key string, e existing) {
	if g.known != nil && key != "" {
		g.known[key] = e
	}
}

// thread inserts or updates the row of r's thread and returns its id.
func (g *registrar) thread(r Registration) (int64, error) {
	t := r.Thread
	want := t.State
	if want == "" {
		want = Pending
	}
	rule, reason, excerpt := t.Rule, t.Reason, t.Excerpt
	if want == Pending {
		rule, reason, excerpt = "", "", ""
	}
	e, found, err := g.lookup(t)
	if err != nil {
		return 0, err
	}
	switch {
	case !found:
		res, err := g.insThread.ExecContext(g.ctx, t.Key, t.TicketID, want, t.EventsTotal, t.Subject, t.Source, rule, reason, excerpt, g.now, g.now)
		if err != nil {
			return 0, err
		}
		if e.id, err = res.LastInsertId(); err != nil {
			return 0, err
		}
		g.remember(t.Key, existing{threadRow: threadRow{id: e.id, state: want}, ticket: t.TicketID})
	case e.state == Pending || e.state == Rejected:
		ticket := t.TicketID
		if e.scID != "" || e.unresolved {
			ticket = e.ticket // a request may have landed on that ticket
		}
		if _, err := g.updThread.ExecContext(g.ctx, ticket, want, t.EventsTotal, t.Subject, t.Source, rule, reason, excerpt, g.now, e.id); err != nil {
			return 0, err
		}
		e.state, e.ticket = want, ticket
		g.remember(t.Key, e)
	default: // in_flight, created, done, failed: never moved backwards here
		if _, err := g.updKeep.ExecContext(g.ctx, t.EventsTotal, t.Subject, t.Source, g.now, e.id); err != nil {
			return 0, err
		}
		if e.state == Done && len(r.Messages) > 0 {
			g.grown = append(g.grown, e.id)
		}
	}
	return e.id, nil
}

// messageWriter upserts messages, messagesPerFlush rows per statement.
type messageWriter struct {
	ctx       context.Context
	tx        *wtx
	now       string
	args      []any
	n         int
	bulk, one *sql.Stmt // prepared on first use; the transaction closes them
}

const (
	messageCols      = 8
	messagesPerFlush = 500 // 4000 parameters, far below SQLite's 32766
)

// messageUpsert returns the upsert of rows messages. An imported message
// stays imported; a key repeated within one statement is applied in
// order, like separate statements.
func messageUpsert(rows int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO messages (thread_id, key, seq, state, source, rule, reason, updated_at) VALUES ")
	for i := range rows {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("(?,?,?,?,?,?,?,?)")
	}
	b.WriteString(` ON CONFLICT (thread_id, key) DO UPDATE SET
		seq = excluded.seq,
		source = excluded.source,
		state = CASE WHEN messages.state = 'imported' THEN 'imported' ELSE excluded.state END,
		rule = CASE WHEN messages.state = 'imported' THEN messages.rule ELSE excluded.rule END,
		reason = CASE WHEN messages.state = 'imported' THEN messages.reason ELSE excluded.reason END,
		updated_at = excluded.updated_at`)
	return b.String()
}

func (w *messageWriter) add(threadID int64, m Message) error {
	st := m.State
	if st == "" {
		st = MessagePending
	}
	rule, reason := m.Rule, m.Reason
	if st == MessagePending {
		rule, reason = "", ""
	}
	w.args = append(w.args, threadID, m.Key, m.Seq, st, m.Source, rule, reason, w.now)
	w.n++
	if w.n == messagesPerFlush {
		return w.flush()
	}
	return nil
}

func (w *messageWriter) flush() error {
	defer func() { w.args, w.n = w.args[:0], 0 }()
	var err error
	if w.n == messagesPerFlush {
		if w.bulk == nil {
			if w.bulk, err = w.tx.Stmt(w.ctx, messageUpsert(messagesPerFlush)); err != nil {
				return err
			}
		}
		_, err = w.bulk.ExecContext(w.ctx, w.args...)
		return err
	}
	if w.n > 0 && w.one == nil {
		if w.one, err = w.tx.Stmt(w.ctx, sqlUpsertMessage); err != nil {
			return err
		}
	}
	for i := range w.n {
		if _, err := w.one.ExecContext(w.ctx, w.args[i*messageCols:(i+1)*messageCols]...); err != nil {
			return err
		}
	}
	return nil
}

func checkRegistration(r Registration) error {
	t := r.Thread
	switch t.State {
	case "", Pending, Rejected:
	default:
		return fmt.Errorf("%w: thread %q: Register takes state pending or rejected, not %q", ErrTransition, t.Key, t.State)
	}
	if t.Key == "" && (t.Source == "" || t.State != Rejected) {
		return fmt.Errorf("%w: a thread without key must be rejected and have a source", ErrTransition)
	}
	for _, m := range r.Messages {
		if m.Key == "" {
			return fmt.Errorf("%w: thread %q: message without key", ErrTransition, t.Key)
		}
		if m.ThreadKey != "" && m.ThreadKey != t.Key {
			return fmt.Errorf("%w: message %q belongs to thread %q, registered with thread %q", ErrTransition, m.Key, m.ThreadKey, t.Key)
		}
		switch m.State {
		case "", MessagePending, MessageRejected, MessageDuplicate:
		default:
			return fmt.Errorf("%w: thread %q: message %q: Register takes message state pending, rejected or duplicate, not %q",
				ErrTransition, t.Key, m.Key, m.State)
		}
	}
	return nil
}

// MarkInFlight is the write-ahead record, made BEFORE a request is sent:
// it logs the attempt (kind, message keys, time), marks the thread
// in_flight and unresolved. kind is KindImport (the thread must have no
// side conversation yet) or KindEventsImport (it must have one). Every
// message key must be a pending message of the thread: a message already
// imported is never sent again. A previous attempt still open is marked
// superseded: check Thread.Unresolved and reconcile before calling this.
func (s *Store) MarkInFlight(ctx context.Context, key string, kind string, messageKeys []string) error {
	return s.tx(ctx, fmt.Sprintf("mark thread %q in flight", key), func(ctx context.Context, tx *wtx) error {
		return s.markInFlight(ctx, tx, key, kind, messageKeys)
	})
}

// Completion is the answer to a thread's last request, as
// MarkCreatedDone records it.
type Completion struct {
	Key                string
	SideConversationID string
	MessageKeys        []string
	// KeysHash, when set, records the thread's message keys as complete
	// (see KeysHash): a later run whose archive holds the same keys skips
	// the thread without loading it.
	KeysHash string
}

// RegisterInFlight is Register followed by MarkInFlight, in one
// transaction: one durable write instead of two before a thread's first
// request. The registration is applied first, so messages it adds can be
// sent; if MarkInFlight refuses, nothing of either is written.
//
// If prev is not nil, MarkCreatedDone of prev comes first in the same
// transaction: a worker's previous thread's last answer then needs no
// commit of its own. Should any part be refused, nothing is written.
func (s *Store) RegisterInFlight(ctx context.Context, prev *Completion, r Registration, kind string, messageKeys []string) error {
	op := fmt.Sprintf("register thread %q and mark it in flight", r.Thread.Key)
	if prev != nil {
		op = fmt.Sprintf("mark thread %q created and done, register thread %q and mark it in flight", prev.Key, r.Thread.Key)
	}
	if err := checkRegistration(r); err != nil {
		return s.writeError(op, err)
	}
	fast := firstImport(r, kind, messageKeys)
	return s.tx(ctx, op, func(ctx context.Context, tx *wtx) error {
		if prev != nil {
			if err := s.markCreated(ctx, tx, prev.Key, prev.SideConversationID, prev.MessageKeys, Done, prev.KeysHash); err != nil {
				return err
			}
		}
		if fast {
			if done, err := s.insertInFlight(ctx, tx, r, kind, messageKeys); done || err != nil {
				return err
			}
		}
		if err := s.register(ctx, tx, []Registration{r}); err != nil {
			return err
		}
		return s.markInFlight(ctx, tx, r.Thread.Key, kind, messageKeys)
	})
}

// firstImport reports whether RegisterInFlight of r may take the short
// way for a thread the store does not know yet: r registers a pending
// thread, and the request is an import of distinct pending messages of
// r. What MarkInFlight would check then holds by construction.
func firstImport(r Registration, kind string, messageKeys []string) bool {
	if r.Thread.Key == "" || (r.Thread.State != "" && r.Thread.State != Pending) || kind != KindImport || len(messageKeys) == 0 {
		return false
	}
	pending := make(map[string]bool, len(r.Messages))
	for _, m := range r.Messages {
		pending[m.Key] = m.State == "" || m.State == MessagePending
	}
	for _, mk := range messageKeys {
		if !pending[mk] {
			return false
		}
		pending[mk] = false // a key twice in one request: the long way refuses it
	}
	return true
}

// insertInFlight inserts a new thread directly in flight with its
// messages and the attempt: what register and markInFlight write for a
// thread the store does not know, in three statements instead of nine.
// It returns false, having written nothing, when the thread exists.
func (s *Store) insertInFlight(ctx context.Context, tx *wtx, r Registration, kind string, messageKeys []string) (bool, error) {
	t := r.Thread
	now := s.stamp()
	res, err := tx.ExecContext(ctx, sqlInsertInFlight, t.Key, t.TicketID, t.EventsTotal, t.Subject, t.Source, now, now)
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err // known already: ON CONFLICT DO NOTHING
	}
	id, err := res.LastInsertId()
	if err != nil {
		return false, err
	}
	msgs := &messageWriter{ctx: ctx, tx: tx, now: now}
	for _, m := range r.Messages {
		if err := msgs.add(id, m); err != nil {
			return false, err
		}
	}
	if err := msgs.flush(); err != nil {
		return false, err
	}
	keysJSON, err := json.Marshal(messageKeys)
	if err != nil {
		return false, err
	}
	res, err = tx.ExecContext(ctx, sqlInsertAttempt, id, kind, string(keysJSON), now)
	if err != nil {
		return false, err
	}
	attempt, err := res.LastInsertId()
	if err != nil {
		return false, err
	}
	return true, s.noteOwned(ctx, tx, id, attempt)
}

func (s *Store) markInFlight(ctx context.Context, tx *wtx, key string, kind string, messageKeys []string) error {
	r, err := s.getThread(ctx, tx, key)
	if err != nil {
		return err
	}
	if err := need(r, key, InFlight, Pending, InFlight, Created, Done); err != nil {
		return err
	}
	if err := s.checkOwner(ctx, tx, key, r); err != nil {
		return err
	}
	switch kind {
	case KindImport:
		if r.scID != "" {
			return fmt.Errorf("%w: thread %q already has side conversation %s: import would create a second one", ErrTransition, key, r.scID)
		}
	case KindEventsImport:
		if r.scID == "" {
			return fmt.Errorf("%w: thread %q has no side conversation to append events to", ErrTransition, key)
		}
	default:
		return fmt.Errorf("%w: unknown request kind %q", ErrTransition, kind)
	}
	if len(messageKeys) == 0 {
		return fmt.Errorf("%w: thread %q: a request without messages", ErrTransition, key)
	}
	state, err := tx.Stmt(ctx, sqlMessageState)
	if err != nil {
		return err
	}
	seen := make(map[string]bool, len(messageKeys))
	for _, mk := range messageKeys {
		if seen[mk] {
			return fmt.Errorf("%w: thread %q: message %q twice in one request", ErrTransition, key, mk)
		}
		seen[mk] = true
		var st string
		err := state.QueryRowContext(ctx, r.id, mk).Scan(&st)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: thread %q: message %q is not registered", ErrTransition, key, mk)
		}
		if err != nil {
			return err
		}
		if st != MessagePending {
			return fmt.Errorf("%w: thread %q: message %q is %s, only pending messages are sent", ErrTransition, key, mk, st)
		}
	}
	keysJSON, err := json.Marshal(messageKeys)
	if err != nil {
		return err
	}
	now := s.stamp()
	if _, err := tx.ExecContext(ctx, sqlSupersedeAttempt, now, r.id); err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, sqlInsertAttempt, r.id, kind, string(keysJSON), now)
	if err != nil {
		return err
	}
	attempt, err := res.LastInsertId()
	if err != nil {
		return err
	}
	if _, err = tx.ExecContext(ctx, sqlSetInFlight, now, r.id); err != nil {
		return err
	}
	return s.noteOwned(ctx, tx, r.id, attempt)
}

// importMessages marks keys imported in side conversation scID (inserting
// keys the store did not know: the server has them). The caller recounts
// events_done.
func (s *Store) importMessages(ctx context.Context, tx *wtx, r threadRow, key, scID string, keys []string, now string) error {
	if scID == "" {
		return fmt.Errorf("%w: thread %q: empty side conversation id", ErrTransition, key)
	}
	if r.scID != "" && r.scID != scID {
		return fmt.Errorf("%w: thread %q belongs to side conversation %s, not %s", ErrTransition, key, r.scID, scID)
	}
	stmt, err := tx.Stmt(ctx, sqlImportMessage)
	if err != nil {
		return err
	}
	for _, mk := range keys {
		if _, err := stmt.ExecContext(ctx, r.id, mk, scID, now); err != nil {
			return err
		}
	}
	return nil
}

// MarkCreated records a 2xx answer to the request MarkInFlight announced:
// the side conversation id, those messages imported, EventsDone = the
// number of imported messages, state created, the attempt ok.
func (s *Store) MarkCreated(ctx context.Context, key, sideConversationID string, messageKeys []string) error {
	return s.tx(ctx, fmt.Sprintf("mark thread %q created", key), func(ctx context.Context, tx *wtx) error {
		return s.markCreated(ctx, tx, key, sideConversationID, messageKeys, Created, "")
	})
}

// MarkCreatedDone is MarkCreated followed by MarkDone, in one
// transaction: for the answer to a thread's last request, after which
// every event is imported.
func (s *Store) MarkCreatedDone(ctx context.Context, key, sideConversationID string, messageKeys []string) error {
	return s.tx(ctx, fmt.Sprintf("mark thread %q created and done", key), func(ctx context.Context, tx *wtx) error {
		return s.markCreated(ctx, tx, key, sideConversationID, messageKeys, Done, "")
	})
}

// markCreated is MarkCreated, leaving the thread in state to (Created, or
// Done for MarkCreatedDone), recording keysHash when not "".
func (s *Store) markCreated(ctx context.Context, tx *wtx, key, scID string, keys []string, to State, keysHash string) error {
	r, err := s.getThread(ctx, tx, key)
	if err != nil {
		return err
	}
	if err := need(r, key, to, InFlight); err != nil {
		return err
	}
	now := s.stamp()
	if err := s.importMessages(ctx, tx, r, key, scID, keys, now); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, sqlAttemptOK, now, r.id); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, sqlSetCreated, scID, r.id, to, now, keysHash)
	return err
}

// MarkMessagesImported records messages found on the ticket by a
// reconciliation lookup (they landed although no answer was recorded). It
// closes open attempts as reconciled and clears Unresolved; a thread that
// was pending, in_flight, failed or rejected becomes created.
func (s *Store) MarkMessagesImported(ctx context.Context, key, sideConversationID string, messageKeys []string) error {
	return s.tx(ctx, fmt.Sprintf("mark messages of thread %q imported", key), func(ctx context.Context, tx *wtx) error {
		r, err := s.getThread(ctx, tx, key)
		if err != nil {
			return err
		}
		now := s.stamp()
		if err := s.importMessages(ctx, tx, r, key, sideConversationID, messageKeys, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, sqlCountImported, sideConversationID, r.id, now); err != nil {
			return err
		}
		if err := reconcileAttempts(ctx, tx, r.id, now); err != nil {
			return err
		}
		state := r.state
		if state != Created && state != Done {
			state = Created
		}
		_, err = tx.ExecContext(ctx, `UPDATE threads SET state = ?, unresolved = 0,
			rule = CASE WHEN ? THEN '' ELSE rule END, reason = CASE WHEN ? THEN '' ELSE reason END,
			updated_at = ? WHERE id = ?`, state, state != r.state, state != r.state, now, r.id)
		return err
	})
}

// MarkNotSent records that a reconciliation lookup found nothing of the
// open attempt on the ticket: the attempt is closed as reconciled,
// Unresolved cleared, and an in_flight thread goes back to pending (or
// created when it already has a side conversation).
func (s *Store) MarkNotSent(ctx context.Context, key string) error {
	return s.tx(ctx, fmt.Sprintf("mark thread %q not sent", key), func(ctx context.Context, tx *wtx) error {
		r, err := s.getThread(ctx, tx, key)
		if err != nil {
			return err
		}
		now := s.stamp()
		if err := reconcileAttempts(ctx, tx, r.id, now); err != nil {
			return err
		}
		state := r.state
		if state == InFlight {
			state = Pending
			if r.scID != "" {
				state = Created
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE threads SET state = ?, unresolved = 0, updated_at = ? WHERE id = ?`, state, now, r.id)
		return err
	})
}

// MarkAnswered records the HTTP status of an answer to the thread's open
// attempt whose outcome it leaves unknown (a 500, 502 or 503): the
// attempt stays open, to be looked up on the ticket, but a later run then
// knows Zendesk had finished with the request and need not give it time
// to land first. A thread with no open attempt is left alone.
func (s *Store) MarkAnswered(ctx context.Context, key string, status int) error {
	return s.tx(ctx, fmt.Sprintf("record the answer to thread %q's request", key), func(ctx context.Context, tx *wtx) error {
		r, err := s.getThread(ctx, tx, key)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE attempts SET http_status = ? WHERE thread_id = ? AND outcome = ''`, status, r.id)
		return err
	})
}

// MarkDone marks a created thread done (every event imported).
func (s *Store) MarkDone(ctx context.Context, key string) error {
	return s.tx(ctx, fmt.Sprintf("mark thread %q done", key), func(ctx context.Context, tx *wtx) error {
		return s.markDone(ctx, tx, key, "")
	})
}

// markDone is MarkDone, recording keysHash when not "".
func (s *Store) markDone(ctx context.Context, tx *wtx, key, keysHash string) error {
	r, err := s.getThread(ctx, tx, key)
	if err != nil {
		return err
	}
	if err := need(r, key, Done, Created, Done); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, sqlSetDone, s.stamp(), r.id, keysHash)
	return err
}

// definite reports whether an HTTP status proves the request was not
// processed (a 4xx other than 408). Anything else — no answer (0), 408,
// 5xx — may hide a request that landed, so the attempt stays unresolved.
func definite(status int) bool { return status >= 400 && status < 500 && status != 408 }

// fail records a failure or rejection.
func (s *Store) fail(ctx context.Context, key string, to State, f Failure, from ...State) error {
	return s.tx(ctx, fmt.Sprintf("mark thread %q %s", key, to), func(ctx context.Context, tx *wtx) error {
		r, err := s.getThread(ctx, tx, key)
		if err != nil {
			return err
		}
		if err := need(r, key, to, from...); err != nil {
			return err
		}
		now := s.stamp()
		unresolved := r.unresolved
		if definite(f.HTTPStatus) {
			unresolved = false
			if _, err := tx.ExecContext(ctx, `UPDATE attempts SET outcome = 'failed', http_status = ?, finished_at = ?
				WHERE thread_id = ? AND outcome = ''`, f.HTTPStatus, now, r.id); err != nil {
				return err
			}
		} else if _, err := tx.ExecContext(ctx, `UPDATE attempts SET http_status = ?, finished_at = ?
				WHERE thread_id = ? AND outcome = ''`, f.HTTPStatus, now, r.id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE threads SET state = ?, rule = ?, reason = ?, http_status = ?, request_id = ?,
			excerpt = ?, unresolved = ?, updated_at = ? WHERE id = ?`,
			to, f.Rule, f.Reason, f.HTTPStatus, f.RequestID, f.Excerpt, unresolved, now, r.id)
		return err
	})
}

// MarkFailed marks a thread failed (pending, in_flight, created or
// failed before). If HTTPStatus does not prove the request was refused
// (0, 408, 5xx), the thread stays Unresolved.
func (s *Store) MarkFailed(ctx context.Context, key string, f Failure) error {
	return s.fail(ctx, key, Failed, f, Pending, InFlight, Created, Failed)
}

// MarkRejected marks a thread rejected (pending, in_flight, failed or
// rejected before): it will not be sent until a later run validates it
// again. Same Unresolved rule as MarkFailed.
func (s *Store) MarkRejected(ctx context.Context, key string, f Failure) error {
	return s.fail(ctx, key, Rejected, f, Pending, InFlight, Failed, Rejected)
}

// Requeue re-queues one failed thread, as Retry does for all: for a
// failure the next import takes up by itself (the source changed while
// importing). A thread that is not failed is left as it is.
func (s *Store) Requeue(ctx context.Context, key string) error {
	return s.tx(ctx, fmt.Sprintf("re-queue thread %q", key), func(ctx context.Context, tx *wtx) error {
		_, err := tx.ExecContext(ctx, `UPDATE threads SET
			state = CASE WHEN side_conversation_id = '' THEN 'pending' ELSE 'created' END,
			attempts = 0, rule = '', reason = '', http_status = 0, request_id = '', excerpt = '', updated_at = ?
			WHERE key = CAST(? AS TEXT) AND key <> '' AND state = 'failed'`, s.stamp(), key)
		return err
	})
}

// Retry re-queues every failed thread for the next import: it becomes
// pending, or created when its side conversation already exists (its
// remaining messages are then appended), with its attempt count and
// failure reset. Unresolved is kept. It returns how many were re-queued.
func (s *Store) Retry(ctx context.Context) (int, error) {
	var n int64
	err := s.tx(ctx, "retry failed threads", func(ctx context.Context, tx *wtx) error {
		res, err := tx.ExecContext(ctx, `UPDATE threads SET
			state = CASE WHEN side_conversation_id = '' THEN 'pending' ELSE 'created' END,
			attempts = 0, rule = '', reason = '', http_status = 0, request_id = '', excerpt = '', updated_at = ?
			WHERE state = 'failed'`, s.stamp())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}
