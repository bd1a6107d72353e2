package checkpoint

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
)

// ErrLocked means another run holds the checkpoint's lock (exit 3).
var ErrLocked = errors.New("checkpoint: locked by another run")

// ErrUnusable means the file is not a threadlift checkpoint that this
// version can use: not a SQLite database, corrupt, written by a newer
// threadlift, or another application's database (exit 3).
var ErrUnusable = errors.New("checkpoint: unusable")

// ErrReadOnly means the checkpoint cannot be written where it is: its
// folder or the file (or its -wal/-shm) is on a read-only file system or
// not writable by this user (exit 3). Unlike ErrUnusable it says nothing
// about the file's content: a good checkpoint must not be deleted for it.
var ErrReadOnly = errors.New("checkpoint: read-only")

// ErrTransition means a state change that would break "every message
// exactly once" was refused: a state moving backwards, a second import of
// a thread that already has a side conversation, a message sent twice.
// It is a programming error in the caller, never a user error.
var ErrTransition = errors.New("checkpoint: invalid state change")

// SQLite's page cache, per connection, counted in threadlift's memory
// budget (256 MiB peak RSS at any archive size, issue 15). modernc's
// allocator rounds each 4 KiB page up to 8 KiB, so a cache costs twice
// its nominal size in RSS once warm: the former 64 MiB on each of two
// connections cost about 130 MiB, and freeing it page by page at Close
// cost status a second.
//
//   - writeCacheKiB, the committer's connection (16 MiB, about 32 MiB of
//     RSS): holds the interior pages of every b-tree up to a few million
//     messages (about 1% of the file's pages) and the leaves that writes
//     meet most (the newest rows of threads, attempts and the write-ahead
//     log's pages); a leaf missed is one read from the OS page cache,
//     microseconds next to a commit's fsync. A batch bigger than the cache
//     (RegisterBatch of 100k threads) spills its dirty pages to the WAL
//     before its commit, which SQLite allows in the middle of a
//     transaction: durability and atomicity are the same, and the bulk
//     registration was measured no slower (BenchmarkRegister100k).
//   - readCacheKiB, every other connection (2 MiB, about 4 MiB of RSS):
//     reads are index lookups, which need the interior pages the OS page
//     cache serves quickly, or scans, which touch each page once and
//     gain nothing from a cache. status and failures stay far under
//     their 64 MiB.
const (
	writeCacheKiB = 16 << 10
	readCacheKiB  = 2 << 10
)

// walCheckpointPages is how many pages the WAL holds before a commit
// copies them back into the main file (SQLite's default is 1,000). A
// commit appends every page it changed to the WAL; each copy back writes
// each distinct page once, and syncs the file. Over 16,384 frames instead
// of 1,000, the pages that every commit changes (the newest rows of
// threads, attempts and messages, the state indexes) are copied once
// instead of sixteen times, and the file is synced a sixteenth as often.
// Measured per request: an import of 100k one-request threads into a new
// checkpoint dirtied 30.1 KB of page cache before, 29.3 KB after (the
// WAL's frames dominate: six or so pages of indexes a request, which only
// the schema can change); into a copy of a checkpoint of 100k threads
// (BenchmarkNewThreadWrites known=100k, 8 writers) 176 KB before, 37 KB
// after, since a kernel with large folios counts a whole folio of a file
// written in one go (a copy, a restore) for each page copied back into
// it; bytes handed to write(2) 39.7 → 38.9 KB. It costs disk only: the
// -wal grows to about 64 MiB during a run (EndRun and Close fold it back
// and truncate it), its -shm to 128 KiB. It changes nothing of what
// survives a crash: a commit is durable once its frames are in the WAL
// and the WAL is synced (synchronous=FULL), whether or not they were
// copied back yet; a run killed with a long WAL replays it at the next
// open (TestKillAnywhere, TestResumeWithRandomBytesInWAL,
// TestResumeFromCopyWithoutWAL).
const walCheckpointPages = 16384

