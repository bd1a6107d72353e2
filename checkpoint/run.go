package checkpoint

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrOtherAccount means the checkpoint was used with another Zendesk
// account (exit 3): its done threads are done there, not on this one, so
// skipping them would lose them.
var ErrOtherAccount = errors.New("checkpoint: used with another Zendesk account")

// Run is what BeginRun tells an import about the checkpoint it starts
// from: whether it can vouch for what Zendesk holds.
//
// A checkpoint knows what was imported only as far as its file goes. A
// copy of threadlift.db taken without its -wal, a -wal damaged by random
// bytes, a snapshot restored from before later writes, or an empty file
// in front of an account that already holds threads all look like a
// checkpoint with less imported than Zendesk holds, and resuming from one
// would send those threads again. So:
//
//   - every import marks the file "not clean" and forces that into the
//     main database file before it writes anything else, and marks it
//     clean again at a clean end (Close), after which the main file holds
//     every write (the WAL is folded back): a lone copy of the .db taken
//     during a run, or after a kill, says "not clean";
//   - a run that starts from a checkpoint whose last run did not end
//     cleanly cannot know whether its file is the latest one: it loses
//     trust (Trusted false) and looks up each ticket before its first
//     write to it (RecordTicket), which records the ticket as vouched
//     for until trust is lost again;
//   - a checkpoint that trusts itself (or a new one) is still checked on
//     the first tickets a run writes to: if one holds a threadlift key the
//     checkpoint did not know, it is stale (a restored backup, a lost
//     checkpoint) and loses trust (Distrust).
type Run struct {
	// Generation numbers the runs of this checkpoint, from 1.
	Generation int64
	// New is true when no import ever ran on this checkpoint (a new or
	// 0-byte file).
	New bool
	// Trusted is true when the checkpoint can vouch for every ticket: its
	// last run ended cleanly and nothing showed it stale since.
	Trusted bool
	// Vouched lists the tickets looked up since the checkpoint lost trust
	// (only when Trusted is false): those need no lookup.
	Vouched map[int64]bool
	// Unclean is true when the previous run did not end cleanly (a kill,
	// a crash, a power loss, or a copy of the file taken during a run).
	Unclean bool
	// EmptyFile is true when the file was there with 0 bytes: it is taken
	// as a new checkpoint (New), whatever it held before.
	EmptyFile bool
}

// NormalizeAccount returns the form of a Zendesk URL that BeginRun
// records and compares: scheme and host in lower case, without a default
// port, path, query or user information (never a credential).
func NormalizeAccount(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" {
		return strings.ToLower(strings.TrimRight(strings.TrimSpace(raw), "/"))
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") { // an IPv6 literal
		host = "[" + host + "]"
	}
	port := u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host
}

// BeginRun starts an import run on the checkpoint: it checks the account
// (a checkpoint used with another one is refused with ErrOtherAccount; a
// checkpoint used with none records this one), says whether the
// checkpoint can vouch for what Zendesk holds (see Run), and marks the
// file not clean until Close, forcing that mark into the main database
// file. account is the zendesk.url ("" skips the account check).
func (s *Store) BeginRun(ctx context.Context, account string) (*Run, error) {
	account = NormalizeAccount(account)
	if account == "://" {
		account = ""
	}
	var r Run
	err := s.tx(ctx, "begin run", func(ctx context.Context, tx *wtx) error {
		var stored string
		var gen int64
		var clean, trusted bool
		if err := tx.QueryRowContext(ctx, "SELECT account, generation, clean, trusted FROM meta WHERE id = 1").
			Scan(&stored, &gen, &clean, &trusted); err != nil {
			return err
		}
		if stored != "" && account != "" && stored != account {
			return fmt.Errorf("%w: %s was used with %s, not %s: its done threads are not on this account, so skipping them would lose them; use another checkpoint.path for this account",
				ErrOtherAccount, s.path, stored, account)
		}
		if stored == "" {
			stored = account
		}
		var threads bool
		if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM threads)").Scan(&threads); err != nil {
			return err
		}
		r = Run{Generation: gen + 1, New: gen == 0 && !threads, Unclean: !clean, EmptyFile: s.emptyFile}
		if !clean && !r.New {
			// The last run did not end cleanly: this file may be older than
			// what was sent (a copy without its -wal, a restored snapshot).
			trusted = false
			if _, err := tx.ExecContext(ctx, "DELETE FROM vouched"); err != nil {
				return err
			}
		}
		r.Trusted = trusted
		if !trusted {
			r.Vouched = map[int64]bool{}
			rows, err := tx.QueryContext(ctx, "SELECT ticket_id FROM vouched")
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					return err
				}
				r.Vouched[id] = true
			}
			if err := rows.Err(); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, "UPDATE meta SET account = ?, generation = ?, clean = 0, trusted = ?, updated_at = ? WHERE id = 1",
			stored, r.Generation, trusted, s.stamp())
		return err
	})
	if err != nil {
		return nil, err
	}
	// A copy of the main file alone, taken from now on, must say "not
	// clean": fold the WAL (with the mark) into it.
	if err := s.foldWAL(ctx); err != nil {
		return nil, fmt.Errorf("checkpoint: begin run: %w", err)
	}
	s.mu.Lock()
	s.run = r.Generation
	s.mu.Unlock()
	return &r, nil
}

