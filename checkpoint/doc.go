// Package checkpoint owns the embedded store of every thread's state
// (contract §6): a SQLite file (modernc.org/sqlite, pure Go) in WAL mode
// with synchronous=FULL, so that every write is durable when the method
// returns and a run killed at any moment (SIGKILL included) resumes with
// every thread and every event imported exactly once.
//
// # Runs and the lock
//
// Open (for writing) takes an exclusive flock(2) on PATH.lock, which holds
// the pid of its holder; a second writer gets ErrLocked. The kernel drops
// the lock when the process dies, however it dies. Open with
// Options{ReadOnly: true} takes no lock: status and failures can read
// while an import runs.
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
//
// Register never moves a thread backwards: in_flight, created, done and
// failed threads keep their state; an imported message stays imported.
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
// corrupt file fails Check and every write with ErrUnusable.
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
// before sending again.
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
// ProbePath checks, writing nothing, that a run could use a path (its
// folder writable, the lock free): for threadlift check.
//
// # Schema (PRAGMA user_version = 1, application_id = 0x544c4654 "TLFT")
//
// For operators with sqlite3; every time is UTC text.
//
//	threads(id INTEGER PRIMARY KEY, key, ticket_id, state, side_conversation_id,
//	        events_total, events_done, subject, source, rule, reason,
//	        http_status, request_id, excerpt, attempts, unresolved,
//	        created_at, updated_at)
//	        key is unique; key '' marks a record that could not be read at
//	        all (one row per source location)
//	messages(thread_id → threads.id, key, seq, state, source, rule, reason,
//	         side_conversation_id, updated_at; PRIMARY KEY (thread_id, key))
//	attempts(id, thread_id → threads.id, kind, message_keys JSON, started_at,
//	         outcome, http_status, finished_at)
//	runs(id, saved_at, summary JSON)
//	thread_messages: view of messages with their thread_key
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
