package checkpoint

import (
	"context"
	"fmt"
)

// AdoptThread is one thread of the plan, for Adopt: what import would
// register for it, and the side conversation its ticket holds it in.
type AdoptThread struct {
	Registration Registration
	// SideConversationID is the side conversation on the ticket that
	// carries the thread key ("" when none does). When Zendesk holds
	// several, the caller picks one: new messages are appended to it.
	SideConversationID string
}

// AdoptResult says what Adopt changed.
type AdoptResult struct {
	// Threads whose row changed (state, side conversation or messages).
	Threads int
	// Imported counts messages now recorded as imported that were not.
	Imported int
	// Reset counts messages the checkpoint had as imported that the
	// ticket does not hold: they are pending again, for the next import.
	Reset int
	// Kept counts messages the checkpoint has as imported in a side
	// conversation that is on the ticket, but that the listing did not
	// show: they stay imported (see Adopt).
	Kept int
	// Elsewhere lists the threads left alone because the checkpoint has
	// them on another ticket, where a request may have landed.
	Elsewhere []string
}

// Adopt records what one ticket holds, as read back from Zendesk, in one
// transaction: interrupted, it has written nothing for this ticket, and
// run again it writes the same. present maps every message key found on
// the ticket to the side conversation holding it; sideConversations are
// the ids of every side conversation on the ticket.
//
// For each thread it first registers what import would (a new thread is
// pending, a known one keeps its state); then the ticket is the truth:
//
//   - a message found on the ticket is imported, with the side
//     conversation holding it (whatever the checkpoint said);
//   - a message the checkpoint has as imported in a side conversation
//     that is not on the ticket is pending again (a stale checkpoint, or
//     one copied from another account), so that the next import sends
//     it. One recorded in a side conversation that is on the ticket but
//     whose events did not list it stays imported (Kept): whether the
//     list endpoint sideloads every event of a long side conversation is
//     not documented, and sending it again could duplicate it;
//   - the thread takes SideConversationID; it is done when no message is
//     pending, created when some are and it has a side conversation,
//     pending when it has none (a failed thread with nothing on the
//     ticket stays failed until retry; a rejected one stays rejected);
//   - it is no longer unresolved: its open attempts are reconciled.
//
// A thread the checkpoint places on another ticket, with a request that
// may have landed there, is left alone unless this ticket holds its key.
// Adopt does not follow the transitions of doc.go: it writes what Zendesk
// holds, whatever the checkpoint believed.
func (s *Store) Adopt(ctx context.Context, ticketID int64, threads []AdoptThread, present map[string]string, sideConversations []string) (AdoptResult, error) {
	onTicket := make(map[string]bool, len(sideConversations))
	for _, id := range sideConversations {
		onTicket[id] = true
	}
	regs := make([]Registration, len(threads))
	for i, at := range threads {
		if err := checkRegistration(at.Registration); err != nil {
			return AdoptResult{}, s.writeError(fmt.Sprintf("adopt ticket %d", ticketID), err)
		}
		if at.Registration.Thread.Key == "" {
			return AdoptResult{}, s.writeError(fmt.Sprintf("adopt ticket %d", ticketID),
				fmt.Errorf("%w: a thread without key cannot be adopted", ErrTransition))
		}
		regs[i] = at.Registration
	}
	var res AdoptResult
	err := s.tx(ctx, fmt.Sprintf("adopt ticket %d", ticketID), func(ctx context.Context, tx *wtx) error {
		res = AdoptResult{}
		if err := s.register(ctx, tx, regs); err != nil {
			return err
		}
		now := s.stamp()
		for _, at := range threads {
			changed, err := s.adoptThread(ctx, tx, ticketID, at, present, onTicket, now, &res)
			if err != nil {
				return err
			}
			if changed {
				res.Threads++
			}
		}
		// The ticket has just been read back and recorded: the checkpoint
		// vouches for it now (see BeginAdopt), in this same transaction.
		return adoptVouchTicket(ctx, tx, ticketID, now)
	})
	if err != nil {
		return AdoptResult{}, err
	}
	return res, nil
}

