package archive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"strings"
	"sync"
)

// The cold part of the index (issue 15): what only loading a message
// needs (where it is, its size, its content hash, its subject) and
// threading, ordering and keys never read. Past coldBudget it is written
// to spill files, so that the index's memory per message is its hot entry
// and strings only.
//
// coldBudget is small on purpose. A spilled record costs a read of a page
// the OS almost always has cached (a few microseconds, once per message
// loaded, where a load itself takes tens), while every record held costs
// 60 bytes and its subject for the whole run: 8 MiB (half for records,
// half for subjects) keeps archives of up to ~70,000 messages free of any
// disk I/O, and a million-message archive's cold part would be about
// 120 MB of a 256 MiB target.
const (
	coldBudget  = 8 << 20
	coldSize    = 60   // bytes of a record: offset, hash, size, file, subject
	coldBlock   = 1024 // records written to the spill file at once (60 KiB)
	coldPage    = 64   // records read back at once (3.75 KiB)
	coldCachePg = 128  // pages cached (480 KiB), direct-mapped
)

// cold is an envelope's cold part.
type cold struct {
	offset int64
	hash   [32]byte
	size   uint32 // bigSize: in index.sizes
	file   uint32 // an interned string
	// subject is in index.subjects, subjectLen bytes long (when the entry
	// does not hold it: subject threading reads it while threading).
	subject    uint64
	subjectLen uint32
}

func (c *cold) put(b []byte) {
	binary.LittleEndian.PutUint64(b, uint64(c.offset))
	copy(b[8:40], c.hash[:])
	binary.LittleEndian.PutUint32(b[40:], c.size)
	binary.LittleEndian.PutUint32(b[44:], c.file)
	binary.LittleEndian.PutUint64(b[48:], c.subject)
	binary.LittleEndian.PutUint32(b[56:], c.subjectLen)
}

func coldFrom(b []byte) cold {
	c := cold{offset: int64(binary.LittleEndian.Uint64(b))}
	copy(c.hash[:], b[8:40])
	c.size = binary.LittleEndian.Uint32(b[40:])
	c.file = binary.LittleEndian.Uint32(b[44:])
	c.subject = binary.LittleEndian.Uint64(b[48:])
	c.subjectLen = binary.LittleEndian.Uint32(b[56:])
	return c
}

// coldStore holds the cold records, in the order added: the first blocks,
// up to budget bytes, in memory; the blocks after them in the spill file,
// written as each fills; the block being filled in memory. Its records
// hold no pointers. at is safe for concurrent use once adding is done.
type coldStore struct {
	budget int    // bytes of full blocks kept in memory
	dir    string // where the spill file is made; "" is os.TempDir()

	mem     [][]byte // full blocks kept in memory: records 0..len(mem)*coldBlock-1
	spilled int      // records in the spill file, after those of mem
	fill    []byte   // the block being filled: the records after the spilled ones
	spill   *spillFile
}

// spillFile is a spill file and the cache of its pages, page bytes each.
type spillFile struct {
	f    *os.File
	name string // still to remove on close: "" once unlinked
	page int

	mu    sync.Mutex
	pages [coldCachePg]int64 // the page each slot holds, +1 (0: none)
	lens  [coldCachePg]int   // the bytes of it read (the file's last page is short)
	cache []byte             // coldCachePg pages
}

func newColdStore() coldStore { return coldStore{budget: coldBudget / 2} }

// inMem is how many records the memory blocks hold.
func (s *coldStore) inMem() int { return len(s.mem) * coldBlock }

// add appends c; a block filled past the budget goes to the spill file.
func (s *coldStore) add(c *cold) error {
	if s.fill == nil {
		s.fill = make([]byte, 0, coldBlock*coldSize)
	}
	n := len(s.fill)
	s.fill = s.fill[:n+coldSize]
	c.put(s.fill[n:])
	if len(s.fill) < cap(s.fill) {
		return nil
	}
	if (len(s.mem)+1)*cap(s.fill) <= s.budget {
		s.mem = append(s.mem, s.fill)
		s.fill = nil
		return nil
	}
	if s.spill == nil {
		sp, err := newSpillFile(s.dir, coldPage*coldSize)
		if err != nil {
			return fmt.Errorf("the envelope index is past %d MiB and must spill to disk: %w", s.budget>>20, err)
		}
		s.spill = sp
	}
	if _, err := s.spill.f.WriteAt(s.fill, int64(s.spilled)*coldSize); err != nil {
		return fmt.Errorf("spill the envelope index to %s: %w", s.spill.f.Name(), err)
	}
	s.spilled += coldBlock
	s.fill = s.fill[:0]
	return nil
}

// newSpillFile makes the spill file in dir, and unlinks it at once where
// the OS lets an open file be (Unix): it then goes away with the process
// however the process ends.
func newSpillFile(dir string, page int) (*spillFile, error) {
	f, err := os.CreateTemp(dir, "threadlift-index-*.spill")
	if err != nil {
		return nil, err
	}
	sp := &spillFile{f: f, page: page, cache: make([]byte, coldCachePg*page)}
	if os.Remove(f.Name()) != nil {
		sp.name = f.Name() // Windows: removed by close
	}
	return sp, nil
}

// at is record i.
func (s *coldStore) at(i int) (cold, error) {
	if i < s.inMem() {
		j := i % coldBlock * coldSize
		return coldFrom(s.mem[i/coldBlock][j : j+coldSize]), nil
	}
	i -= s.inMem()
	if i >= s.spilled {
		j := (i - s.spilled) * coldSize
		return coldFrom(s.fill[j : j+coldSize]), nil
	}
	if s.spill == nil {
		return cold{}, errors.New("read the envelope index back: the archive is closed")
	}
	var c cold
	if err := s.spill.read(int64(i)*coldSize, coldSize, func(b []byte) { c = coldFrom(b) }); err != nil {
		return cold{}, fmt.Errorf("read the envelope index back from %s (record %d): %w", s.spill.f.Name(), i, err)
	}
	return c, nil
}

