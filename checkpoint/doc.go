// Package checkpoint owns the embedded store of every thread's state
// (contract §6): a SQLite file (modernc.org/sqlite, pure Go) in WAL mode
// with synchronous=FULL, so that every write is durable when the method
// returns and a run killed at any moment (SIGKILL included) resumes with
// every thread and every event imported exactly once.
//
// # Runs and the lock
//
// Open (for writing) takes an exclusive lock on the checkpoint file
// itself (flock(2) on Unix, a LockFileEx byte range on Windows), so the
// lock belongs to the file, whatever path names it: a symlink, "..", a
// hard link or a bind mount meet the same lock, and a second writer gets
// ErrLocked, naming the holder's pid on Linux. The kernel drops the lock
// when the process dies, however it dies. Open with Options{ReadOnly:
// true} takes no lock: status and failures can read while an import runs.
//
// Behind the lock, a Store never marks in flight again a thread whose
// open attempt it did not start itself (owner.go): a thread in flight
// from another run is looked up on its ticket first.
//
// A checkpoint whose folder or file cannot be written is refused with
// ErrReadOnly, never ErrUnusable: it is not damaged. A reader opens a
// clean checkpoint in a folder it cannot write (immutable).
//
// # Thread states
//
//	pending ──MarkInFlight──▶ in_flight ──MarkCreated──▶ created ──MarkDone──▶ done
//	   ▲                        │   ▲                     │  ▲                  │
//	   │ Retry (no side conv.)  │   └─────MarkInFlight────┘  └── MarkInFlight ──┘
//	   │                        ▼       (events_import)          (new messages, events_import)
//	 failed ◀──MarkFailed── pending / in_flight / created
//	   └──Retry (side conversation exists)──▶ created
//	rejected ◀──Register / MarkRejected──  pending / in_flight / failed
//	pending  ◀──Register── rejected   (validated again, now valid)
//	created  ◀──Register / Join── done (a new message to send: not done till it is sent)
//
// Register never moves a thread backwards: in_flight, created and failed
// threads keep their state, a done thread stays done unless it gets a
// message to send; an imported message stays imported. Complete (MarkDone,
// MarkCreatedDone) records the KeysHash of the thread's message keys: a
// later import whose archive holds exactly those keys skips the thread
// without loading it (Resume.Done).
//
// # Threads across tickets: joins and splits
//
// A message key is never posted twice to a ticket, whatever thread it
// ends up in (contract §6). Parts finds the rows of a ticket that hold any
// of a thread's message keys (index messages_key, filtered by ticket): a
// backfill may join threads imported separately (a reply that references
// both, a missing root that arrives, subject threading switched on), or a
// thread may split off one (subject threading switched off). Messages
// imported in any part stay where they are; Join registers the others in
// the earliest imported part (by the import attempt that created its side
// conversation; parts found only on the ticket come after), absorbs parts
// never sent (their rows are deleted), and marks the others joined_to it.
// MarkJoinedDone completes a thread whose messages live in another part:
// its row, without side conversation or messages of its own, is done.
//
// # What Zendesk holds: runs, trust and RecordTicket
//
// The checkpoint records the Zendesk account it is used with and refuses
// another (ErrOtherAccount). BeginRun marks the file "not clean" and folds
// that into the main database file before any write of the run; EndRun
// (or Close) marks it clean and folds the WAL back, so that the .db alone
// is complete after a clean end, and any copy of the .db alone taken
// during a run or after a kill says "not clean". A run that starts from a
// file whose last run did not end cleanly cannot tell it from an older
// copy: the checkpoint loses trust (table vouched is emptied), and the
// import looks each ticket up (RecordTicket) before its first write to it;
// tickets looked up are remembered in vouched until trust is lost again.
// A trusted or new checkpoint looks its first tickets up (the import's
// probes); one that holds a threadlift key the checkpoint did not know
// makes it lose trust (Distrust). Trust (verify --adopt) restores it.
//
// RecordTicket records a listing of a ticket: each side conversation under
// the row of its thread key (created when unknown), each message key
// imported there, and every unresolved request of the ticket resolved. It
// says what it found that the checkpoint did not know.
// MarkInFlight refuses a second "import" for a thread that already has a
// side conversation, and refuses to send a message that is not pending:
// those refusals wrap ErrTransition.
//
// # Group commit
//
// Writes are handed to one committer goroutine, which runs every write
// queued meanwhile in one transaction, each in a savepoint of its own,
// and commits once: one fsync for the batch. Each method still returns
// only once its write is durable, and with its own error: a write refused
// (ErrTransition) is rolled back alone. A caller's context is only
// watched until the write's turn in its batch: once started, it runs to
// its end, so an error always means nothing was written. Reads use a second
// connection and do not wait for the committer.
//
// RegisterInFlight (Register + MarkInFlight) and MarkCreatedDone
// (MarkCreated + MarkDone) make a thread of one request cost two writes;
// RegisterInFlight may also carry the previous thread's Completion, which
// makes it one.
//
// Options.DeferCheck lets an import read its archive while PRAGMA
// quick_check runs: no write starts before the check has passed, and a
// corrupt file fails Check and every write with ErrUnusable. A read-only
// open writes nothing and does not read every page: it checks the schema,
// the small tables and both edges of every other table (check.go), and a
// damaged page met by a later read fails it with ErrUnusable. A clean
// Close seals the file (<path>-sum: size and CRC-32C, seal.go); a writable
// open that finds the same bytes and no WAL takes the seal as its check.
//
// # Write-ahead and reconciliation
//
// MarkInFlight is written BEFORE a request is sent, in the attempts table,
// and sets the thread's Unresolved flag. A 2xx is recorded by MarkCreated,
// a definite refusal (4xx other than 408) by MarkFailed/MarkRejected; both
// clear Unresolved. When the process dies in between, or the request timed
// out or got a 5xx, the thread stays Unresolved: the next run must look
// the thread key and message keys (LastAttempt) up on the ticket, then
// record MarkMessagesImported (they landed) or MarkNotSent (they did not)
// before sending again. MarkAnswered notes the status of a 500, 502 or
// 503 on the open attempt: it stays unresolved, but the next run knows
// Zendesk was done with the request and looks it up without first giving
// it time to land.
//
// # Adopting what Zendesk holds
//
// Adopt (threadlift verify --adopt) records what one ticket holds, read
// back from Zendesk, in one transaction: every message found is imported
// with the side conversation holding it, every message the checkpoint
// believed imported but the ticket lacks is pending again, threads take
// the side conversation that carries their key, and open attempts are
// reconciled. It writes the truth rather than following the transitions
// above: it is how a lost, stale or copied checkpoint is rebuilt.
//
// Adopt and RecordTicket both record what a ticket holds, but not the
// same truth, so neither is built on the other: RecordTicket adds a
// listing to what the checkpoint knows (a row for a thread key it did
// not know, each message under the row of the side conversation that
// holds it) and never takes back a message recorded as imported; Adopt
// records the plan's threads as the ticket holds them, and hands back to
// import what the ticket lacks (TestRecordTicket, TestAdopt*). They
// share the statement that closes open attempts (reconcileAttempts).
//
// ProbePath checks, writing nothing, that a run could use a path (its
// folder writable, the lock free): for threadlift check.
//
// # Schema (PRAGMA user_version = 4, application_id = 0x544c4654 "TLFT")
//
// For operators with sqlite3; every time is UTC text. schema.go lists
// every column and the migrations; Open upgrades a version 1, 2 or 3 file.
//
//	threads(id INTEGER PRIMARY KEY, key, ticket_id, state, side_conversation_id,
//	        events_total, events_done, subject, source, rule, reason,
//	        http_status, request_id, excerpt, attempts, unresolved,
//	        created_at, updated_at, keys_hash, joined_to)
//	        key is unique; key '' marks a record that could not be read at
//	        all (one row per source location)
//	messages(thread_id → threads.id, key, seq, state, source, rule, reason,
//	         side_conversation_id, updated_at; PRIMARY KEY (thread_id, key))
//	attempts(id, thread_id → threads.id, kind, message_keys JSON, started_at,
//	         outcome, http_status, finished_at)
//	uploads(thread_id, message_key, idx, attachment_id, name, size, uploaded_at)
//	runs(id, saved_at, summary JSON)
//	meta(account, generation, clean, trusted, updated_at): one row
//	vouched(ticket_id, generation, at): tickets looked up since trust was lost
//	thread_messages: view of messages with their thread_key
//	scan_meta, scan_threads, scan_envelopes, scan_syms: the last scan of
//	        the sources (scan.go), for backfills that read only what was
//	        appended
//
// Examples:
//
//	sqlite3 threadlift.db "SELECT state, count(*) FROM threads GROUP BY state"
//	sqlite3 threadlift.db "SELECT key, reason, source FROM threads WHERE state = 'failed'"
//	sqlite3 threadlift.db "SELECT * FROM thread_messages WHERE thread_key = 'abc@example.com'"
//
// A file that is not a SQLite database, is corrupt, belongs to another
// application or has a newer schema is refused with ErrUnusable. No
// secret is ever stored.
package checkpoint
