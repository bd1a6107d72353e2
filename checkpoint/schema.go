package checkpoint

import (
	"context"
	"database/sql"
)

// applicationID marks a SQLite file as a threadlift checkpoint
// (PRAGMA application_id; "TLFT").
const applicationID = 0x544c4654

// schemaVersion is the PRAGMA user_version this code writes and reads.
const schemaVersion = 4

// migrations[i] upgrades a database at user_version i to i+1. Each runs in
// one transaction together with the user_version bump. Never edit a
// released migration: append a new one.
//
// Schema version 1 (every time is UTC text "2006-01-02T15:04:05.000000Z"):
//
//	threads   one row per thread seen by any run
//	  id                   INTEGER PRIMARY KEY   insertion order = first-seen order
//	  key                  TEXT     thread key (contract §4); '' for a record that could not be read at all
//	  ticket_id            INTEGER  parent ticket, 0 = none
//	  state                TEXT     pending | in_flight | created | done | failed | rejected
//	  side_conversation_id TEXT     '' until the import was acknowledged
//	  events_total         INTEGER  importable messages of the thread at the last run
//	  events_done          INTEGER  messages imported (= its messages in state imported)
//	  subject, source      TEXT     source = FILE@OFFSET or FILE:LINE of its first message
//	  rule, reason, http_status, request_id, excerpt
//	                                why it failed or was rejected ('' / 0 otherwise)
//	  attempts             INTEGER  requests sent since the last retry
//	  unresolved           INTEGER  1: a request was sent and its outcome is unknown
//	                                (look it up on the ticket before sending again)
//	  created_at, updated_at
//	  UNIQUE(key) WHERE key <> '';  UNIQUE(source) WHERE key = ''
//
//	messages  one row per message of a thread
//	  thread_id  INTEGER REFERENCES threads(id)
//	  key        TEXT     message key (contract §4)
//	  seq        INTEGER  chronological position in the thread
//	  state      TEXT     pending | imported | rejected | duplicate
//	  source, rule, reason, side_conversation_id (set when imported), updated_at
//	  PRIMARY KEY (thread_id, key)
//
//	attempts  write-ahead log of every import request, written BEFORE it is sent
//	  id, thread_id, kind ('import' | 'events_import'),
//	  message_keys (JSON array), started_at,
//	  outcome ('' = sent, outcome unknown | ok | failed | reconciled | superseded),
//	  http_status, finished_at
//
//	runs      one row per finished import run
//	  id, saved_at, summary (the --summary JSON)
//
//	thread_messages  VIEW: messages with their thread_key, for sqlite3 users
//
// Schema version 2 adds:
//
//	uploads   one row per attachment uploaded for a message
//	  thread_id, message_key, idx (position in the message's attachments),
//	  attachment_id, name, size, uploaded_at
//	  PRIMARY KEY (thread_id, message_key, idx)
//	  A resume re-uses an upload while it is recent and uploads again once
//	  its token may have expired.
//
// Schema version 3 adds (see run.go and tickets.go):
//
//	threads.keys_hash  TEXT     KeysHash of the thread's message keys when it was last
//	                            completed ('' otherwise): a done thread whose archive
//	                            holds exactly these keys needs no work
//	threads.joined_to  INTEGER  id of the thread row whose side conversation receives
//	                            this thread's new messages (a backfill joined it to an
//	                            earlier imported part); 0 = none
//	INDEX messages_key ON messages(key), INDEX threads_ticket ON threads(ticket_id):
//	                            which rows of a ticket hold a message key
//	meta      one row: the Zendesk account (normalised URL) the checkpoint is used
//	          with, the run generation, whether the last run ended cleanly, and
//	          whether the checkpoint can vouch for every ticket (trusted)
//	vouched   tickets looked up on Zendesk since the checkpoint lost trust:
//	          ticket_id, generation (the run that looked), at
//
// Schema version 4 adds the scan record (see scan.go): what the last
// import's read of the sources found, so that a backfill reads only the
// bytes appended since and threads them against it.
//
//	scan_meta      one row (id 1) when a scan is recorded: state, JSON of the
//	               source files (size, digests of the head and of the bytes
//	               before the end, the last record) and totals
//	scan_threads   id, key, keys_hash: the threads of the recorded scan (keys
//	               may repeat) and the KeysHash of their message keys
//	scan_envelopes seq (position in the archive), thread → scan_threads.id,
//	               data (the envelope, encoded by pipeline/archive)
//	scan_syms      sym (64-bit hash of an id, reference, key or group a
//	               message of the thread mentions), thread: which threads a
//	               new message may link to; a collision only reads one more
//	               thread
//
// Upgrading a version 2 file computes keys_hash of every done thread from
// its messages, and records its last run as clean unless the file's -wal
// held frames when it was opened (a run that did not end cleanly).
var migrations = []string{
	0: `
CREATE TABLE threads (
	id                   INTEGER PRIMARY KEY,
	key                  TEXT    NOT NULL,
	ticket_id            INTEGER NOT NULL DEFAULT 0,
	state                TEXT    NOT NULL CHECK (state IN ('pending','in_flight','created','done','failed','rejected')),
	side_conversation_id TEXT    NOT NULL DEFAULT '',
	events_total         INTEGER NOT NULL DEFAULT 0,
	events_done          INTEGER NOT NULL DEFAULT 0,
	subject              TEXT    NOT NULL DEFAULT '',
	source               TEXT    NOT NULL DEFAULT '',
	rule                 TEXT    NOT NULL DEFAULT '',
	reason               TEXT    NOT NULL DEFAULT '',
	http_status          INTEGER NOT NULL DEFAULT 0,
	request_id           TEXT    NOT NULL DEFAULT '',
	excerpt              TEXT    NOT NULL DEFAULT '',
	attempts             INTEGER NOT NULL DEFAULT 0,
	unresolved           INTEGER NOT NULL DEFAULT 0,
	created_at           TEXT    NOT NULL,
	updated_at           TEXT    NOT NULL
);
CREATE UNIQUE INDEX threads_key ON threads(key) WHERE key <> '';
CREATE UNIQUE INDEX threads_unreadable ON threads(source) WHERE key = '';
CREATE INDEX threads_state ON threads(state);

CREATE TABLE messages (
	thread_id            INTEGER NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
	key                  TEXT    NOT NULL,
	seq                  INTEGER NOT NULL DEFAULT 0,
	state                TEXT    NOT NULL CHECK (state IN ('pending','imported','rejected','duplicate')),
	source               TEXT    NOT NULL DEFAULT '',
	rule                 TEXT    NOT NULL DEFAULT '',
	reason               TEXT    NOT NULL DEFAULT '',
	side_conversation_id TEXT    NOT NULL DEFAULT '',
	updated_at           TEXT    NOT NULL,
	PRIMARY KEY (thread_id, key)
) WITHOUT ROWID;
CREATE INDEX messages_state ON messages(state);

CREATE TABLE attempts (
	id           INTEGER PRIMARY KEY,
	thread_id    INTEGER NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
	kind         TEXT    NOT NULL CHECK (kind IN ('import','events_import')),
	message_keys TEXT    NOT NULL,
	started_at   TEXT    NOT NULL,
	outcome      TEXT    NOT NULL DEFAULT '',
	http_status  INTEGER NOT NULL DEFAULT 0,
	finished_at  TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX attempts_thread ON attempts(thread_id, id);

CREATE TABLE runs (
	id       INTEGER PRIMARY KEY,
	saved_at TEXT NOT NULL,
	summary  TEXT NOT NULL
);

CREATE VIEW thread_messages AS
	SELECT t.key AS thread_key, m.key AS message_key, m.seq, m.state, m.source, m.rule, m.reason,
	       m.side_conversation_id, m.updated_at
	FROM messages m JOIN threads t ON t.id = m.thread_id;
`,
	1: `
CREATE TABLE uploads (
	thread_id     INTEGER NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
	message_key   TEXT    NOT NULL,
	idx           INTEGER NOT NULL,
	attachment_id TEXT    NOT NULL,
	name          TEXT    NOT NULL DEFAULT '',
	size          INTEGER NOT NULL DEFAULT 0,
	uploaded_at   TEXT    NOT NULL,
	PRIMARY KEY (thread_id, message_key, idx)
) WITHOUT ROWID;
`,
	2: `
ALTER TABLE threads ADD COLUMN keys_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE threads ADD COLUMN joined_to INTEGER NOT NULL DEFAULT 0;
CREATE INDEX messages_key ON messages(key);
CREATE INDEX threads_ticket ON threads(ticket_id);

CREATE TABLE meta (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	account    TEXT    NOT NULL DEFAULT '',
	generation INTEGER NOT NULL DEFAULT 0,
	clean      INTEGER NOT NULL DEFAULT 1,
	trusted    INTEGER NOT NULL DEFAULT 1,
	updated_at TEXT    NOT NULL DEFAULT ''
);
INSERT INTO meta (id) VALUES (1);

CREATE TABLE vouched (
	ticket_id  INTEGER PRIMARY KEY,
	generation INTEGER NOT NULL,
	at         TEXT    NOT NULL
) WITHOUT ROWID;
`,
	3: `
CREATE TABLE scan_meta (
	id          INTEGER PRIMARY KEY CHECK (id = 1),
	state       TEXT    NOT NULL,
	recorded_at TEXT    NOT NULL
);
CREATE TABLE scan_threads (
	id        INTEGER PRIMARY KEY,
	key       TEXT    NOT NULL,
	keys_hash TEXT    NOT NULL
);
CREATE INDEX scan_threads_key ON scan_threads(key);
CREATE TABLE scan_envelopes (
	seq    INTEGER PRIMARY KEY,
	thread INTEGER NOT NULL,
	data   BLOB    NOT NULL
);
CREATE INDEX scan_envelopes_thread ON scan_envelopes(thread);
CREATE TABLE scan_syms (
	sym    INTEGER NOT NULL,
	thread INTEGER NOT NULL,
	PRIMARY KEY (sym, thread)
) WITHOUT ROWID;
CREATE INDEX scan_syms_thread ON scan_syms(thread);
`,
}

