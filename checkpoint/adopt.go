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

	type msgRow struct {
		key, state, scID string
	}
	rows, err := tx.QueryContext(ctx, `SELECT key, state, side_conversation_id FROM messages WHERE thread_id = ?`, id)
	if err != nil {
		return false, err
	}
	var msgs []msgRow
	for rows.Next() {
		var m msgRow
		if err := rows.Scan(&m.key, &m.state, &m.scID); err != nil {
			rows.Close()
			return false, err
		}
		msgs = append(msgs, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, err
	}

	changed := false
	imported, pending := 0, 0
	for _, m := range msgs {
		sc, found := present[m.key]
		switch {
		case found:
			imported++
			if m.state == MessageImported && m.scID == sc {
				continue
			}
			if m.state != MessageImported {
				res.Imported++
			}
			if _, err := tx.ExecContext(ctx, `UPDATE messages SET state = 'imported', side_conversation_id = ?, rule = '', reason = '', updated_at = ?
				WHERE thread_id = ? AND key = ?`, sc, now, id, m.key); err != nil {
				return false, err
			}
			changed = true
		case m.state == MessageImported && onTicket[m.scID]:
			imported++
			res.Kept++
		case m.state == MessageImported:
			pending++
			res.Reset++
			if _, err := tx.ExecContext(ctx, `UPDATE messages SET state = 'pending', side_conversation_id = '', updated_at = ?
				WHERE thread_id = ? AND key = ?`, now, id, m.key); err != nil {
				return false, err
			}
			changed = true
		case m.state == MessagePending:
			pending++
		}
	}

	newSC := at.SideConversationID
	to := state
	switch {
	case pending == 0 && (newSC != "" || imported > 0):
		to = Done
	case newSC != "":
		to = Created
	case imported > 0:
		// Its messages are on the ticket in other threads' side
		// conversations (a join), the rest is still to send.
		to = Pending
	case state == Failed || state == Rejected:
		// Nothing of it on the ticket: a failure or a rejection stands.
	default:
		to = Pending
	}
	clearFailure := to != state && (to == Pending || to == Created || to == Done)
	if to != state || newSC != scID || unresolved || ticket != ticketID {
		changed = true
	}
	if _, err := tx.ExecContext(ctx, `UPDATE threads SET ticket_id = ?, side_conversation_id = ?, state = ?, events_done = ?, unresolved = 0,
		rule = CASE WHEN ? THEN '' ELSE rule END, reason = CASE WHEN ? THEN '' ELSE reason END,
		http_status = CASE WHEN ? THEN 0 ELSE http_status END, request_id = CASE WHEN ? THEN '' ELSE request_id END,
		excerpt = CASE WHEN ? THEN '' ELSE excerpt END, updated_at = ? WHERE id = ?`,
		ticketID, newSC, to, imported, clearFailure, clearFailure, clearFailure, clearFailure, clearFailure, now, id); err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE attempts SET outcome = 'reconciled', finished_at = ? WHERE thread_id = ? AND outcome = ''`, now, id); err != nil {
		return false, err
	}
	return changed, nil
}
