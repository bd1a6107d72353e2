package checkpoint

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// State is a thread's state (contract §6).
type State string

// The thread states. See doc.go for the transitions.
const (
	Pending  State = "pending"   // seen, nothing sent yet (or re-queued by Retry)
	InFlight State = "in_flight" // a request was recorded as about to be sent
	Created  State = "created"   // the side conversation exists; events may remain
	Done     State = "done"      // every event imported
	Failed   State = "failed"    // gave up for this run; Retry re-queues it
	Rejected State = "rejected"  // failed validation; never sent
)

// States lists every state, in the order status prints them.
func States() []State { return []State{Pending, InFlight, Created, Done, Failed, Rejected} }

// Message states.
const (
	MessagePending   = "pending"
	MessageImported  = "imported"
	MessageRejected  = "rejected"
	MessageDuplicate = "duplicate"
)

// Attempt kinds: which endpoint a request goes to.
const (
	KindImport       = "import"        // side_conversations/import
	KindEventsImport = "events_import" // side_conversations/{id}/events/import
)

// Attempt outcomes.
const (
	OutcomeUnknown    = ""           // sent (or about to be); no answer recorded
	OutcomeOK         = "ok"         // 2xx, recorded by MarkCreated
	OutcomeFailed     = "failed"     // recorded by MarkFailed / MarkRejected
	OutcomeReconciled = "reconciled" // outcome learnt by looking on the ticket
	OutcomeSuperseded = "superseded" // replaced by a later MarkInFlight
)

// Thread is one thread's row.
type Thread struct {
	Key                string
	TicketID           int64
	State              State
	SideConversationID string
	EventsTotal        int
	EventsDone         int
	Subject            string
	Source             string
	Rule, Reason       string
	HTTPStatus         int
	RequestID          string
	Excerpt            string
	Attempts           int
	// Unresolved is true when a request was sent for this thread and its
	// outcome is unknown (a crash, a timeout, a 5xx): before sending again,
	// look the thread key / message keys up on the ticket (LastAttempt says
	// what was sent) and record what landed with MarkMessagesImported.
	Unresolved bool
	UpdatedAt  time.Time
}

// Message is one message of a thread.
type Message struct {
	ThreadKey string // optional in Register (the thread's key); set on read
	Key       string
	Seq       int
	State     string // pending | imported | rejected | duplicate; "" = pending
	Source    string
	Rule      string
	Reason    string
}

// Failure says why a thread failed or was rejected.
type Failure struct {
	Rule       string
	Reason     string
	HTTPStatus int
	RequestID  string
	Excerpt    string
}

// Attempt is one recorded request.
type Attempt struct {
	ID          int64
	Kind        string // KindImport | KindEventsImport
	MessageKeys []string
	StartedAt   time.Time
	Outcome     string // Outcome*
	HTTPStatus  int
	FinishedAt  time.Time // zero while unknown
}

// Registration is one thread and its messages, for RegisterBatch.
type Registration struct {
	Thread   Thread
	Messages []Message
}

// Counts is what status prints.
type Counts struct {
	Threads  map[State]int // every state present, 0 included
	Messages MessageCounts
}

// MessageCounts counts messages by state.
type MessageCounts struct {
	Imported  int
	Rejected  int
	Pending   int
	Duplicate int
}

// FailureRecord is one line of `failures`: a failed or rejected thread
// (MessageKey "") or a rejected message.
type FailureRecord struct {
	ThreadKey  string
	MessageKey string
	TicketID   int64 // 0: none
	State      State
	Rule       string
	Reason     string
	HTTPStatus int
	RequestID  string
	Excerpt    string
	Source     string
}

const timeFormat = "2006-01-02T15:04:05.000000Z"

func (s *Store) stamp() string { return s.now().UTC().Format(timeFormat) }

func parseTime(v string) time.Time {
	t, _ := time.Parse(timeFormat, v)
	return t
}

