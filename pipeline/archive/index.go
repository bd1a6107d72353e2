package archive

import (
	"encoding/hex"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/threadlift/threadlift/mapping/thread"
	"github.com/threadlift/threadlift/sources"
)

// index is the archive's envelopes in compact form. The whole archive's
// envelopes are held while threading and while importing, so their size
// per message is what bounds memory on big archives (issue 7, P2; issue
// 15): a 32-byte entry of what threading, ordering and keys read, the
// message's own id once, and 4 bytes per reference, instead of ~800 bytes
// for a *sources.Envelope whose strings keep whole unfolded header fields
// alive. What only loading a message needs (its location, size, content
// hash and subject) is the cold part (cold.go), which spills to disk past
// a small budget. Every string of the entries is interned once (ids recur
// in the References of every later message of a thread, file names recur
// too). Envelopes are rebuilt on demand by envelope(i) with the same field
// values they were read with; a date keeps its instant and UTC offset,
// and takes the zone name first seen with that offset (nothing prints
// dates but in UTC).
type index struct {
	blocks [][]entry // entries, entryBlock to a block: never copied as they grow
	cold   coldStore // every entry's cold part
	// subjects are the subjects of the cold parts. hotSubjects keeps
	// them in the entries instead, interned: subject threading reads them.
	subjects    textLog
	hotSubjects bool
	n           int         // entries in all
	text        [][]byte    // interned strings' bytes, back to back
	strs        []strRef    // interned strings; strs[0] == ""
	symbols     symbolTable // strings → position in strs, while adding; dropped by seal
	refs        []uint32    // the stored references (refs.go): a count, then the references
	lastOf      []int32     // id → 1 + the last entry with it, while adding; dropped by seal
	scratch     []uint32

	// Rare parts, kept aside so that entries stay small.
	issues   map[int32][]sources.Issue
	keys     map[int32]string         // content keys that are not "sha256:" + 64 hex digits
	idless   map[int32][32]byte       // the hash of an entry with no id and a "sha256:" key: its message key
	zones    map[int32]*time.Location // UTC offset → the zone first seen with it
	offsets  []int32                  // UTC offsets of entry.zone 1..bigZone-1
	zoneOf   map[int32]uint8          // offset → entry.zone
	bigZones map[int32]int32          // entry → its offset, when entry.zone == bigZone
	sizes    map[int32]int64          // entry → its size, when entry.size == bigSize
	nsecs    map[int32]int32          // entry → its Date's nanoseconds, when not 0
	corrects map[int32]string         // Envelope.Corrects of a failures file's records
}

// Nothing the index holds per message is a pointer (but the issues of
// messages that have some): the garbage collector has little to mark in it, so a tight GC memory limit (see
// cmd/threadlift) costs little CPU however many messages there are.
const (
	entryBlock = 8192
	textBlock  = 1 << 20
)

// strRef locates an interned string in index.text.
type strRef struct{ block, off, n uint32 }

// entry is the hot part of one envelope, in 32 bytes; its cold part is
// in index.cold. Strings are positions in index.strs. What rarely needs
// more room than the entry gives it is in the index's rare parts: a size
// of 4 GiB or more, a date's nanoseconds, a 255th distinct UTC offset.
// An entry's references are where refs says (refs.go).
type entry struct {
	sec     int64  // Date, Unix seconds; meaningful when hasDate
	refs    uint32 // its references' count in index.refs, or the entry it is chained to
	id      uint32
	subject uint32
	thread  uint32
	line    int32
	src     uint16 // the reader, in archive.readers
	zone    uint8  // Date's UTC offset: utcZone, or 1 + a position in index.offsets, or bigZone
	flags   uint8
}

const (
	hasDate uint8 = 1 << iota
	hasHash
	hotSubject // entry.subject holds the subject; else the cold part does
	chained    // entry.refs is the entry whose references and id are its references
)

// Values of entry fields that send to the rare parts.
const (
	bigSize = math.MaxUint32
	utcZone = 0 // a Date in time.UTC (not a fixed zone of offset 0)
	bigZone = math.MaxUint8
)

const contentKeyPrefix = "sha256:"

func newIndex() *index {
	return &index{strs: []strRef{{}}, refs: []uint32{0}, symbols: newSymbolTable(), cold: newColdStore(), subjects: newTextLog()}
}

func (x *index) intern(s string) uint32 {
	if s == "" {
		return 0
	}
	h := x.symbols.hash(s)
	slot, n := x.symbols.find(x, h, s)
	if n != 0 {
		return n
	}
	// A copy into the text blocks: s is often a slice of a whole header
	// field, which must not stay alive.
	last := len(x.text) - 1
	if last < 0 || len(x.text[last])+len(s) > cap(x.text[last]) {
		x.text = append(x.text, make([]byte, 0, max(textBlock, len(s))))
		last++
	}
	b := x.text[last]
	ref := strRef{block: uint32(last), off: uint32(len(b)), n: uint32(len(s))}
	x.text[last] = append(b, s...)
	n = uint32(len(x.strs))
	x.strs = append(x.strs, ref)
	x.symbols.put(x, slot, n)
	return n
}

