package checkpoint

// applicationID marks a SQLite file as a threadlift checkpoint
// (PRAGMA application_id; "TLFT").
const applicationID = 0x544c4654

// schemaVersion is the PRAGMA user_version this code writes and reads.
const schemaVersion = 2

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
}