// Distrust records that the checkpoint was found stale (a ticket holds a
// threadlift key it did not know): until trust is restored, every ticket
// is looked up before its first write. Tickets vouched for in this run
// stay vouched.
func (s *Store) Distrust(ctx context.Context) error {
	s.mu.Lock()
	gen := s.run
	s.mu.Unlock()
	return s.tx(ctx, "distrust the checkpoint", func(ctx context.Context, tx *wtx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM vouched WHERE generation <> ?", gen); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "UPDATE meta SET trusted = 0, updated_at = ? WHERE id = 1", s.stamp())
		return err
	})
}

// EndRun marks the run begun by BeginRun as ended cleanly and folds the
// WAL into the main file, so that the .db alone is then complete. Call it
// once nothing of the run is in flight any more; Close calls it if the
// caller did not. A failure leaves the file "not clean", which is safe.
func (s *Store) EndRun(ctx context.Context) error {
	s.mu.Lock()
	gen := s.run
	s.run = 0
	s.mu.Unlock()
	if gen == 0 || s.writes == nil {
		return nil
	}
	err := s.tx(ctx, "end run", func(ctx context.Context, tx *wtx) error {
		_, err := tx.ExecContext(ctx, "UPDATE meta SET clean = 1, updated_at = ? WHERE id = 1 AND generation = ?", s.stamp(), gen)
		return err
	})
	if err != nil {
		return err
	}
	if err := s.foldWAL(ctx); err != nil {
		return fmt.Errorf("checkpoint: end run: %w", err)
	}
	return nil
}

// foldWAL copies every committed write into the main database file and
// empties the WAL (PRAGMA wal_checkpoint(TRUNCATE)). It fails when another
// connection (a sqlite3 shell in the middle of a read) keeps it from
// finishing within the busy timeout.
func (s *Store) foldWAL(ctx context.Context) error {
	var busy, logFrames, done int
	err := s.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &done)
	if err != nil {
		return fmt.Errorf("fold the WAL into %s: %w", s.path, err)
	}
	if busy != 0 {
		return fmt.Errorf("fold the WAL into %s: another program is reading the checkpoint (close any sqlite3 shell on it and run again)", s.path)
	}
	return nil
}

// Trust records that the checkpoint matches what Zendesk holds again:
// for `verify --adopt`, once it has recorded (RecordTicket) every ticket
// the sources map to, with nothing else writing to them. The file is
// marked clean and trusted; runs after it look up only their first
// tickets (see Run).
func (s *Store) Trust(ctx context.Context) error {
	err := s.tx(ctx, "trust the checkpoint", func(ctx context.Context, tx *wtx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM vouched"); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "UPDATE meta SET trusted = 1, clean = 1, updated_at = ? WHERE id = 1", s.stamp())
		return err
	})
	if err != nil {
		return err
	}
	return s.foldWAL(ctx)
}

// Vouched reports whether ticket was looked up since the checkpoint lost
// trust (false also when it never lost it).
func (s *Store) Vouched(ctx context.Context, ticket int64) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM vouched WHERE ticket_id = ?", ticket).Scan(&n)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, s.wrap("read vouched tickets", err)
	}
	return n > 0, nil
}
