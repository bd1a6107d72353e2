package checkpoint

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// The scan record (schema version 4).
//
// An import records what its read of the sources found: per source file
// its size, digests of its head and of the bytes before its end, and its
// last record (ScanFile); every thread of the archive with the encoded
// envelopes of its messages (ScanThread). A backfill whose files only
// grew reads the appended bytes alone, and rebuilds from this record just
// the threads the new messages may join (ScanThreadsMentioning) and those
// that still have work (ScanOpenThreads), instead of reading and
// threading the whole archive again. The checkpoint does not interpret
// the envelopes: pipeline/archive encodes them and decides when the
// record can be used.

// ScanState is what the recorded scan found of the sources.
type ScanState struct {
	// Options is the caller's digest of everything the scan depends on
	// (sources, read and threading options): a record made under other
	// options is not used.
	Options string     `json:"options"`
	Files   []ScanFile `json:"files"`
	// Envelopes is how many envelopes the archive held: the Seq the next
	// appended one takes.
	Envelopes int64 `json:"envelopes"`
	// Threads and Messages are the archive's totals as a run summary
	// counts them (unreadable records included); Bad counts the
	// unreadable records.
	Threads  int `json:"threads"`
	Messages int `json:"messages"`
	Bad      int `json:"bad"`
}

// ScanFile is one source file as the recorded scan read it.
type ScanFile struct {
	Path string `json:"path"`
	Type string `json:"type"`
	Size int64  `json:"size"`
	// Head and Tail are digests of the file's first bytes and of the
	// bytes before its end (how many is the caller's).
	Head string `json:"head"`
	Tail string `json:"tail"`
	// Prefix is how many bytes the format needs before any record (a csv
	// header row); 0 for the others.
	Prefix int64 `json:"prefix"`
	// Last is the file's last record: an appended scan starts there and
	// checks that it reads the same record again.
	Last    ScanRecord `json:"last"`
	Records int        `json:"records"`
}

// ScanRecord locates a record. Key is "" for a record that could not be
// read; Found is false when the file held no record.
type ScanRecord struct {
	Found  bool   `json:"found"`
	Offset int64  `json:"offset"`
	Line   int    `json:"line"`
	Size   int64  `json:"size"`
	Key    string `json:"key"`
}

// ScanThread is one thread of a recorded scan.
type ScanThread struct {
	ID  int64 // its scan_threads id, on read
	Key string
	// KeysHash is KeysHash of its message keys: a thread done with
	// exactly these keys has no work left.
	KeysHash  string
	Envelopes []ScanEnvelope
	// Syms are the hashes of what its messages mention (written only).
	Syms []uint64
}

// ScanEnvelope is one encoded envelope and its position in the archive.
type ScanEnvelope struct {
	Seq  int64
	Data []byte
}

// ScanState returns the recorded scan; false when none is recorded.
func (s *Store) ScanState(ctx context.Context) (ScanState, bool, error) {
	var raw string
	err := s.db.QueryRowContext(ctx, "SELECT state FROM scan_meta WHERE id = 1").Scan(&raw)
	if err == sql.ErrNoRows {
		return ScanState{}, false, nil
	}
	if err != nil {
		return ScanState{}, false, s.wrap("read scan record", err)
	}
	var st ScanState
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		return ScanState{}, false, fmt.Errorf("%w: read scan record: %w", ErrUnusable, err)
	}
	return st, true, nil
}

// ScanOpenThreads returns the recorded threads that an import would look
// at again: all but those done with exactly their recorded message keys
// (an import skips those without loading them) and without a rejected
// message (the failures files copy it). The unreadable records (key "")
// are always among them.
//
// It reads every recorded thread: its cost grows with the archive (about
// 0.2 s at 400,000 messages here). The rejected messages are looked up
// from their own side, through the state index, not once per thread,
// which cost more than half of it.
func (s *Store) ScanOpenThreads(ctx context.Context) ([]int64, error) {
	return s.scanIDs(ctx, "read open scan threads", `SELECT s.id FROM scan_threads s
		WHERE NOT EXISTS (SELECT 1 FROM threads t WHERE t.key = s.key AND t.key <> '' AND t.state = 'done'
			AND t.keys_hash = s.keys_hash AND t.keys_hash <> '')
		UNION
		SELECT s.id FROM messages m JOIN threads t ON t.id = m.thread_id JOIN scan_threads s ON s.key = t.key
		WHERE m.state = 'rejected' AND t.key <> ''`)
}

