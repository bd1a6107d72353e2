package checkpoint

import (
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strconv"
	"strings"
)

// The seal: what lets a writable open skip PRAGMA quick_check.
//
// quick_check reads and decodes every page: about 2 s on the checkpoint of
// a 400,000-message archive here, and every import waits for it before
// its first write (a nightly backfill's first request waited 2.8 s). Yet
// a file that a clean Close left behind and that nobody touched since is
// the file that was checked, plus what SQLite itself wrote into it. So a
// clean Close of a file whose check passed writes, beside it, the file's
// size and CRC-32C (the seal, <path>-sum), and the next writable open that
// finds the very same bytes, and no WAL to replay, takes that as its check.
// CRC-32C, not a cryptographic hash: the seal guards against accidental
// damage (a disk fault, a torn or partial copy), as Btrfs's data checksums
// do with the same function, not against someone forging a file, and it
// runs at the speed of reading the file: 0.09 s for that 354 MiB
// checkpoint here, where SHA-256 took 0.30 s (and scales with the archive:
// about 1 s against 4 at 5 million messages). Anything else runs
// quick_check as before: a damaged or torn file, a .db copied without the
// seal or restored from a backup, a run killed before its clean end (its
// first write, BeginRun's "not clean" mark, is folded into the .db, so the
// bytes differ; and WAL frames found at open are never taken as sealed).
//
// Byte equality is the whole criterion: a file whose bytes match its seal
// is the file that was checked, whatever happened in between. Removing
// the seal before a run's first write (breakSeal) is only a saving: after
// a killed run, the next open does not read the whole file for a CRC that
// cannot match.
//
// The seal proves the bytes are the ones sealed, nothing more: it is not a
// secret, and nothing trusts it for freshness (that is the meta table's
// clean mark and the ticket probes of run.go).

// sealSuffix names the seal beside the checkpoint.
const sealSuffix = "-sum"

// How a writable open's check passed (Store.checkedBy).
const (
	checkedBySeal       = "seal"
	checkedByQuickCheck = "quick_check"
)

// sealMagic is the seal's first line; another first line is no seal.
const sealMagic = "threadlift checkpoint seal v1 crc32c"

func (s *Store) sealPath() string { return s.path + sealSuffix }

// sealed reports whether the checkpoint file holds exactly the bytes its
// seal describes, with no WAL frames found at open. Any doubt (no seal, a
// read error, another size) is false: quick_check then runs.
func (s *Store) sealed() bool {
	if s.walFrames {
		return false
	}
	b, err := os.ReadFile(s.sealPath())
	if err != nil {
		return false
	}
	size, sum, ok := parseSeal(string(b))
	if !ok {
		return false
	}
	st, err := os.Stat(s.path)
	if err != nil || st.Size() != size {
		return false
	}
	got, n, err := fileCRC(s.path)
	return err == nil && n == size && got == sum
}

// parseSeal reads a seal's size and hex digest.
func parseSeal(text string) (size int64, sum string, ok bool) {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) != 3 || lines[0] != sealMagic {
		return 0, "", false
	}
	sz, found := strings.CutPrefix(lines[1], "size ")
	if !found {
		return 0, "", false
	}
	size, err := strconv.ParseInt(sz, 10, 64)
	if err != nil || size < 0 {
		return 0, "", false
	}
	sum, found = strings.CutPrefix(lines[2], "crc32c ")
	if !found || len(sum) != 2*crc32.Size {
		return 0, "", false
	}
	return size, sum, true
}

// fileCRC returns the CRC-32C of the file at path, in hex, and its size.
func fileCRC(path string) (sum string, n int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	// MakeTable returns the same table every time for Castagnoli, and its
	// CRC runs on the CPU's own instruction where there is one.
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	n, err = io.Copy(h, f)
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// writeSeal seals the checkpoint file as it is now. Close calls it once
// the database is closed, the WAL folded and removed, and while the lock
// is still held, and only when the file's check passed. A seal that cannot
// be written only costs the next open a quick_check: it is written to a
// temporary file and renamed, so a half-written seal is never found.
func (s *Store) writeSeal() error {
	if st, err := os.Stat(s.path + "-wal"); err == nil && st.Size() > 0 {
		// A reader (sqlite3 in a terminal) kept the WAL: the .db alone is
		// not the database.
		return nil
	}
	sum, n, err := fileCRC(s.path)
	if err != nil {
		return fmt.Errorf("checkpoint: seal %s: %w", s.path, err)
	}
	text := fmt.Sprintf("%s\nsize %d\ncrc32c %s\n", sealMagic, n, sum)
	tmp := s.sealPath() + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		return fmt.Errorf("checkpoint: seal %s: %w", s.path, err)
	}
	if err := os.Rename(tmp, s.sealPath()); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("checkpoint: seal %s: %w", s.path, err)
	}
	return nil
}

// breakSeal removes the seal before a run's first write: from then on,
// until a clean Close seals it again, the file is not the one sealed.
// Best effort: a seal left behind only costs the next open a CRC that
// does not match (see the top of this file).
func (s *Store) breakSeal() {
	os.Remove(s.sealPath()) //nolint:errcheck
}