// read calls fn with the n bytes at off, read through the cache when
// they are within one page.
func (sp *spillFile) read(off int64, n int, fn func([]byte)) error {
	size := int64(sp.page)
	page := off / size
	if (off+int64(n)-1)/size != page {
		b := make([]byte, n)
		if err := readFull(sp.f, b, off, n); err != nil {
			return err
		}
		fn(b)
		return nil
	}
	slot := int(page % coldCachePg)
	buf := sp.cache[slot*sp.page : (slot+1)*sp.page]
	in := int(off - page*size)
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.pages[slot] != page+1 || sp.lens[slot] < in+n {
		sp.pages[slot] = 0
		k, err := sp.f.ReadAt(buf, page*size)
		if err := enough(k, in+n, err); err != nil {
			return err
		}
		sp.pages[slot], sp.lens[slot] = page+1, k
	}
	fn(buf[in : in+n])
	return nil
}

// readFull reads b from f at off: n bytes, or an error.
func readFull(f *os.File, b []byte, off int64, n int) error {
	k, err := f.ReadAt(b, off)
	return enough(k, n, err)
}

// enough is the error of a read that got k bytes of the n it needs.
func enough(k, n int, err error) error {
	if k >= n {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// close closes and removes the spill file, if any.
func (s *coldStore) close() error {
	sp := s.spill
	if sp == nil {
		return nil
	}
	s.spill = nil
	err := sp.f.Close()
	if sp.name != "" {
		if rerr := os.Remove(sp.name); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
	}
	if err != nil {
		return fmt.Errorf("close the envelope index's spill file: %w", err)
	}
	return nil
}

// textLog holds the cold strings (subjects, which only loading reads
// unless subject threading is on): the first budget bytes in memory, the
// rest appended to a spill file of their own, a buffer at a time. A
// string is named by a reference: its offset in memory, or textInFile
// and its offset in the file.
type textLog struct {
	budget int
	flush  int    // bytes buffered before a write to the file
	dir    string // where the spill file is made; "" is os.TempDir()

	mem     []byte
	spill   *spillFile
	written int64  // bytes in the file
	buf     []byte // the bytes after them, not yet written

	// recent are strings added lately, by hash: a string added again
	// while there takes the same reference (a thread's messages share a
	// subject, often a few messages apart).
	recent [textRecent]struct {
		s   string
		ref uint64
	}
	seed maphash.Seed
}

// A subject longer than coldSubjectMax stays in the entry, interned
// (stored once however many messages have it). The cold part stores a
// subject once per message but for the recent ones: bounding their
// length keeps the spill file smaller than the archive, and the recent
// strings' memory below textRecent KiB.
const (
	textInFile     = 1 << 63
	textFlush      = 64 << 10
	textRecent     = 1024
	textPage       = 4 << 10 // bytes read back at once
	coldSubjectMax = 1 << 10
)

func newTextLog() textLog {
	return textLog{budget: coldBudget / 2, flush: textFlush, seed: maphash.MakeSeed()}
}

// add appends s, unless it is among the recent strings, and returns its
// reference.
func (l *textLog) add(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	r := &l.recent[maphash.String(l.seed, s)%textRecent]
	if r.s == s {
		return r.ref, nil
	}
	ref, err := l.append(s)
	if err == nil {
		r.s, r.ref = strings.Clone(s), ref
	}
	return ref, err
}

// append appends s and returns its reference.
func (l *textLog) append(s string) (uint64, error) {
	if l.spill == nil && len(l.mem)+len(s) <= l.budget {
		ref := uint64(len(l.mem))
		l.mem = append(l.mem, s...)
		return ref, nil
	}
	if l.spill == nil {
		sp, err := newSpillFile(l.dir, textPage)
		if err != nil {
			return 0, fmt.Errorf("the envelope index's subjects are past %d MiB and must spill to disk: %w", l.budget>>20, err)
		}
		l.spill = sp
	}
	ref := textInFile | uint64(l.written+int64(len(l.buf)))
	l.buf = append(l.buf, s...)
	if len(l.buf) >= l.flush {
		if _, err := l.spill.f.WriteAt(l.buf, l.written); err != nil {
			return 0, fmt.Errorf("spill the envelope index's subjects to %s: %w", l.spill.f.Name(), err)
		}
		l.written += int64(len(l.buf))
		l.buf = l.buf[:0]
	}
	return ref, nil
}

// get is the string of ref, n bytes long.
func (l *textLog) get(ref uint64, n uint32) (string, error) {
	if n == 0 {
		return "", nil
	}
	off := int64(ref &^ textInFile)
	switch {
	case ref&textInFile == 0:
		return string(l.mem[off : off+int64(n)]), nil
	case off >= l.written:
		off -= l.written
		return string(l.buf[off : off+int64(n)]), nil
	case l.spill == nil:
		return "", errors.New("read a subject back: the archive is closed")
	}
	var s string
	if err := l.spill.read(off, int(n), func(b []byte) { s = string(b) }); err != nil {
		return "", fmt.Errorf("read a subject back from %s (offset %d): %w", l.spill.f.Name(), off, err)
	}
	return s, nil
}

func (l *textLog) close() error {
	s := coldStore{spill: l.spill}
	l.spill = nil
	return s.close()
}