// str returns interned string n. Its bytes are never written again once
// interned, so the string can share them.
func (x *index) str(n uint32) string {
	r := x.strs[n]
	if r.n == 0 {
		return ""
	}
	return unsafe.String(&x.text[r.block][r.off], r.n)
}

// seal drops what is only needed while adding.
func (x *index) seal() {
	x.symbols = symbolTable{}
	x.lastOf, x.scratch = nil, nil
	x.subjects.recent = [textRecent]struct {
		s   string
		ref uint64
	}{}
}

func (x *index) len() int { return x.n }

func (x *index) at(i int) *entry { return &x.blocks[i/entryBlock][i%entryBlock] }

// add appends env, read by reader src, as entry len(). It fails only
// when the cold part cannot spill to disk.
func (x *index) add(env *sources.Envelope, src int) error {
	i := int32(x.n)
	e := entry{
		line:   int32(env.Loc.Line),
		id:     x.intern(env.MessageID),
		thread: x.intern(env.ThreadID), src: uint16(src),
	}
	c := cold{offset: env.Loc.Offset, file: x.intern(env.Loc.File)}
	if err := x.addSubject(&e, &c, env.Subject); err != nil {
		return err
	}
	x.addRefs(&e, env.References)
	if env.Size >= 0 && env.Size < bigSize {
		c.size = uint32(env.Size)
	} else {
		c.size = bigSize
		x.sizes = setRare(x.sizes, i, env.Size)
	}
	if !env.Date.IsZero() {
		e.flags |= hasDate
		e.sec = env.Date.Unix()
		if ns := int32(env.Date.Nanosecond()); ns != 0 {
			x.nsecs = setRare(x.nsecs, i, ns)
		}
		e.zone = x.zone(i, env.Date)
	}
	x.addKey(&e, &c, i, env.ContentKey)
	if env.Corrects != "" {
		x.corrects = setRare(x.corrects, i, env.Corrects)
	}
	if len(env.Issues) > 0 {
		x.issues = setRare(x.issues, i, env.Issues)
	}
	if err := x.cold.add(&c); err != nil {
		return err
	}
	if x.n%entryBlock == 0 {
		x.blocks = append(x.blocks, make([]entry, entryBlock))
	}
	*x.at(x.n) = e
	x.sawID(e.id, x.n)
	x.n++
	return nil
}

// addSubject keeps subject s: in entry e when subject threading reads
// it, or it is longer than coldSubjectMax, else in the cold part c.
func (x *index) addSubject(e *entry, c *cold, s string) error {
	if x.hotSubjects || len(s) > coldSubjectMax {
		e.subject = x.intern(s)
		e.flags |= hotSubject
		return nil
	}
	ref, err := x.subjects.add(s)
	c.subject, c.subjectLen = ref, uint32(len(s))
	return err
}

// addKey keeps entry i's content key k: as a hash in its cold part when k
// is "sha256:" and 64 lower-case hex digits, else in the rare keys. The
// key of a message with no id is its message key, which threading reads:
// its hash is kept hot too.
func (x *index) addKey(e *entry, c *cold, i int32, k string) {
	if h, ok := strings.CutPrefix(k, contentKeyPrefix); ok && len(h) == 2*len(c.hash) {
		if _, err := hex.Decode(c.hash[:], []byte(h)); err == nil && hex.EncodeToString(c.hash[:]) == h {
			e.flags |= hasHash
			if e.id == 0 {
				x.idless = setRare(x.idless, i, c.hash)
			}
			return
		}
		c.hash = [32]byte{}
	}
	if k != "" {
		x.keys = setRare(x.keys, i, k)
	}
}

// setRare sets m[i] = v, making m when nil.
func setRare[V any](m map[int32]V, i int32, v V) map[int32]V {
	if m == nil {
		m = make(map[int32]V)
	}
	m[i] = v
	return m
}

// zone returns entry i's zone field for date d, and keeps the zone of
// its offset when it is the first seen with it.
func (x *index) zone(i int32, d time.Time) uint8 {
	if d.Location() == time.UTC {
		return utcZone
	}
	name, o := d.Zone()
	off := int32(o)
	if x.zones[off] == nil {
		if x.zones == nil {
			x.zones = make(map[int32]*time.Location)
			x.zoneOf = make(map[int32]uint8)
		}
		x.zones[off] = time.FixedZone(name, o)
		if len(x.offsets) < bigZone-1 {
			x.offsets = append(x.offsets, off)
			x.zoneOf[off] = uint8(len(x.offsets))
		}
	}
	if z, ok := x.zoneOf[off]; ok {
		return z
	}
	x.bigZones = setRare(x.bigZones, i, off)
	return bigZone
}

func (x *index) src(i int) int { return int(x.at(i).src) }