// Options configures Open. The zero value opens for writing.
type Options struct {
	// ReadOnly opens an existing checkpoint for reading only, without the
	// lock: for status and failures while an import runs. A missing file is
	// then an error wrapping fs.ErrNotExist. The integrity check is then
	// the cheap one of check.go, not PRAGMA quick_check.
	ReadOnly bool
	// BusyTimeout is how long a statement waits for a lock held by another
	// connection (a ReadOnly reader, or sqlite3 in a terminal). Default 10s.
	BusyTimeout time.Duration
	// Now returns the time written into the store. Default time.Now.
	Now func() time.Time
	// DeferCheck makes Open return before the integrity check (PRAGMA
	// quick_check, which reads every page) has run: it runs in the
	// background on a connection of its own, so that a caller can read
	// its archive meanwhile. No write starts before it has passed: while
	// it runs, writes wait; once it failed, every write fails with its
	// error. Check waits for the result. Ignored with ReadOnly, and when
	// the schema needs an upgrade (the check then runs first, in Open).
	DeferCheck bool

	// noLock skips the lock, so that a test can open a second writer on a
	// checkpoint and check the defence behind the lock (owner.go).
	noLock bool
}

// Store is an open checkpoint. Its methods are safe for concurrent use.
// Every write is durable when it returns: writes are serialized on one
// connection by a committer goroutine, which runs the writes queued
// meanwhile in one transaction (group commit, see commit.go).
type Store struct {
	path     string
	busy     time.Duration // Options.BusyTimeout
	readOnly bool
	db       *sql.DB
	now      func() time.Time
	w        *wtx // the committer's connection and statements (see prepare)

	// The committer (writable stores only).
	writes    chan *write   // unbuffered: a send is a hand-over to the committer
	closing   chan struct{} // closed by Close: the committer stops
	committed chan struct{} // closed when the committer has returned
	stopOnce  sync.Once
	closeOnce sync.Once

	// The deferred integrity check (Options.DeferCheck); checkDone is nil
	// when Open ran the check itself.
	checkDone   chan struct{} // closed once checkErr is set
	checkErr    error
	checkCancel context.CancelFunc
	// checkedBy says how the file's integrity was established: "" until
	// it was (or when it failed), else checkedBySeal or
	// checkedByQuickCheck. Written before checkDone is closed, or in Open.
	checkedBy string
	// sealBroken is set by the committer once it removed the seal
	// (breakSeal) before its first write.
	sealBroken bool

	mu   sync.Mutex // guards lock and run
	lock *os.File   // the checkpoint file, locked (see Lock); nil if not held
	run  int64      // the generation BeginRun started, 0 when none (Close marks it clean)

	// owned maps a thread's id to the open attempt this Store started for
	// it (see owner.go); the committer's goroutine alone uses it.
	owned    map[int64]int64
	ownedMax int // ownedPruneAt; tests lower it

	// walFrames is true when the -wal file held data when Open found it:
	// the last writer did not close the file (an upgraded checkpoint's
	// last run did not end cleanly).
	walFrames bool
	// emptyFile is true when Open found a 0-byte file: a new checkpoint,
	// or one that lost its content.
	emptyFile bool

	// reads holds the read statements prepared on the read pool.
	readMu sync.Mutex
	reads  map[string]*sql.Stmt
}

