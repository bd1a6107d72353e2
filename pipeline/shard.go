package pipeline

import (
	"fmt"
	"hash/fnv"
	"path/filepath"
	"strconv"
	"strings"
)

// Shard is one part of a migration split over Count processes
// (`threadlift import --shard Index/Count`). Each process imports only the
// threads it owns, into its own checkpoint, at its share of the account's
// rate limits.
//
// A thread belongs to shard ShardOf(ticket id, thread key, Count):
// FNV-1a (64-bit) of the ticket id written in decimal ("12345"), modulo
// Count, so that every write to one ticket comes from one process. A
// thread that maps to no ticket (unmapped or unreadable: ticket id 0)
// belongs to FNV-1a of its thread key, modulo Count. Every thread thus has
// exactly one owner, and the split depends only on Count: it is the same on
// every machine and every run.
//
// The zero value, and any Shard with Count 1, is the whole migration: it
// owns every thread and changes no path or rate.
type Shard struct {
	Index int // 0-based: 0 ≤ Index < Count
	Count int
}

// ParseShard parses "I/N" (0 ≤ I < N, N ≥ 1).
func ParseShard(s string) (Shard, error) {
	i, n, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Shard{}, fmt.Errorf("shard %q: want I/N, e.g. 2/4 (0-based I)", s)
	}
	idx, err1 := strconv.Atoi(i)
	cnt, err2 := strconv.Atoi(n)
	if err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("shard %q: want I/N with whole numbers, e.g. 2/4", s)
	}
	sh := Shard{Index: idx, Count: cnt}
	if cnt < 1 {
		return Shard{}, fmt.Errorf("shard %q: N must be 1 or more", s)
	}
	if err := sh.Check(); err != nil {
		return Shard{}, err
	}
	return sh, nil
}

// Check reports whether 0 ≤ Index < Count and Count ≥ 1 (the zero value
// is valid too: no sharding).
func (s Shard) Check() error {
	if s == (Shard{}) {
		return nil
	}
	if s.Count < 1 {
		return fmt.Errorf("shard %d/%d: N must be 1 or more", s.Index, s.Count)
	}
	if s.Index < 0 || s.Index >= s.Count {
		return fmt.Errorf("shard %d/%d: I is 0-based and must be 0 ≤ I < N (%d..%d)", s.Index, s.Count, 0, s.Count-1)
	}
	return nil
}

// Sharded reports whether s is a part of a split run (Count > 1).
func (s Shard) Sharded() bool { return s.Count > 1 }

// String is "I/N", or "" when not sharded.
func (s Shard) String() string {
	if !s.Sharded() {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}

// Owns reports whether the thread with this ticket id (0: none) and key
// belongs to s.
func (s Shard) Owns(ticketID int64, threadKey string) bool {
	if !s.Sharded() {
		return true
	}
	return ShardOf(ticketID, threadKey, s.Count) == s.Index
}

// ShardOf is the index of the shard, among n, that owns a thread: FNV-1a
// (64-bit) of the decimal ticket id modulo n, or of the thread key when
// ticketID is 0.
func ShardOf(ticketID int64, threadKey string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New64a()
	if ticketID != 0 {
		h.Write([]byte(strconv.FormatInt(ticketID, 10)))
	} else {
		h.Write([]byte(threadKey))
	}
	return int(h.Sum64() % uint64(n))
}

// Path inserts ".shard-I-of-N" before path's extension
// (state/threadlift.db → state/threadlift.shard-2-of-4.db); path itself
// when not sharded.
func (s Shard) Path(path string) string {
	if !s.Sharded() {
		return path
	}
	ext := filepath.Ext(path)
	if ext == filepath.Base(path) { // ".db": a name that is all extension
		ext = ""
	}
	return strings.TrimSuffix(path, ext) + fmt.Sprintf(".shard-%d-of-%d", s.Index, s.Count) + ext
}

// Rate is this shard's share of an account-wide rate limit: limit / Count
// rounded down, at least 1. 0 (no limit) stays 0.
func (s Shard) Rate(limit int) int {
	if !s.Sharded() || limit <= 0 {
		return limit
	}
	return max(1, limit/s.Count)
}

// otherShard reports whether the thread belongs to another shard, and
// counts it if so.
func (im *importer) otherShard(ticketID int64, key string) bool {
	if im.opts.Shard.Owns(ticketID, key) {
		return false
	}
	im.c.otherShards.Add(1)
	return true
}