// adoptVouchTicket records that the checkpoint vouches for ticketID: what
// it holds was just read back. An import of this generation or a later
// one does not look it up again before its first write (until a run ends
// uncleanly, which empties vouched).
func adoptVouchTicket(ctx context.Context, tx *wtx, ticketID int64, now string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO vouched (ticket_id, generation, at)
		SELECT ?, generation, ? FROM meta WHERE id = 1
		ON CONFLICT (ticket_id) DO UPDATE SET generation = excluded.generation, at = excluded.at`,
		ticketID, now)
	return err
}

// BeginAdopt starts a verify --adopt pass as BeginRun starts an import
// (the account checked and recorded, the file marked not clean), and
// makes the checkpoint stop trusting itself (Distrust): until the pass has
// read every ticket (then Trust), only the tickets it adopts are vouched
// for, and an import looks every other ticket up before its first write.
// Tickets vouched for before this pass are forgotten: whatever recorded
// them, this file is being rebuilt because it may be older than Zendesk
// (a pass resumed with --start-ticket leaves the tickets before it to the
// import's lookups).
func (s *Store) BeginAdopt(ctx context.Context, account string) error {
	if _, err := s.BeginRun(ctx, account); err != nil {
		return err
	}
	return s.Distrust(ctx)
}

// adoptThread applies what the ticket holds to one registered thread and
// reports whether anything changed.
func (s *Store) adoptThread(ctx context.Context, tx *wtx, ticketID int64, at AdoptThread, present map[string]string, onTicket map[string]bool, now string, res *AdoptResult) (bool, error) {
	key := at.Registration.Thread.Key
	var (
		id         int64
		state      State
		scID       string
		unresolved bool
		ticket     int64
	)
	if err := tx.QueryRowContext(ctx, sqlRegisterByKey, key).Scan(&id, &state, &scID, &unresolved, &ticket); err != nil {
		return false, fmt.Errorf("read thread %q: %w", key, err)
	}
	if at.SideConversationID == "" && ticket != 0 && ticket != ticketID {
		res.Elsewhere = append(res.Elsewhere, key)
		return false, nil
	}
	m := &adoptMessages{ctx: ctx, tx: tx, id: id, now: now, res: res}
	if err := m.apply(present, onTicket); err != nil {
		return false, err
	}
	newSC := at.SideConversationID
	to := adoptedState(state, newSC, m.imported, m.pending)
	clearFailure := to != state && (to == Pending || to == Created || to == Done)
	changed := m.changed || to != state || newSC != scID || unresolved || ticket != ticketID
	if _, err := tx.ExecContext(ctx, `UPDATE threads SET ticket_id = ?, side_conversation_id = ?, state = ?, events_done = ?, unresolved = 0,
		rule = CASE WHEN ? THEN '' ELSE rule END, reason = CASE WHEN ? THEN '' ELSE reason END,
		http_status = CASE WHEN ? THEN 0 ELSE http_status END, request_id = CASE WHEN ? THEN '' ELSE request_id END,
		excerpt = CASE WHEN ? THEN '' ELSE excerpt END, updated_at = ? WHERE id = ?`,
		ticketID, newSC, to, m.imported, clearFailure, clearFailure, clearFailure, clearFailure, clearFailure, now, id); err != nil {
		return false, err
	}
	if err := reconcileAttempts(ctx, tx, id, now); err != nil {
		return false, err
	}
	return changed, nil
}

// adoptedState is the state of a thread that was in state, adopted with
// side conversation newSC ("" for none), imported messages on the ticket
// and pending ones still to send.
func adoptedState(state State, newSC string, imported, pending int) State {
	switch {
	case pending == 0 && (newSC != "" || imported > 0):
		return Done
	case newSC != "":
		return Created
	case imported > 0:
		// Its messages are on the ticket in other threads' side
		// conversations (a join), the rest is still to send.
		return Pending
	case state == Failed || state == Rejected:
		// Nothing of it on the ticket: a failure or a rejection stands.
		return state
	}
	return Pending
}

// adoptMessages applies what the ticket holds to the messages of one
// thread row (id), counting them.
type adoptMessages struct {
	ctx               context.Context
	tx                *wtx
	id                int64
	now               string
	res               *AdoptResult
	imported, pending int  // of the row's messages, after adopting
	changed           bool // a message row changed
}

type adoptMessage struct{ key, state, scID string }

// apply reads the row's messages and records each as the ticket holds it
// (see Adopt): present maps the message keys on the ticket to their side
// conversation; onTicket holds the ticket's side conversations.
func (m *adoptMessages) apply(present map[string]string, onTicket map[string]bool) error {
	msgs, err := m.read()
	if err != nil {
		return err
	}
	for _, msg := range msgs {
		sc, found := present[msg.key]
		switch {
		case found:
			m.imported++
			if msg.state == MessageImported && msg.scID == sc {
				continue
			}
			if msg.state != MessageImported {
				m.res.Imported++
			}
			if _, err := m.tx.ExecContext(m.ctx, `UPDATE messages SET state = 'imported', side_conversation_id = ?, rule = '', reason = '', updated_at = ?
				WHERE thread_id = ? AND key = ?`, sc, m.now, m.id, msg.key); err != nil {
				return err
			}
			m.changed = true
		case msg.state == MessageImported && onTicket[msg.scID]:
			m.imported++
			m.res.Kept++
		case msg.state == MessageImported:
			m.pending++
			m.res.Reset++
			if _, err := m.tx.ExecContext(m.ctx, `UPDATE messages SET state = 'pending', side_conversation_id = '', updated_at = ?
				WHERE thread_id = ? AND key = ?`, m.now, m.id, msg.key); err != nil {
				return err
			}
			m.changed = true
		case msg.state == MessagePending:
			m.pending++
		}
	}
	return nil
}

// read reads the row's messages, all of them before any is changed.
func (m *adoptMessages) read() ([]adoptMessage, error) {
	rows, err := m.tx.QueryContext(m.ctx, `SELECT key, state, side_conversation_id FROM messages WHERE thread_id = ?`, m.id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var msgs []adoptMessage
	for rows.Next() {
		var msg adoptMessage
		if err := rows.Scan(&msg.key, &msg.state, &msg.scID); err != nil {
			return nil, err
		}
		msgs = append(msgs, msg)
	}
	return msgs, rows.Err()
}