// Open opens the checkpoint at path, creating the file (and its folder)
// and the schema if missing, and upgrading an older schema. Unless
// opts.ReadOnly, Open first takes the run lock (see Lock), so a second
// writer fails here with ErrLocked before touching the database. A
// folder or file that cannot be written fails with ErrReadOnly.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: open %s: %w", path, err)
	}
	s := &Store{path: abs, readOnly: opts.ReadOnly, now: opts.Now, ownedMax: ownedPruneAt}
	if s.now == nil {
		s.now = time.Now
	}
	s.busy = opts.BusyTimeout
	if s.busy <= 0 {
		s.busy = 10 * time.Second
	}

	q := url.Values{}
	q.Add("_pragma", s.busyPragma())
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", fmt.Sprintf("cache_size(-%d)", readCacheKiB)) // the committer's connection takes writeCacheKiB in prepare
	if opts.ReadOnly {
		st, err := os.Stat(abs)
		if err != nil {
			return nil, fmt.Errorf("checkpoint: open %s: %w", abs, err)
		}
		if st.IsDir() {
			return nil, fmt.Errorf("%w: open %s: is a directory", ErrUnusable, abs)
		}
		q.Set("mode", "ro")
	} else {
		if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
			return nil, s.openError(err)
		}
		st, err := os.Stat(abs)
		if err == nil && st.IsDir() {
			return nil, fmt.Errorf("%w: open %s: is a directory", ErrUnusable, abs)
		}
		// Looked at before Lock, which creates the file it locks: a 0-byte
		// file found here was there before this run.
		s.emptyFile = err == nil && st.Size() == 0
		if !opts.noLock {
			if err := s.Lock(); err != nil {
				return nil, err
			}
		}
		if st, err := os.Stat(abs + "-wal"); err == nil && st.Size() > 0 {
			s.walFrames = true
		}
		// Commit with fdatasync(2), as SQLite's own Linux builds do: it
		// writes the data and the size, everything a commit needs to be
		// durable, without waiting on the file's timestamps
		// (modernc.org/sqlite keeps fsync unless asked; process-wide, and
		// a no-op where unavailable).
		sqlite.Fdatasync(true)
		q.Set("mode", "rwc")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(FULL)")
		q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", walCheckpointPages))
		q.Set("_txlock", "immediate")
	}
	err = s.openDB(ctx, q, opts.DeferCheck)
	if err != nil && opts.ReadOnly && s.frozen() {
		// A clean checkpoint in a folder this user cannot write (a copy
		// on read-only media, or another user's folder): SQLite cannot
		// create the -shm a WAL reader needs, but with no -wal and no -shm
		// there is no writer, and the file can be read as immutable.
		q.Set("immutable", "1")
		err = s.openDB(ctx, q, false)
	}
	if err != nil {
		return nil, err
	}
	if !s.readOnly {
		s.writes = make(chan *write)
		s.closing = make(chan struct{})
		s.committed = make(chan struct{})
		go s.commitLoop()
	}
	return s, nil
}

// openDB opens the database with the URI parameters q and checks it
// (init). On failure everything is closed again, the lock released.
func (s *Store) openDB(ctx context.Context, q url.Values, deferCheck bool) error {
	db, err := sql.Open("sqlite", s.fileURI(q))
	if err != nil {
		s.unlock()
		return fmt.Errorf("checkpoint: open %s: %w", s.path, err)
	}
	// A writable store keeps one connection for the committer (see
	// prepare) and one for reads; the PRAGMAs of the URI apply to each.
	if s.readOnly {
		db.SetMaxOpenConns(1)
	} else {
		db.SetMaxOpenConns(2)
	}
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	s.db = db
	if err := s.init(ctx, deferCheck); err != nil {
		s.stopCheck()
		s.closeWriter()
		db.Close()
		s.db = nil
		s.unlock()
		// SQLite says "unable to open database file", "disk I/O error" or
		// "attempt to write a readonly database" when it cannot create the
		// -wal and -shm files: tell a read-only place from a damaged file.
		if !s.readOnly {
			if rerr := s.checkWritable(); rerr != nil {
				return rerr
			}
		}
		return err
	}
	return nil
}

// fileURI is the file: URI of the checkpoint with query q: a URI so that
// any character of the path is safe.
func (s *Store) fileURI(q url.Values) string {
	return "file:" + (&url.URL{Path: s.path}).EscapedPath() + "?" + q.Encode()
}

// init checks that the file is a usable checkpoint, migrates it and
// prepares the write statements. With deferCheck (and nothing to
// migrate), the integrity check is started in the background.
func (s *Store) init(ctx context.Context, deferCheck bool) error {
	if err := s.db.PingContext(ctx); err != nil {
		return s.wrapUnusable("open", err)
	}
	var appID, version int
	if err := s.db.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID); err != nil {
		return s.wrapUnusable("open", err)
	}
	if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return s.wrapUnusable("open", err)
	}
	if appID != 0 && appID != applicationID {
		return fmt.Errorf("%w: open %s: another application's SQLite database (application_id %#x)", ErrUnusable, s.path, appID)
	}
	if version > schemaVersion {
		return fmt.Errorf("%w: open %s: schema version %d was written by a newer threadlift (this one knows up to %d)", ErrUnusable, s.path, version, schemaVersion)
	}
	if version == 0 {
		var n int
		if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&n); err != nil {
			return s.wrapUnusable("open", err)
		}
		if n > 0 {
			return fmt.Errorf("%w: open %s: a SQLite database that is not a threadlift checkpoint", ErrUnusable, s.path)
		}
	}
	if err := s.check(ctx, version, deferCheck); err != nil {
		return err
	}
	if s.readOnly {
		if version < schemaVersion {
			if version == 0 {
				return fmt.Errorf("%w: open %s: empty file, no run has used it yet", ErrUnusable, s.path)
			}
			return fmt.Errorf("%w: open %s: schema version %d needs an upgrade; run import once", ErrUnusable, s.path, version)
		}
		return nil
	}
	if err := s.migrate(ctx, version); err != nil {
		return err
	}
	return s.prepare(ctx)
}