func (x *index) size(i int, c *cold) int64 {
	if c.size != bigSize {
		return int64(c.size)
	}
	return x.sizes[int32(i)]
}

func (x *index) messageID(i int) string { return x.str(x.at(i).id) }

// contentKey is entry i's content key, c its cold part.
func (x *index) contentKey(i int, c *cold) string {
	if x.at(i).flags&hasHash != 0 {
		return contentKeyPrefix + hex.EncodeToString(c.hash[:])
	}
	return x.keys[int32(i)]
}

// idlessKey is the content key of entry i, which has no id: kept hot.
func (x *index) idlessKey(i int) string {
	if h, ok := x.idless[int32(i)]; ok {
		return contentKeyPrefix + hex.EncodeToString(h[:])
	}
	return x.keys[int32(i)]
}

// key is the message key, sources.Envelope.Key.
func (x *index) key(i int) string {
	if id := x.messageID(i); id != "" {
		return id
	}
	return x.idlessKey(i)
}

func (x *index) date(i int) time.Time {
	e := x.at(i)
	if e.flags&hasDate == 0 {
		return time.Time{}
	}
	t := time.Unix(e.sec, int64(x.nsecs[int32(i)]))
	switch e.zone {
	case utcZone:
		return t.UTC()
	case bigZone:
		return t.In(x.zones[x.bigZones[int32(i)]])
	}
	return t.In(x.zones[x.offsets[e.zone-1]])
}

func (x *index) references(i int) []string {
	refs := x.refsOf(i)
	if len(refs) == 0 {
		return nil
	}
	out := make([]string, len(refs))
	for j, r := range refs {
		out[j] = x.str(r)
	}
	return out
}

// envelope rebuilds entry i as the reader returned it, with Seq = i. It
// fails only when its cold part cannot be read back from disk.
func (x *index) envelope(i int) (*sources.Envelope, error) {
	c, err := x.cold.at(i)
	if err != nil {
		return nil, err
	}
	e := x.at(i)
	subject := x.str(e.subject)
	if e.flags&hotSubject == 0 {
		if subject, err = x.subjects.get(c.subject, c.subjectLen); err != nil {
			return nil, err
		}
	}
	return &sources.Envelope{
		Loc:  sources.Location{File: x.str(c.file), Offset: c.offset, Line: int(e.line)},
		Size: x.size(i, &c), Seq: i,
		MessageID: x.str(e.id), References: x.references(i), ContentKey: x.contentKey(i, &c),
		ThreadID: x.str(e.thread), Subject: subject, Date: x.date(i),
		Corrects: x.corrects[int32(i)],
		Issues:   x.issues[int32(i)],
	}, nil
}

// close removes what the index holds on disk.
func (x *index) close() error { return errors.Join(x.cold.close(), x.subjects.close()) }

// threadItems is the index as thread.BuildItems reads it: ids,
// references and groups are the index's own symbols, so threading copies
// nothing per message but the references of chained entries (refs.go).
//
// An envelope in skip (one a failures file's copy replaces) takes no part
// in threading: it stands alone, with no id, references, group or subject
// and a key of its own, and its one-member thread is dropped afterwards.
type threadItems struct {
	x    *index
	skip map[int]bool
	// seq is each envelope's position in the whole archive, when that is
	// not its index (an appended read, a chunk: since.seq).
	seq []int64
}

var _ thread.Items = threadItems{}

func (t threadItems) Len() int               { return t.x.n }
func (t threadItems) Symbols() int           { return len(t.x.strs) }
func (t threadItems) Name(sym uint32) string { return t.x.str(sym) }
func (t threadItems) Seq(i int) int {
	if t.seq != nil {
		return int(t.seq[i])
	}
	return i
}

func (t threadItems) ID(i int) uint32 {
	if t.skip[i] {
		return 0
	}
	return t.x.at(i).id
}

func (t threadItems) Group(i int) uint32 {
	if t.skip[i] {
		return 0
	}
	return t.x.at(i).thread
}

// Subject is read by subject threading only, for which the index keeps
// subjects hot (index.hotSubjects); else it is "".
func (t threadItems) Subject(i int) string {
	if t.skip[i] {
		return ""
	}
	return t.x.str(t.x.at(i).subject)
}

func (t threadItems) Date(i int) time.Time {
	if t.skip[i] {
		return time.Time{}
	}
	return t.x.date(i)
}

func (t threadItems) Refs(i int) []uint32 {
	if t.skip[i] {
		return nil
	}
	return t.x.refsOf(i)
}

func (t threadItems) Key(i int) string {
	if t.skip[i] {
		return supersededKey(i)
	}
	if t.x.at(i).id != 0 {
		return "" // the id
	}
	return t.x.idlessKey(i)
}

// supersededKey is the threading key of a skipped envelope: no message
// key looks like it.
func supersededKey(i int) string { return "\x00superseded\x00" + strconv.Itoa(i) }
