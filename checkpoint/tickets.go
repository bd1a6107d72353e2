package checkpoint

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// What a ticket holds, per ticket: thread identity across joins and
// splits, and what Zendesk says a ticket holds.
//
// A message key is never posted twice to a ticket, whatever thread it
// ends up in (contract §6). The unit that proves it is the ticket: Parts
// finds the rows of a ticket that hold a thread's message keys, imported
// or not, whatever their thread key, so that a thread whose messages were
// imported as parts of other threads (a backfill that joins them, a
// thread that splits) sends only what no part holds. Join moves the
// thread's messages that were not sent to the part that receives them,
// and RecordTicket records what a listing of the ticket shows.

// KeysHash is the identity of a thread's message keys, in any order and
// with repeats: the first 128 bits of SHA-256 over the sorted distinct
// keys, in hex. A done thread records it; a thread whose archive holds
// the same keys later needs no work.
func KeysHash(keys []string) string {
	s := slices.Clone(keys)
	slices.Sort(s)
	s = slices.Compact(s)
	h := sha256.New()
	for _, k := range s {
		h.Write([]byte(k))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// The queries of Parts (read pool, prepared once) and of RecordTicket and
// Join (loadTicket).
const (
	sqlPartsOwn = `SELECT id, key, ticket_id, state, side_conversation_id, unresolved FROM threads
		WHERE key = CAST(? AS TEXT) AND key <> ''`
	// The thread's message keys come as one JSON array, so that the
	// statement is prepared once whatever their number. Messages are
	// found by key (messages_key), then their rows: CROSS JOIN keeps
	// SQLite from walking every thread of a ticket instead, which an
	// archive mapped to one ticket would make quadratic.
	sqlParts = `SELECT t.id, t.key, t.ticket_id, t.state, t.side_conversation_id, t.unresolved, m.key, m.state
		FROM messages m CROSS JOIN threads t ON t.id = m.thread_id
		WHERE m.key IN (SELECT value FROM json_each(?))`
	sqlPartCreated    = "SELECT max(id) FROM attempts WHERE thread_id = ? AND kind = 'import'"
	sqlTicketRows     = `SELECT id, key, state, side_conversation_id, unresolved FROM threads WHERE ticket_id = ? AND key <> ''`
	sqlTicketMessages = `SELECT m.thread_id, m.key, m.state FROM messages m JOIN threads t ON t.id = m.thread_id
		WHERE t.ticket_id = ? AND t.key <> ''`
)

// Part is a thread row of a ticket that holds some of the message keys
// Parts was asked about.
type Part struct {
	ID                 int64
	Key                string
	TicketID           int64
	State              State
	SideConversationID string
	Unresolved         bool
	// Created orders the parts that have a side conversation by when it
	// was created: the id of the import attempt that created it (attempt
	// ids grow with time). 0 when the checkpoint did not make it (it was
	// found on the ticket, made by a run the checkpoint does not remember,
	// most likely a later one): such parts sort after the others.
	Created int64
	// Messages maps each asked key the row holds to its message state.
	Messages map[string]string
}

// Parts returns the thread row of key (nil when there is none) and the
// rows of ticket that hold any of messageKeys (the row of key among them
// when it is on ticket and holds one), earliest side conversation first:
// rows with a side conversation by Created (those found on the ticket
// last), then by id; then the rows without one, by id. Elsewhere are the
// rows of other tickets that hold any of messageKeys, in no order: a
// thread joined from parts imported to other tickets.
func (s *Store) Parts(ctx context.Context, ticket int64, key string, messageKeys []string) (own *Part, parts, elsewhere []Part, err error) {
	op := fmt.Sprintf("look up the parts of thread %q on ticket %d", key, ticket)
	if own, err = s.ownPart(ctx, key); err != nil {
		return nil, nil, nil, s.wrap(op, err)
	}
	if len(messageKeys) == 0 {
		return own, nil, nil, nil
	}
	all, err := s.partsHolding(ctx, messageKeys)
	if err != nil {
		return nil, nil, nil, s.wrap(op, err)
	}
	for _, p := range all {
		if p.TicketID == ticket {
			parts = append(parts, p)
		} else {
			elsewhere = append(elsewhere, p)
		}
	}
	if err := s.orderParts(ctx, parts); err != nil {
		return nil, nil, nil, s.wrap(op, err)
	}
	if own != nil {
		for _, p := range parts {
			if p.ID == own.ID {
				own.Messages, own.Created = p.Messages, p.Created
			}
		}
	}
	return own, parts, elsewhere, nil
}

// ownPart reads the row of key; nil when there is none.
func (s *Store) ownPart(ctx context.Context, key string) (*Part, error) {
	if key == "" {
		return nil, nil
	}
	p := Part{Messages: map[string]string{}}
	err := s.readRow(ctx, sqlPartsOwn, key).
		Scan(&p.ID, &p.Key, &p.TicketID, &p.State, &p.SideConversationID, &p.Unresolved)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return &p, nil
}

// partsHolding reads the rows that hold any of messageKeys, each with
// the keys it holds, in no order.
func (s *Store) partsHolding(ctx context.Context, messageKeys []string) ([]Part, error) {
	keys, err := json.Marshal(messageKeys)
	if err != nil {
		return nil, err
	}
	rows, err := s.readQuery(ctx, sqlParts, string(keys))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var parts []Part
	byID := map[int64]int{}
	for rows.Next() {
		var p Part
		var mk, ms string
		if err := rows.Scan(&p.ID, &p.Key, &p.TicketID, &p.State, &p.SideConversationID, &p.Unresolved, &mk, &ms); err != nil {
			return nil, err
		}
		i, seen := byID[p.ID]
		if !seen {
			p.Messages = map[string]string{}
			parts = append(parts, p)
			i = len(parts) - 1
			byID[p.ID] = i
		}
		parts[i].Messages[mk] = ms
	}
	return parts, rows.Err()
}

// orderParts sets Created of the parts with a side conversation when
// there is more than one, and sorts the parts (see Parts).
func (s *Store) orderParts(ctx context.Context, parts []Part) error {
	withSC := 0
	for _, p := range parts {
		if p.SideConversationID != "" {
			withSC++
		}
	}
	if withSC > 1 {
		for i := range parts {
			if parts[i].SideConversationID == "" {
				continue
			}
			var created sql.NullInt64
			if err := s.readRow(ctx, sqlPartCreated, parts[i].ID).Scan(&created); err != nil {
				return err
			}
			parts[i].Created = created.Int64
		}
	}
	slices.SortFunc(parts, comparePart)
	return nil
}

// comparePart orders parts as Parts returns them.
func comparePart(a, b Part) int {
	if (a.SideConversationID == "") != (b.SideConversationID == "") {
		if a.SideConversationID != "" {
			return -1
		}
		return 1
	}
	if a.Created != b.Created {
		switch {
		case a.Created == 0:
			return 1
		case b.Created == 0:
			return -1
		}
		return cmp.Compare(a.Created, b.Created)
	}
	return cmp.Compare(a.ID, b.ID)
}

// readStmt returns q prepared on the read pool (once per store).
func (s *Store) readStmt(ctx context.Context, q string) (*sql.Stmt, error) {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	if st, ok := s.reads[q]; ok {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if s.reads == nil {
		s.reads = map[string]*sql.Stmt{}
	}
	s.reads[q] = st
	return st, nil
}

func (s *Store) readRow(ctx context.Context, q string, args ...any) rowScanner {
	st, err := s.readStmt(ctx, q)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(ctx, args...)
}

func (s *Store) readQuery(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := s.readStmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

type rowScanner interface{ Scan(...any) error }

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// closeReads closes the prepared read statements.
func (s *Store) closeReads() {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	for _, st := range s.reads {
		st.Close()
	}
	s.reads = nil
}

// ListedConversation is one side conversation of a ticket as a listing
// shows it: its id, its threadlift thread key ("" when it has none) and
// the threadlift message keys of its events.
type ListedConversation struct {
	ID          string
	ThreadKey   string
	MessageKeys []string
}

// TicketRecord says what RecordTicket found.
type TicketRecord struct {
	// Unknown describes (at most 10 of) the keys the ticket held that the
	// checkpoint did not know: a side conversation or message it had not
	// recorded, other than the outcome of a request left unresolved. Any
	// means the checkpoint was stale for this ticket.
	Unknown []string
	// UnknownCount counts them all.
	UnknownCount int
}

// foreignKey is the key of the row that holds a side conversation found
// on a ticket whose thread key belongs to a row of another ticket (the
// thread's mapping changed after a run the checkpoint lost): thread keys
// are unique, and what the ticket holds must still be recorded.
func foreignKey(key string, ticket int64) string {
	return fmt.Sprintf("%s\x00ticket %d", key, ticket)
}

// RecordTicket records what a listing of ticket shows (convs: every side
// conversation with its thread key and message keys), which Zendesk
// holds whatever the checkpoint says: each side conversation is recorded
// under the row of its thread key (a row is created for a key the
// checkpoint did not know), each message key it holds as imported there
// (moved from another row of the ticket where it was not imported), and
// every row of the ticket left unresolved is resolved: open attempts
// closed as reconciled, what landed imported, the rest not sent. The
// ticket is then vouched for (see BeginRun).
//
// The caller must hold the ticket: no write of its may be in flight.
func (s *Store) RecordTicket(ctx context.Context, ticket int64, convs []ListedConversation) (TicketRecord, error) {
	var rec TicketRecord
	s.mu.Lock()
	gen := s.run
	s.mu.Unlock()
	err := s.tx(ctx, fmt.Sprintf("record what ticket %d holds", ticket), func(ctx context.Context, tx *wtx) error {
		t, err := loadTicket(ctx, tx, ticket)
		if err != nil {
			return err
		}
		r := &ticketRecorder{ctx: ctx, tx: tx, ticket: ticket, t: t, now: s.stamp(), touched: map[int64]bool{}}
		for _, c := range convs {
			if c.ThreadKey == "" || c.ID == "" {
				continue // not ours (an agent's side conversation)
			}
			if err := r.conversation(c); err != nil {
				return err
			}
		}
		if err := r.resolve(); err != nil {
			return err
		}
		rec = r.rec
		return vouchTicket(ctx, tx, ticket, gen, r.now)
	})
	return rec, err
}

// ticketRecorder is one RecordTicket transaction.
type ticketRecorder struct {
	ctx     context.Context
	tx      *wtx
	ticket  int64
	t       *ticketView
	now     string
	touched map[int64]bool // rows whose messages or attempts changed: settled at the end
	rec     TicketRecord
}

// unknown notes a key the ticket holds that the checkpoint did not know.
func (r *ticketRecorder) unknown(format string, args ...any) {
	r.rec.UnknownCount++
	if len(r.rec.Unknown) < 10 {
		r.rec.Unknown = append(r.rec.Unknown, fmt.Sprintf(format, args...))
	}
}

// conversation records one listed side conversation of ours.
func (r *ticketRecorder) conversation(c ListedConversation) error {
	row, err := r.row(c)
	if err != nil {
		return err
	}
	switch {
	case row.scID == "":
		if !row.unresolved {
			r.unknown("side conversation %s of thread %q", c.ID, c.ThreadKey)
		}
		if _, err := r.tx.ExecContext(r.ctx, "UPDATE threads SET side_conversation_id = ?, updated_at = ? WHERE id = ?", c.ID, r.now, row.id); err != nil {
			return err
		}
		row.scID = c.ID
	case row.scID != c.ID:
		r.unknown("a second side conversation %s of thread %q (the first is %s)", c.ID, c.ThreadKey, row.scID)
	}
	r.touched[row.id] = true
	for _, mk := range c.MessageKeys {
		if mk == "" || r.t.imported(mk) {
			continue
		}
		if err := r.message(row, c.ID, mk); err != nil {
			return err
		}
	}
	return nil
}

// row is the row that records side conversation c: the row of its thread
// key on the ticket, else one created for it.
func (r *ticketRecorder) row(c ListedConversation) (*ticketRow, error) {
	if row := r.t.byKey[c.ThreadKey]; row != nil {
		return row, nil
	}
	key := c.ThreadKey
	var elsewhere bool
	if err := r.tx.QueryRowContext(r.ctx, "SELECT EXISTS (SELECT 1 FROM threads WHERE key = CAST(? AS TEXT) AND key <> '')", key).Scan(&elsewhere); err != nil {
		return nil, err
	}
	if elsewhere {
		key = foreignKey(key, r.ticket)
	}
	if row := r.t.byKey[key]; row != nil {
		return row, nil
	}
	res, err := r.tx.ExecContext(r.ctx, `INSERT INTO threads (key, ticket_id, state, side_conversation_id, subject, created_at, updated_at)
		VALUES (?, ?, 'created', ?, ?, ?, ?)`, key, r.ticket, c.ID, "found on ticket "+fmt.Sprint(r.ticket), r.now, r.now)
	if err != nil {
		return nil, err
	}
	id, err := res.LastInsertId()
	if err != nil {
		return nil, err
	}
	row := &ticketRow{id: id, key: key, state: Created, scID: c.ID}
	r.t.add(row)
	r.unknown("side conversation %s of thread %q", c.ID, c.ThreadKey)
	return row, nil
}

// message records message key mk, not imported anywhere on the ticket, as
// imported in side conversation scID under row, moving it from the other
// rows of the ticket.
func (r *ticketRecorder) message(row *ticketRow, scID, mk string) error {
	expected := false
	for _, m := range r.t.msgs[mk] {
		if m.thread == row.id && row.unresolved {
			expected = true // the outcome of the request left unresolved
		}
		if m.thread != row.id {
			r.touched[m.thread] = true
			if _, err := r.tx.ExecContext(r.ctx, "DELETE FROM messages WHERE thread_id = ? AND key = ?", m.thread, mk); err != nil {
				return err
			}
		}
	}
	if !expected {
		r.unknown("message %q in side conversation %s", mk, scID)
	}
	if _, err := r.tx.ExecContext(r.ctx, `INSERT INTO messages (thread_id, key, state, side_conversation_id, updated_at)
		VALUES (?, ?, 'imported', ?, ?)
		ON CONFLICT (thread_id, key) DO UPDATE SET state = 'imported', rule = '', reason = '',
			side_conversation_id = excluded.side_conversation_id, updated_at = excluded.updated_at`,
		row.id, mk, scID, r.now); err != nil {
		return err
	}
	r.t.msgs[mk] = []ticketMessage{{thread: row.id, state: MessageImported}}
	return nil
}

// resolve closes every open attempt of the ticket: each request left
// unresolved has its answer now (what landed is recorded, the rest was
// not sent); then it settles every row touched.
func (r *ticketRecorder) resolve() error {
	for _, row := range r.t.rows {
		if !row.unresolved {
			continue
		}
		r.touched[row.id] = true
		if err := reconcileAttempts(r.ctx, r.tx, row.id, r.now); err != nil {
			return err
		}
	}
	for id := range r.touched {
		if err := settle(r.ctx, r.tx, id, r.now); err != nil {
			return err
		}
	}
	return nil
}

// reconcileAttempts closes the open attempts of thread row id as
// reconciled: a lookup on the ticket told what became of them.
func reconcileAttempts(ctx context.Context, tx *wtx, id int64, now string) error {
	_, err := tx.ExecContext(ctx, `UPDATE attempts SET outcome = 'reconciled', finished_at = ? WHERE thread_id = ? AND outcome = ''`, now, id)
	return err
}

// vouchTicket records that the checkpoint vouches for ticket from
// generation gen on: what it holds was just recorded.
func vouchTicket(ctx context.Context, tx *wtx, ticket, gen int64, now string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO vouched (ticket_id, generation, at) VALUES (?, ?, ?)
		ON CONFLICT (ticket_id) DO UPDATE SET generation = excluded.generation, at = excluded.at`, ticket, gen, now)
	return err
}

// settle brings a row whose messages or attempts changed in line with
// them: unresolved cleared, events_done recounted; with a side
// conversation, a thread that was pending, in flight, failed with its
// request unresolved, or rejected is created; without one, one in flight
// is pending again. A created thread left with nothing to send is done
// once it has a KeysHash (its own thread was completed before).
func settle(ctx context.Context, tx *wtx, id int64, now string) error {
	_, err := tx.ExecContext(ctx, `UPDATE threads SET
		state = CASE
			WHEN side_conversation_id <> '' AND (state IN ('pending', 'in_flight', 'rejected') OR (state = 'failed' AND unresolved = 1)) THEN 'created'
			WHEN side_conversation_id = '' AND state = 'in_flight' THEN 'pending'
			ELSE state END,
		rule = CASE WHEN side_conversation_id <> '' AND (state IN ('pending', 'in_flight', 'rejected') OR (state = 'failed' AND unresolved = 1)) THEN '' ELSE rule END,
		reason = CASE WHEN side_conversation_id <> '' AND (state IN ('pending', 'in_flight', 'rejected') OR (state = 'failed' AND unresolved = 1)) THEN '' ELSE reason END,
		unresolved = 0,
		events_done = (SELECT count(*) FROM messages WHERE thread_id = ?1 AND state = 'imported'),
		updated_at = ?2
		WHERE id = ?1`, id, now)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE threads SET state = 'done', updated_at = ?2
		WHERE id = ?1 AND state = 'created' AND keys_hash <> ''
		AND NOT EXISTS (SELECT 1 FROM messages WHERE thread_id = ?1 AND state = 'pending')`, id, now)
	return err
}

// ticketRow and ticketMessage are a ticket's rows as RecordTicket and
// Join read them.
type ticketRow struct {
	id         int64
	key        string
	state      State
	scID       string
	unresolved bool
}

type ticketMessage struct {
	thread int64
	state  string
}

type ticketView struct {
	rows  []*ticketRow
	byKey map[string]*ticketRow
	byID  map[int64]*ticketRow
	msgs  map[string][]ticketMessage // message key → its rows on the ticket
}

func (t *ticketView) add(r *ticketRow) {
	t.rows = append(t.rows, r)
	t.byKey[r.key] = r
	t.byID[r.id] = r
}

func (t *ticketView) imported(mk string) bool {
	for _, m := range t.msgs[mk] {
		if m.state == MessageImported {
			return true
		}
	}
	return false
}

// loadTicket reads every row of ticket and its messages.
func loadTicket(ctx context.Context, tx *wtx, ticket int64) (*ticketView, error) {
	t := &ticketView{byKey: map[string]*ticketRow{}, byID: map[int64]*ticketRow{}, msgs: map[string][]ticketMessage{}}
	rows, err := tx.QueryContext(ctx, sqlTicketRows, ticket)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		r := &ticketRow{}
		if err := rows.Scan(&r.id, &r.key, &r.state, &r.scID, &r.unresolved); err != nil {
			rows.Close()
			return nil, err
		}
		t.add(r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = tx.QueryContext(ctx, sqlTicketMessages, ticket)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var m ticketMessage
		var key string
		if err := rows.Scan(&m.thread, &key, &m.state); err != nil {
			return nil, err
		}
		t.msgs[key] = append(t.msgs[key], m)
	}
	return t, rows.Err()
}

// Join records that the thread of r.Thread.Key, mapped to ticket, sends
// its new messages to the side conversation of the thread row target (an
// earlier imported part, or its own row): r's messages that no row of the
// ticket holds imported are upserted into target (imported messages
// elsewhere stay where they are), and removed from the other rows of the
// ticket, where they were never sent. A row left without messages,
// without side conversation and not the thread's own is deleted (it was
// absorbed); the other parts, and the thread's own row, are marked
// joined_to target. When target is the thread's own key, its row is
// registered as Register does (created if missing).
//
// No part may be unresolved (look on the ticket first: RecordTicket).
func (s *Store) Join(ctx context.Context, ticket int64, target string, r Registration) error {
	op := fmt.Sprintf("join thread %q into %q on ticket %d", r.Thread.Key, target, ticket)
	if err := checkRegistration(r); err != nil {
		return s.writeError(op, err)
	}
	return s.tx(ctx, op, func(ctx context.Context, tx *wtx) error {
		t, err := loadTicket(ctx, tx, ticket)
		if err != nil {
			return err
		}
		j := &joiner{ctx: ctx, tx: tx, t: t, own: r.Thread.Key, keys: make(map[string]bool, len(r.Messages)), parts: map[int64]bool{}}
		var fresh []Message // r's messages no row of the ticket holds imported
		for _, m := range r.Messages {
			j.keys[m.Key] = true
			if !t.imported(m.Key) {
				fresh = append(fresh, m)
			}
		}
		for k := range j.keys {
			for _, m := range t.msgs[k] {
				j.parts[m.thread] = true
			}
		}
		for id := range j.parts {
			if row := t.byID[id]; row != nil && row.unresolved {
				return fmt.Errorf("%w: thread %q has a request of unknown outcome on ticket %d: look on the ticket first", ErrTransition, row.key, ticket)
			}
		}
		if j.target, err = s.joinTarget(ctx, tx, t, ticket, target, r, fresh); err != nil {
			return err
		}
		j.now = s.stamp()
		if err := j.removeUnsent(); err != nil {
			return err
		}
		if ownRow := t.byKey[j.own]; ownRow != nil && ownRow.id != j.target {
			j.parts[ownRow.id] = true
		}
		for id := range j.parts {
			if err := j.part(id); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE threads SET events_done = (SELECT count(*) FROM messages WHERE thread_id = ?1 AND state = 'imported'),
			state = CASE WHEN state = 'done' AND EXISTS (SELECT 1 FROM messages WHERE thread_id = ?1 AND state = 'pending') THEN 'created' ELSE state END,
			updated_at = ?2 WHERE id = ?1`, j.target, j.now)
		return err
	})
}

// joinTarget upserts fresh into the row of target and returns its id:
// the thread's own row, registered as Register does, or an earlier
// imported part, which must have a side conversation.
func (s *Store) joinTarget(ctx context.Context, tx *wtx, t *ticketView, ticket int64, target string, r Registration, fresh []Message) (int64, error) {
	if target == r.Thread.Key {
		reg := r
		reg.Messages = fresh
		if err := s.register(ctx, tx, []Registration{reg}); err != nil {
			return 0, err
		}
		var id int64
		err := tx.QueryRowContext(ctx, sqlThreadByKey, target).Scan(&id, new(State), new(string), new(bool))
		return id, err
	}
	tr := t.byKey[target]
	if tr == nil || tr.scID == "" {
		return 0, fmt.Errorf("%w: thread %q has no side conversation on ticket %d to join thread %q into", ErrTransition, target, ticket, r.Thread.Key)
	}
	msgs := &messageWriter{ctx: ctx, tx: tx, now: s.stamp()}
	for _, m := range fresh {
		if err := msgs.add(tr.id, m); err != nil {
			return 0, err
		}
	}
	return tr.id, msgs.flush()
}

// joiner is one Join transaction.
type joiner struct {
	ctx    context.Context
	tx     *wtx
	t      *ticketView
	own    string          // the thread's key
	keys   map[string]bool // its message keys
	parts  map[int64]bool  // the rows of the ticket that hold any of them
	target int64           // the row that receives the messages
	now    string
}

// removeUnsent removes the thread's messages that are not imported from
// the parts other than target (with their uploads): target holds them now.
func (j *joiner) removeUnsent() error {
	for id := range j.parts {
		if id == j.target {
			continue
		}
		for k := range j.keys {
			for _, m := range j.t.msgs[k] {
				if m.thread != id || m.state == MessageImported {
					continue
				}
				if _, err := j.tx.ExecContext(j.ctx, "DELETE FROM messages WHERE thread_id = ? AND key = ?", id, k); err != nil {
					return err
				}
				if _, err := j.tx.ExecContext(j.ctx, "DELETE FROM uploads WHERE thread_id = ? AND message_key = ?", id, k); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// part records what the join leaves of row id, a part other than
// target: absorbed (deleted) when it was never sent and holds nothing
// any more, else joined to target, settled, and done when it has a side
// conversation and nothing left to send (its new messages go to target
// from now on).
func (j *joiner) part(id int64) error {
	row := j.t.byID[id]
	if id == j.target || row == nil {
		return nil
	}
	var left int
	if err := j.tx.QueryRowContext(j.ctx, "SELECT count(*) FROM messages WHERE thread_id = ?", id).Scan(&left); err != nil {
		return err
	}
	if left == 0 && row.scID == "" && row.key != j.own {
		// Never sent, and everything it held is the joined thread's.
		_, err := j.tx.ExecContext(j.ctx, "DELETE FROM threads WHERE id = ?", id)
		return err
	}
	if _, err := j.tx.ExecContext(j.ctx, "UPDATE threads SET joined_to = ?, updated_at = ? WHERE id = ?", j.target, j.now, id); err != nil {
		return err
	}
	if err := settle(j.ctx, j.tx, id, j.now); err != nil {
		return err
	}
	_, err := j.tx.ExecContext(j.ctx, `UPDATE threads SET state = 'done', updated_at = ?2 WHERE id = ?1 AND state = 'created'
		AND side_conversation_id <> '' AND NOT EXISTS (SELECT 1 FROM messages WHERE thread_id = ?1 AND state = 'pending')`, id, j.now)
	return err
}

// MarkJoinedDone records that the thread of t.Key is complete although
// its messages live in the side conversation of another thread row,
// target (a join or a split): its row (created if missing, without side
// conversation nor messages of its own) is done with keysHash, joined to
// target, and keeps t's subject, source, ticket and EventsTotal.
func (s *Store) MarkJoinedDone(ctx context.Context, t Thread, target, keysHash string) error {
	return s.tx(ctx, fmt.Sprintf("mark thread %q done in %q", t.Key, target), func(ctx context.Context, tx *wtx) error {
		if t.Key == "" || t.Key == target {
			return fmt.Errorf("%w: thread %q cannot be joined into %q", ErrTransition, t.Key, target)
		}
		var tid int64
		if err := tx.QueryRowContext(ctx, sqlThreadByKey, target).Scan(&tid, new(State), new(string), new(bool)); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: thread %q is not registered", ErrTransition, target)
			}
			return err
		}
		now := s.stamp()
		_, err := tx.ExecContext(ctx, `INSERT INTO threads (key, ticket_id, state, events_total, subject, source, keys_hash, joined_to, created_at, updated_at)
			VALUES (?1, ?2, 'done', ?3, ?4, ?5, ?6, ?7, ?8, ?8)
			ON CONFLICT (key) WHERE key <> '' DO UPDATE SET
				state = CASE WHEN EXISTS (SELECT 1 FROM messages WHERE thread_id = threads.id AND state = 'pending')
					OR threads.unresolved = 1 THEN threads.state ELSE 'done' END,
				rule = '', reason = '', http_status = 0, request_id = '', excerpt = '',
				events_total = excluded.events_total, subject = excluded.subject, source = excluded.source,
				keys_hash = excluded.keys_hash, joined_to = excluded.joined_to, updated_at = excluded.updated_at`,
			t.Key, t.TicketID, t.EventsTotal, t.Subject, t.Source, keysHash, tid, now)
		return err
	})
}

// Complete records c: the answer to a thread's last request when it
// carries SideConversationID and MessageKeys (MarkCreatedDone), or the
// completion of a thread that had nothing left to send (MarkDone). With
// KeysHash, the thread's keys are recorded as complete (see KeysHash).
func (s *Store) Complete(ctx context.Context, c Completion) error {
	if len(c.MessageKeys) == 0 {
		return s.tx(ctx, fmt.Sprintf("mark thread %q done", c.Key), func(ctx context.Context, tx *wtx) error {
			return s.markDone(ctx, tx, c.Key, c.KeysHash)
		})
	}
	return s.tx(ctx, fmt.Sprintf("mark thread %q created and done", c.Key), func(ctx context.Context, tx *wtx) error {
		return s.markCreated(ctx, tx, c.Key, c.SideConversationID, c.MessageKeys, Done, c.KeysHash)
	})
}