// check runs the integrity check of an open (check.go): the cheap one
// when nothing will be written, else the full one, in the background with
// deferCheck unless the schema needs an upgrade first.
func (s *Store) check(ctx context.Context, version int, deferCheck bool) error {
	switch {
	case s.readOnly && version == schemaVersion:
		return s.probe(ctx)
	case deferCheck && !s.readOnly && version == schemaVersion:
		s.startCheck(ctx)
		return nil
	default:
		if s.sealed() {
			s.checkedBy = checkedBySeal
			return nil
		}
		if err := s.quickCheck(ctx, s.db, ""); err != nil {
			return err
		}
		s.checkedBy = checkedByQuickCheck
		return nil
	}
}

// startCheck runs the integrity check in a goroutine, on a read-only
// connection of its own so that the store's connection stays free for
// reads meanwhile. Close cancels it.
func (s *Store) startCheck(ctx context.Context) {
	ctx, s.checkCancel = context.WithCancel(context.WithoutCancel(ctx))
	s.checkDone = make(chan struct{})
	go func() {
		defer close(s.checkDone)
		if s.sealed() {
			s.checkedBy = checkedBySeal
			return
		}
		s.checkErr = s.checkAlone(ctx)
		if s.checkErr == nil {
			s.checkedBy = checkedByQuickCheck
		}
	}()
}