const threadColumns = `key, ticket_id, state, side_conversation_id, events_total, events_done, subject, source,
	rule, reason, http_status, request_id, excerpt, attempts, unresolved, updated_at`

type scanner interface{ Scan(...any) error }

func scanThread(r scanner) (Thread, error) {
	var t Thread
	var updated string
	err := r.Scan(&t.Key, &t.TicketID, &t.State, &t.SideConversationID, &t.EventsTotal, &t.EventsDone,
		&t.Subject, &t.Source, &t.Rule, &t.Reason, &t.HTTPStatus, &t.RequestID, &t.Excerpt,
		&t.Attempts, &t.Unresolved, &updated)
	t.UpdatedAt = parseTime(updated)
	return t, err
}

// Threads returns every thread by key. Records that could not be read
// at all (key "") are left out: Counts and Failures show them.
func (s *Store) Threads(ctx context.Context) (map[string]Thread, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM threads").Scan(&n); err != nil {
		return nil, s.wrap("list threads", err)
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+threadColumns+" FROM threads WHERE key <> ''")
	if err != nil {
		return nil, s.wrap("list threads", err)
	}
	defer rows.Close()
	out := make(map[string]Thread, n)
	for rows.Next() {
		t, err := scanThread(rows)
		if err != nil {
			return nil, s.wrap("list threads", err)
		}
		out[t.Key] = t
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("list threads", err)
	}
	return out, nil
}

// Resume is what an import needs from the checkpoint to resume, read
// without loading a row it will not use: most threads of a resumed run
// are done, and a done thread only matters if it has grown.
type Resume struct {
	// Done maps each done thread's key to its KeysHash when it was
	// completed ("" when unknown): a done thread whose archive holds
	// exactly those message keys needs no work. One whose keys differ
	// (grown, joined, split) is looked at again. A compact set: a resumed
	// run holds one entry per thread of the archive.
	Done *DoneSet
	// Open holds every other thread by key. Records that could not be read
	// at all (key "") are left out, as in Threads.
	Open map[string]Thread
	// Empty is true when the checkpoint held no thread (but unreadable
	// records) at all.
	Empty bool
}

// Resume reads what an import needs to resume; see the Resume type.
func (s *Store) Resume(ctx context.Context) (*Resume, error) {
	var nDone int // from the state index, to size the set
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM threads WHERE state = 'done'").Scan(&nDone); err != nil {
		return nil, s.wrap("read threads", err)
	}
	r := &Resume{Done: newDoneSet(nDone)}
	// "+state" keeps SQLite off the state index: nearly every thread is
	// done, and a table scan is then cheaper than an index walk.
	if err := s.readDone(ctx, r.Done, "SELECT key, keys_hash FROM threads WHERE +state = 'done' AND key <> ''"); err != nil {
		return nil, err
	}
	r.Done.seal()
	if err := s.readOpen(ctx, r, "+state <> 'done' AND key <> ''"); err != nil {
		return nil, err
	}
	r.Empty = r.Done.Len() == 0 && len(r.Open) == 0
	return r, nil
}

// ResumeFor is Resume with Done holding only the done threads among
// keys: a backfill's archive holds the threads the appended records
// touch, few of the checkpoint's, and reading every done thread would
// cost it time and memory in proportion to the whole archive (issue 15).
// Open and Empty are Resume's.
func (s *Store) ResumeFor(ctx context.Context, keys []string) (*Resume, error) {
	const batch = 500 // bound parameters per query, well under SQLite's limit
	r := &Resume{Done: newDoneSet(0)}
	for len(keys) > 0 {
		n := min(batch, len(keys))
		args := make([]any, n)
		for i, k := range keys[:n] {
			args[i] = k
		}
		q := "SELECT key, keys_hash FROM threads WHERE key IN (?" + strings.Repeat(",?", n-1) + ") AND state = 'done' AND key <> ''"
		if err := s.readDone(ctx, r.Done, q, args...); err != nil {
			return nil, err
		}
		keys = keys[n:]
	}
	r.Done.seal()
	// Two ranges of the state index ("+key": not the key index): a
	// backfill's checkpoint is nearly all done threads, a scan of the
	// table or of another index would read them all.
	if err := s.readOpen(ctx, r, "(state < 'done' OR state > 'done') AND +key <> ''"); err != nil {
		return nil, err
	}
	var any int
	if err := s.db.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM threads WHERE key <> '')").Scan(&any); err != nil {
		return nil, s.wrap("read threads", err)
	}
	r.Empty = any == 0
	return r, nil
}