// ScanThreadsMentioning returns the recorded threads one of whose
// messages mentions one of syms.
func (s *Store) ScanThreadsMentioning(ctx context.Context, syms []uint64) ([]int64, error) {
	var out []int64
	seen := map[int64]bool{}
	for chunk := range slices.Chunk(syms, 500) {
		args := make([]any, len(chunk))
		for i, v := range chunk {
			args[i] = int64(v)
		}
		q := "SELECT DISTINCT thread FROM scan_syms WHERE sym IN (" + placeholders(len(chunk)) + ")"
		ids, err := s.scanIDs(ctx, "read scan threads", q, args...)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	return out, nil
}

func (s *Store) scanIDs(ctx context.Context, op, q string, args ...any) ([]int64, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, s.wrap(op, err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(op, err)
	}
	return out, nil
}

// ScanThreads returns the recorded threads of ids with their keys hash
// and envelopes (Seq order); Syms are not read.
func (s *Store) ScanThreads(ctx context.Context, ids []int64) ([]ScanThread, error) {
	out := make([]ScanThread, 0, len(ids))
	for _, id := range ids {
		t := ScanThread{ID: id}
		if err := s.db.QueryRowContext(ctx, "SELECT key, keys_hash FROM scan_threads WHERE id = ?", id).Scan(&t.Key, &t.KeysHash); err != nil {
			return nil, s.wrap("read scan thread", err)
		}
		rows, err := s.db.QueryContext(ctx, "SELECT seq, data FROM scan_envelopes WHERE thread = ? ORDER BY seq", id)
		if err != nil {
			return nil, s.wrap("read scan envelopes", err)
		}
		for rows.Next() {
			var e ScanEnvelope
			if err := rows.Scan(&e.Seq, &e.Data); err != nil {
				rows.Close()
				return nil, s.wrap("read scan envelopes", err)
			}
			t.Envelopes = append(t.Envelopes, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, s.wrap("read scan envelopes", err)
		}
		out = append(out, t)
	}
	return out, nil
}

// RecordScan records a scan in one transaction. With replace nil, the
// whole record is replaced by st and the threads next yields; otherwise
// the recorded threads of replace (those an appended scan rebuilt) are
// replaced by the threads next yields, and st replaces the state. next
// calls yield once per thread and stops at its first error.
func (s *Store) RecordScan(ctx context.Context, st ScanState, replace []int64, next func(yield func(ScanThread) error) error) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("checkpoint: record scan: %w", err)
	}
	return s.tx(ctx, "record scan", func(ctx context.Context, tx *wtx) error {
		if err := dropScanThreads(ctx, tx, replace); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO scan_meta (id, state, recorded_at) VALUES (1, ?, ?)
			ON CONFLICT (id) DO UPDATE SET state = excluded.state, recorded_at = excluded.recorded_at`, string(raw), s.stamp()); err != nil {
			return err
		}
		w, err := newScanWriter(ctx, tx)
		if err != nil {
			return err
		}
		return next(w.thread)
	})
}

// ForgetScan drops the scan record: the next import reads every source.
func (s *Store) ForgetScan(ctx context.Context) error {
	return s.tx(ctx, "forget scan", func(ctx context.Context, tx *wtx) error {
		return dropScanThreads(ctx, tx, nil)
	})
}

// dropScanThreads deletes the recorded threads of ids, or the whole
// record when ids is nil.
func dropScanThreads(ctx context.Context, tx *wtx, ids []int64) error {
	if ids == nil {
		for _, q := range []string{"DELETE FROM scan_syms", "DELETE FROM scan_envelopes", "DELETE FROM scan_threads", "DELETE FROM scan_meta"} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		return nil
	}
	for _, q := range []string{"DELETE FROM scan_syms WHERE thread = ?", "DELETE FROM scan_envelopes WHERE thread = ?", "DELETE FROM scan_threads WHERE id = ?"} {
		st, err := tx.Stmt(ctx, q)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := st.ExecContext(ctx, id); err != nil {
				return err
			}
		}
	}
	return nil
}

type scanWriter struct {
	ctx               context.Context
	thread0, env, sym *sql.Stmt
	seenSyms          map[uint64]bool
}

func newScanWriter(ctx context.Context, tx *wtx) (*scanWriter, error) {
	w := &scanWriter{ctx: ctx, seenSyms: map[uint64]bool{}}
	var err error
	if w.thread0, err = tx.Stmt(ctx, "INSERT INTO scan_threads (key, keys_hash) VALUES (?, ?)"); err != nil {
		return nil, err
	}
	if w.env, err = tx.Stmt(ctx, "INSERT INTO scan_envelopes (seq, thread, data) VALUES (?, ?, ?)"); err != nil {
		return nil, err
	}
	if w.sym, err = tx.Stmt(ctx, "INSERT OR IGNORE INTO scan_syms (sym, thread) VALUES (?, ?)"); err != nil {
		return nil, err
	}
	return w, nil
}

// thread inserts one thread, its envelopes and its syms.
func (w *scanWriter) thread(t ScanThread) error {
	res, err := w.thread0.ExecContext(w.ctx, t.Key, t.KeysHash)
	if err != nil {
		return err
	}
	id, err := res.LastInsertId()
	if err != nil {
		return err
	}
	for _, e := range t.Envelopes {
		if _, err := w.env.ExecContext(w.ctx, e.Seq, id, e.Data); err != nil {
			return err
		}
	}
	clear(w.seenSyms)
	for _, v := range t.Syms {
		if w.seenSyms[v] {
			continue
		}
		w.seenSyms[v] = true
		if _, err := w.sym.ExecContext(w.ctx, int64(v), id); err != nil {
			return err
		}
	}
	return nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// ScanBadThreads returns the recorded threads of unreadable records (key
// ""): a read in chunks takes them up with every chunk, for the copies of
// a failures file to replace.
func (s *Store) ScanBadThreads(ctx context.Context) ([]int64, error) {
	return s.scanIDs(ctx, "read scan threads", "SELECT id FROM scan_threads WHERE key = ''")
}

// ScanThreadSize is a recorded thread and how many envelopes it holds.
type ScanThreadSize struct {
	ID        int64
	Envelopes int
}

// ScanThreadOrder returns the recorded threads (but the unreadable
// records') in the order of their first envelope in the archive: the
// order of a whole read's threads.
func (s *Store) ScanThreadOrder(ctx context.Context) ([]ScanThreadSize, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT e.thread, count(*) FROM scan_envelopes e JOIN scan_threads t ON t.id = e.thread
		WHERE t.key <> '' GROUP BY e.thread ORDER BY min(e.seq)`)
	if err != nil {
		return nil, s.wrap("read scan threads", err)
	}
	defer rows.Close()
	var out []ScanThreadSize
	for rows.Next() {
		var t ScanThreadSize
		if err := rows.Scan(&t.ID, &t.Envelopes); err != nil {
			return nil, s.wrap("read scan threads", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("read scan threads", err)
	}
	return out, nil
}