func (s *Store) checkAlone(ctx context.Context) error {
	q := url.Values{}
	q.Set("mode", "ro")
	q.Set("_pragma", s.busyPragma())
	db, err := sql.Open("sqlite", s.fileURI(q))
	if err != nil {
		return s.wrapUnusable("check", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	return s.quickCheck(ctx, db, "")
}

// stopCheck cancels the background check, if any, and waits for it.
func (s *Store) stopCheck() {
	if s.checkDone != nil {
		s.checkCancel()
		<-s.checkDone
	}
}

func (s *Store) busyPragma() string {
	return fmt.Sprintf("busy_timeout(%d)", s.busy.Milliseconds())
}

// Check waits for the integrity check that Open started in the background
// (Options.DeferCheck) and returns its result, an error wrapping
// ErrUnusable when the file is corrupt. It returns nil at once when Open
// ran the check itself.
func (s *Store) Check(ctx context.Context) error {
	if s.checkDone == nil {
		return nil
	}
	select {
	case <-s.checkDone:
		return s.checkErr
	case <-ctx.Done():
		return fmt.Errorf("checkpoint: check %s: %w", s.path, ctx.Err())
	}
}

// quickCheck runs PRAGMA quick_check on db, which reads every page: a
// corrupt file is refused before a run relies on it. With table, it
// checks that table (and its indexes) only.
func (s *Store) quickCheck(ctx context.Context, db *sql.DB, table string) error {
	q := "PRAGMA quick_check"
	if table != "" {
		q = fmt.Sprintf("PRAGMA quick_check(%s)", quoteIdent(table))
	}
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return s.wrapUnusable("check", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return s.wrapUnusable("check", err)
		}
		if line != "ok" && len(problems) < 5 {
			problems = append(problems, strings.ReplaceAll(strings.TrimSpace(line), "\n", " "))
		}
	}
	if err := rows.Err(); err != nil {
		return s.wrapUnusable("check", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: check %s: corrupt: %s%s", ErrUnusable, s.path, strings.Join(problems, "; "), tornHint)
	}
	return nil
}

// migrate brings the schema from version to schemaVersion, one
// transaction per step.
func (s *Store) migrate(ctx context.Context, version int) error {
	for v := version; v < schemaVersion; v++ {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return s.wrapUnusable(fmt.Sprintf("migrate to schema %d", v+1), err)
		}
		stmts := migrations[v]
		if v == 0 {
			stmts += fmt.Sprintf("\nPRAGMA application_id = %d;", applicationID)
		}
		stmts += fmt.Sprintf("\nPRAGMA user_version = %d;", v+1)
		if _, err := tx.ExecContext(ctx, stmts); err != nil {
			tx.Rollback()
			return s.wrapUnusable(fmt.Sprintf("migrate to schema %d", v+1), err)
		}
		if step := migrationStep(v); step != nil {
			if err := step(ctx, s, tx); err != nil {
				tx.Rollback()
				return s.wrapUnusable(fmt.Sprintf("migrate to schema %d", v+1), err)
			}
		}
		if err := tx.Commit(); err != nil {
			return s.wrapUnusable(fmt.Sprintf("migrate to schema %d", v+1), err)
		}
	}
	return nil
}

// Path returns the absolute path of the checkpoint file.
func (s *Store) Path() string { return s.path }

// Close closes the database and releases the lock. Writes queued and not
// yet taken by the committer fail; a batch being committed finishes
// first. A run begun by BeginRun is marked clean, and the WAL is folded
// back into the main file, so a clean shutdown leaves one file that holds
// everything: the .db alone is then a complete copy.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.EndRun(context.Background()) //nolint:errcheck // a failure leaves the file "not clean": safe
		s.stopCommitter()
		s.stopCheck()
		s.closeWriter()
		s.closeReads()
	})
	var err error
	if s.db != nil {
		if !s.readOnly {
			// Best effort: a reader may hold the WAL open.
			s.db.ExecContext(context.Background(), "PRAGMA wal_checkpoint(TRUNCATE)")
		}
		if cerr := s.db.Close(); cerr != nil {
			err = fmt.Errorf("checkpoint: close %s: %w", s.path, cerr)
		}
		s.db = nil
		if err == nil && !s.readOnly && s.checkedBy != "" {
			// Best effort, like the fold above: without a seal the next
			// open runs quick_check.
			s.writeSeal() //nolint:errcheck
		}
	}
	s.unlock()
	return err
}

// wrap adds what was being done to a database error; corruption and "not
// a database" errors also wrap ErrUnusable.
func (s *Store) wrap(op string, err error) error {
	if isUnusable(err) {
		// A read-only open does not check every page (check.go): a
		// damaged page may first be met here.
		return fmt.Errorf("%w: %s: %w%s", ErrUnusable, op, err, tornHint)
	}
	return fmt.Errorf("checkpoint: %s: %w", op, err)
}

// wrapUnusable is wrap for errors met while opening: any database error
// there means the file cannot be used.
func (s *Store) wrapUnusable(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("checkpoint: %s %s: %w", op, s.path, err)
	}
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqliteBusy {
		return fmt.Errorf("checkpoint: %s %s: %w", op, s.path, err)
	}
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("checkpoint: %s %s: %w", op, s.path, err)
	}
	if errors.As(err, &se) && se.Code()&0xff == sqliteCorrupt {
		return fmt.Errorf("%w: %s %s: %w%s", ErrUnusable, op, s.path, err, tornHint)
	}
	return fmt.Errorf("%w: %s %s: %w", ErrUnusable, op, s.path, err)
}

// tornHint ends the error for a corrupt checkpoint: the likely cause, and
// what to do. Nothing is sent from a file that cannot be read.
const tornHint = " (a copy of the .db taken without its -wal while a run was writing, or after it was killed, can be torn like this: " +
	"copy the .db and its -wal together, or the .db alone after a clean end; or move this file away and rebuild it with 'threadlift verify --adopt')"

// SQLite primary result codes used here.
const (
	sqliteBusy    = 5
	sqliteCorrupt = 11
	sqliteNotADB  = 26
)

func isUnusable(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqliteCorrupt, sqliteNotADB:
		return true
	}
	return false
}