// readDone adds the done threads q selects (key, keys_hash) to d.
func (s *Store) readDone(ctx context.Context, d *DoneSet, q string, args ...any) error {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return s.wrap("read done threads", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, h string
		if err := rows.Scan(&k, &h); err != nil {
			return s.wrap("read done threads", err)
		}
		d.add(k, h)
	}
	if err := rows.Err(); err != nil {
		return s.wrap("read done threads", err)
	}
	return nil
}

// readOpen reads the threads where selects (every thread not done with
// a key, in a form the query planner uses well) into r.Open.
func (s *Store) readOpen(ctx context.Context, r *Resume, where string) error {
	r.Open = map[string]Thread{}
	rows, err := s.db.QueryContext(ctx, "SELECT "+threadColumns+" FROM threads WHERE "+where)
	if err != nil {
		return s.wrap("read threads", err)
	}
	defer rows.Close()
	for rows.Next() {
		t, err := scanThread(rows)
		if err != nil {
			return s.wrap("read threads", err)
		}
		r.Open[t.Key] = t
	}
	if err := rows.Err(); err != nil {
		return s.wrap("read threads", err)
	}
	return nil
}

// MessageCount returns how many distinct messages the checkpoint knows of
// a thread (any state); 0 for an unknown thread.
func (s *Store) MessageCount(ctx context.Context, key string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM messages m JOIN threads t ON t.id = m.thread_id
		WHERE t.key = ? AND t.key <> ''`, key).Scan(&n)
	if err != nil {
		return 0, s.wrap(fmt.Sprintf("count messages of %q", key), err)
	}
	return n, nil
}

// LastDone returns the latest UpdatedAt of a done thread; zero when none.
func (s *Store) LastDone(ctx context.Context) (time.Time, error) {
	var last sql.NullString
	if err := s.db.QueryRowContext(ctx, "SELECT max(updated_at) FROM threads WHERE state = 'done'").Scan(&last); err != nil {
		return time.Time{}, s.wrap("read the last done thread", err)
	}
	if !last.Valid {
		return time.Time{}, nil
	}
	return parseTime(last.String), nil
}

// Thread returns one thread; false when the store has no such key.
func (s *Store) Thread(ctx context.Context, key string) (Thread, bool, error) {
	if key == "" {
		return Thread{}, false, nil
	}
	t, err := scanThread(s.db.QueryRowContext(ctx, "SELECT "+threadColumns+" FROM threads WHERE key = ? AND key <> ''", key))
	if errors.Is(err, sql.ErrNoRows) {
		return Thread{}, false, nil
	}
	if err != nil {
		return Thread{}, false, s.wrap(fmt.Sprintf("read thread %q", key), err)
	}
	return t, true, nil
}

// Messages returns a thread's messages in seq order.
func (s *Store) Messages(ctx context.Context, key string) ([]Message, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT m.key, m.seq, m.state, m.source, m.rule, m.reason
		FROM messages m JOIN threads t ON t.id = m.thread_id
		WHERE t.key = ? AND t.key <> '' ORDER BY m.seq, m.key`, key)
	if err != nil {
		return nil, s.wrap(fmt.Sprintf("read messages of %q", key), err)
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		m := Message{ThreadKey: key}
		if err := rows.Scan(&m.Key, &m.Seq, &m.State, &m.Source, &m.Rule, &m.Reason); err != nil {
			return nil, s.wrap(fmt.Sprintf("read messages of %q", key), err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(fmt.Sprintf("read messages of %q", key), err)
	}
	return out, nil
}

// ImportedMessages returns the keys of a thread's imported messages.
func (s *Store) ImportedMessages(ctx context.Context, key string) (map[string]bool, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT m.key FROM messages m JOIN threads t ON t.id = m.thread_id
		WHERE t.key = ? AND t.key <> '' AND m.state = 'imported'`, key)
	if err != nil {
		return nil, s.wrap(fmt.Sprintf("read imported messages of %q", key), err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, s.wrap(fmt.Sprintf("read imported messages of %q", key), err)
		}
		out[k] = true
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(fmt.Sprintf("read imported messages of %q", key), err)
	}
	return out, nil
}

// MessageTotals returns, for every thread, how many distinct messages the
// checkpoint knows (any state). A done thread whose archive now holds more
// message keys than this has grown (a backfill); one that holds no more
// needs no work, without loading a single body.
func (s *Store) MessageTotals(ctx context.Context) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT t.key, count(*) FROM messages m JOIN threads t ON t.id = m.thread_id
		WHERE t.key <> '' GROUP BY t.id`)
	if err != nil {
		return nil, s.wrap("count messages per thread", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return nil, s.wrap("count messages per thread", err)
		}
		out[k] = n
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("count messages per thread", err)
	}
	return out, nil
}

