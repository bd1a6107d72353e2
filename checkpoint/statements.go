package checkpoint

// The statements of the write path that run for every thread, prepared
// once at Open (see prepare). A statement used with exec, queryRow or stmt
// but missing from hotStatements still works; it is compiled each time.
const (
	sqlBegin      = "BEGIN IMMEDIATE"
	sqlCommit     = "COMMIT"
	sqlRollback   = "ROLLBACK"
	sqlSavepoint  = "SAVEPOINT w"
	sqlRelease    = "RELEASE w"
	sqlRollbackTo = "ROLLBACK TO w"

	// The literal "key <> ''" / "key = ''" terms let SQLite use the
	// partial unique indexes. CAST(? AS TEXT) rather than a bare "?":
	// with "key = ?" SQLite recompiles the prepared statement whenever a
	// new key is bound (it propagates the parameter into "key <> ''"),
	// which costs as much as not preparing it at all.
	sqlThreadByKey = "SELECT id, state, side_conversation_id, unresolved FROM threads WHERE key = CAST(? AS TEXT) AND key <> ''"

	sqlRegisterByKey = `SELECT id, state, side_conversation_id, unresolved, ticket_id FROM threads WHERE key = CAST(? AS TEXT) AND key <> ''`
	sqlRegisterBad   = `SELECT id, state, side_conversation_id, unresolved, ticket_id FROM threads
		WHERE key = '' AND source = ?`
	sqlInsertThread = `INSERT INTO threads
		(key, ticket_id, state, events_total, subject, source, rule, reason, excerpt, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlRevalidateThread = `UPDATE threads SET ticket_id = ?, state = ?, events_total = ?, subject = ?,
		source = ?, rule = ?, reason = ?, excerpt = ?, http_status = 0, request_id = '', updated_at = ? WHERE id = ?`
	sqlKeepThread = `UPDATE threads SET events_total = ?, subject = ?, source = ?, updated_at = ? WHERE id = ?`
	// A new thread registered directly in flight (RegisterInFlight); no row
	// changed when the key is known. (Not RETURNING id: SQLite builds a
	// temporary table for it at each execution.)
	sqlInsertInFlight = `INSERT INTO threads
		(key, ticket_id, state, events_total, subject, source, attempts, unresolved, created_at, updated_at)
		VALUES (?, ?, 'in_flight', ?, ?, ?, 1, 1, ?, ?)
		ON CONFLICT (key) WHERE key <> '' DO NOTHING`

	sqlMessageState     = "SELECT state FROM messages WHERE thread_id = ? AND key = ?"
	sqlSupersedeAttempt = `UPDATE attempts SET outcome = 'superseded', finished_at = ? WHERE thread_id = ? AND outcome = ''`
	sqlInsertAttempt    = `INSERT INTO attempts (thread_id, kind, message_keys, started_at) VALUES (?, ?, ?, ?)`
	sqlSetInFlight      = `UPDATE threads SET state = 'in_flight', attempts = attempts + 1, unresolved = 1, updated_at = ? WHERE id = ?`

	sqlImportMessage = `INSERT INTO messages (thread_id, key, state, side_conversation_id, updated_at)
		VALUES (?, ?, 'imported', ?, ?)
		ON CONFLICT (thread_id, key) DO UPDATE SET state = 'imported', rule = '', reason = '',
			side_conversation_id = excluded.side_conversation_id, updated_at = excluded.updated_at
		WHERE messages.state <> 'imported'`
	sqlCountImported = `UPDATE threads SET side_conversation_id = ?1,
		events_done = (SELECT count(*) FROM messages WHERE thread_id = ?2 AND state = 'imported'), updated_at = ?3
		WHERE id = ?2`
	sqlAttemptOK  = `UPDATE attempts SET outcome = 'ok', finished_at = ? WHERE thread_id = ? AND outcome = ''`
	sqlSetCreated = `UPDATE threads SET side_conversation_id = ?1,
		events_done = (SELECT count(*) FROM messages WHERE thread_id = ?2 AND state = 'imported'),
		state = ?3, unresolved = 0, rule = '', reason = '', http_status = 0, request_id = '', excerpt = '', updated_at = ?4,
		keys_hash = CASE WHEN ?5 <> '' THEN ?5 ELSE keys_hash END
		WHERE id = ?2`
	sqlSetDone = `UPDATE threads SET state = 'done', updated_at = ?1, keys_hash = CASE WHEN ?3 <> '' THEN ?3 ELSE keys_hash END WHERE id = ?2`

	// sqlUpsertMessage is messageUpsert(1), the upsert of one registered
	// message (TestUpsertMessageStatement).
	sqlUpsertMessage = `INSERT INTO messages (thread_id, key, seq, state, source, rule, reason, updated_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (thread_id, key) DO UPDATE SET
		seq = excluded.seq,
		source = excluded.source,
		state = CASE WHEN messages.state = 'imported' THEN 'imported' ELSE excluded.state END,
		rule = CASE WHEN messages.state = 'imported' THEN messages.rule ELSE excluded.rule END,
		reason = CASE WHEN messages.state = 'imported' THEN messages.reason ELSE excluded.reason END,
		updated_at = excluded.updated_at`

	sqlRecordUpload = `INSERT INTO uploads (thread_id, message_key, idx, attachment_id, name, size, uploaded_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (thread_id, message_key, idx) DO UPDATE SET
			attachment_id = excluded.attachment_id, name = excluded.name, size = excluded.size, uploaded_at = excluded.uploaded_at`
)

// hotStatements lists the statements prepared at Open; messageUpsert(1)
// is the upsert of one registered message.
func hotStatements() []string {
	return []string{
		sqlBegin, sqlCommit, sqlRollback, sqlSavepoint, sqlRelease, sqlRollbackTo,
		sqlThreadByKey,
		sqlRegisterByKey, sqlRegisterBad, sqlInsertThread, sqlInsertInFlight, sqlRevalidateThread, sqlKeepThread, sqlUpsertMessage,
		sqlMessageState, sqlSupersedeAttempt, sqlInsertAttempt, sqlSetInFlight,
		sqlImportMessage, sqlCountImported, sqlAttemptOK, sqlSetCreated, sqlSetDone,
		sqlRecordUpload,
	}
}
