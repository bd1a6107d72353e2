package checkpoint

import (
	"context"
	"fmt"
)

// Defence behind the lock: a Store remembers which open attempts it
// started itself, and MarkInFlight refuses to send again a thread whose
// open attempt it did not start. Within a run a thread is marked in
// flight again after a definite "not processed" answer (a 429, a 413, a
// connection refused); a thread left in flight by another run must first
// be looked up on its ticket and resolved (MarkMessagesImported or
// MarkNotSent). Were the lock ever bypassed, a second process could
// otherwise re-send a thread the first one has in flight: a duplicate.
// No column is needed: the attempts' ids are unique and never reused while
// their rows exist.

// ownedPruneAt is the default size (Store.ownedMax) at which the map of attempts started by this
// Store is cut down to the threads still in flight: it stays bounded by
// the workers' threads, not the run's.
const ownedPruneAt = 4096

// checkOwner returns an error wrapping ErrTransition when r is in flight
// with an open attempt this Store did not start. It runs on the
// committer's goroutine, as every write does.
func (s *Store) checkOwner(ctx context.Context, tx *wtx, key string, r threadRow) error {
	if r.state != InFlight {
		return nil
	}
	var open int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM attempts WHERE thread_id = ? AND outcome = ''`, r.id).Scan(&open); err != nil {
		return err
	}
	if open != 0 && s.owned[r.id] == open {
		return nil
	}
	return fmt.Errorf("%w: thread %q is in flight from another run (attempt %d): it must be looked up on its ticket before it is sent again",
		ErrTransition, key, open)
}

// noteOwned records that this Store started attempt for thread.
func (s *Store) noteOwned(ctx context.Context, tx *wtx, thread, attempt int64) error {
	if s.owned == nil {
		s.owned = make(map[int64]int64)
	}
	if len(s.owned) >= s.ownedMax {
		rows, err := tx.QueryContext(ctx, `SELECT id FROM threads WHERE state = 'in_flight'`)
		if err != nil {
			return err
		}
		keep := make(map[int64]int64)
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			if a, ok := s.owned[id]; ok {
				keep[id] = a
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		s.owned = keep
	}
	s.owned[thread] = attempt
	return nil
}