// LastAttempt returns the latest request recorded for a thread; false if
// none was ever recorded.
func (s *Store) LastAttempt(ctx context.Context, key string) (Attempt, bool, error) {
	var a Attempt
	var keys, started, finished string
	err := s.db.QueryRowContext(ctx, `SELECT a.id, a.kind, a.message_keys, a.started_at, a.outcome, a.http_status, a.finished_at
		FROM attempts a JOIN threads t ON t.id = a.thread_id
		WHERE t.key = ? AND t.key <> '' ORDER BY a.id DESC LIMIT 1`, key).
		Scan(&a.ID, &a.Kind, &keys, &started, &a.Outcome, &a.HTTPStatus, &finished)
	if errors.Is(err, sql.ErrNoRows) {
		return Attempt{}, false, nil
	}
	if err != nil {
		return Attempt{}, false, s.wrap(fmt.Sprintf("read last attempt of %q", key), err)
	}
	if err := json.Unmarshal([]byte(keys), &a.MessageKeys); err != nil {
		return Attempt{}, false, s.wrap(fmt.Sprintf("read last attempt of %q", key), err)
	}
	a.StartedAt, a.FinishedAt = parseTime(started), parseTime(finished)
	return a, true, nil
}

// Counts counts threads by state and messages by state. Both are scans
// of an index of (state, key), which holds no other column: about 10 and
// 75 bytes an entry, read once (status at a million messages, issue 15).
func (s *Store) Counts(ctx context.Context) (Counts, error) {
	c := Counts{Threads: make(map[State]int, 6)}
	for _, st := range States() {
		c.Threads[st] = 0
	}
	err := s.countBy(ctx, "count threads", "SELECT state, count(*) FROM threads GROUP BY state", func(st string, n int) {
		c.Threads[State(st)] = n
	})
	if err != nil {
		return Counts{}, err
	}
	err = s.countBy(ctx, "count messages", "SELECT state, count(*) FROM messages GROUP BY state", func(st string, n int) {
		switch st {
		case MessageImported:
			c.Messages.Imported = n
		case MessageRejected:
			c.Messages.Rejected = n
		case MessagePending:
			c.Messages.Pending = n
		case MessageDuplicate:
			c.Messages.Duplicate = n
		}
	})
	if err != nil {
		return Counts{}, err
	}
	return c, nil
}