// migrationStep returns the Go part of the migration from version v to
// v+1, run after its SQL in the same transaction; nil when there is none.
func migrationStep(v int) func(context.Context, *Store, *sql.Tx) error {
	if v == 2 {
		return upgradeTo3
	}
	return nil
}

// upgradeTo3 computes keys_hash of every done thread (so that a resumed
// import skips it without loading it) and records whether the last run
// of an upgraded checkpoint ended cleanly: it did not when the -wal held
// frames when Open found it.
func upgradeTo3(ctx context.Context, s *Store, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT t.id, m.key, m.state FROM threads t JOIN messages m ON m.thread_id = t.id
		WHERE t.state = 'done' AND t.key <> '' ORDER BY t.id`)
	if err != nil {
		return err
	}
	type done struct {
		id   int64
		hash string
	}
	var hashes []done
	var cur int64
	var keys []string
	complete := true
	flush := func() {
		if cur != 0 && complete {
			hashes = append(hashes, done{cur, KeysHash(keys)})
		}
		keys, complete = keys[:0], true
	}
	for rows.Next() {
		var id int64
		var key, state string
		if err := rows.Scan(&id, &key, &state); err != nil {
			rows.Close()
			return err
		}
		if id != cur {
			flush()
			cur = id
		}
		keys = append(keys, key)
		if state == MessagePending {
			complete = false // left for the next import to finish
		}
	}
	flush()
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	stmt, err := tx.PrepareContext(ctx, "UPDATE threads SET keys_hash = ? WHERE id = ?")
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, d := range hashes {
		if _, err := stmt.ExecContext(ctx, d.hash, d.id); err != nil {
			return err
		}
	}
	_, err = tx.ExecContext(ctx, "UPDATE meta SET clean = ? WHERE id = 1", !s.walFrames)
	return err
}