// countBy runs q, which answers (state, count) rows, and hands each to
// add.
func (s *Store) countBy(ctx context.Context, op, q string, add func(state string, n int)) error {
	rows, err := s.db.QueryContext(ctx, q)
	if err != nil {
		return s.wrap(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return s.wrap(op, err)
		}
		add(st, n)
	}
	if err := rows.Err(); err != nil {
		return s.wrap(op, err)
	}
	return nil
}

// sqlFailures lists failed and rejected threads and rejected messages,
// in the order the threads were first seen (a thread before its
// messages). Both parts read an index of state; only the failure rows
// are sorted.
const sqlFailures = `
		SELECT t.id, -1 AS seq, t.key, '' AS mkey, t.ticket_id, t.state, t.rule, t.reason, t.http_status, t.request_id, t.excerpt, t.source
		FROM threads t WHERE t.state IN ('failed', 'rejected')
		UNION ALL
		SELECT t.id, m.seq, t.key, m.key, t.ticket_id, 'rejected', m.rule, m.reason, 0, '', '', m.source
		FROM messages m JOIN threads t ON t.id = m.thread_id WHERE m.state = 'rejected'
		ORDER BY 1, 2, 4`

// Failures lists failed and rejected threads and rejected messages, in the
// order the threads were first seen (a thread before its messages). It
// holds them all in memory: EachFailure reads them one at a time.
func (s *Store) Failures(ctx context.Context) ([]FailureRecord, error) {
	var out []FailureRecord
	err := s.EachFailure(ctx, 1, func(_ int, f FailureRecord) error {
		out = append(out, f)
		return nil
	})
	return out, err
}

// EachFailure calls fn with each record Failures lists, in the same
// order, one at a time: memory does not grow with the number of
// failures. The records are read passes times (pass 0, 1, ...) from one
// snapshot of the checkpoint, so that a caller can measure them first and
// print them after, and meet the same records each time while an import
// writes. An error from fn stops the reading and is returned as is.
func (s *Store) EachFailure(ctx context.Context, passes int, fn func(pass int, f FailureRecord) error) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return s.wrap("list failures", err)
	}
	defer conn.Close()
	if passes > 1 {
		// In WAL mode a read transaction keeps its snapshot to its end.
		if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
			return s.wrap("list failures", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK") //nolint:errcheck // a read transaction: nothing to undo
	}
	for pass := range passes {
		if err := s.failurePass(ctx, conn, pass, fn); err != nil {
			return err
		}
	}
	return nil
}

// failurePass is one pass of EachFailure.
func (s *Store) failurePass(ctx context.Context, conn *sql.Conn, pass int, fn func(int, FailureRecord) error) error {
	rows, err := conn.QueryContext(ctx, sqlFailures)
	if err != nil {
		return s.wrap("list failures", err)
	}
	defer rows.Close()
	for rows.Next() {
		var f FailureRecord
		var id, seq int64
		if err := rows.Scan(&id, &seq, &f.ThreadKey, &f.MessageKey, &f.TicketID, &f.State, &f.Rule, &f.Reason,
			&f.HTTPStatus, &f.RequestID, &f.Excerpt, &f.Source); err != nil {
			return s.wrap("list failures", err)
		}
		if err := fn(pass, f); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return s.wrap("list failures", err)
	}
	return nil
}

// SaveRun stores the JSON summary of a finished run.
func (s *Store) SaveRun(ctx context.Context, summary []byte) error {
	if !json.Valid(summary) {
		return fmt.Errorf("checkpoint: save run: summary is not valid JSON")
	}
	return s.tx(ctx, "save run", func(ctx context.Context, tx *wtx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO runs (saved_at, summary) VALUES (?, ?)", s.stamp(), string(summary))
		return err
	})
}

// LastRun returns the summary saved by the latest SaveRun, nil when none.
func (s *Store) LastRun(ctx context.Context) ([]byte, error) {
	var summary string
	err := s.db.QueryRowContext(ctx, "SELECT summary FROM runs ORDER BY id DESC LIMIT 1").Scan(&summary)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, s.wrap("read last run", err)
	}
	return []byte(summary), nil
}
