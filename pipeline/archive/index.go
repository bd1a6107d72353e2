package archive

import (
	"encoding/hex"
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
// per message is what bounds memory on big archives (issue 7, P2): about
// 100 bytes of entry, the message's own id once, and 4 bytes per
// reference, instead of ~800 bytes for a *sources.Envelope whose strings
// keep whole unfolded header fields alive. Every string is interned once
// (ids recur in the References of every later message of a thread,
// subjects and file names recur too). Envelopes are rebuilt on demand by
// envelope(i) with the same field values they were read with; a date
// keeps its instant and UTC offset, and takes the zone name first seen
// with that offset (nothing prints dates but in UTC).
type index struct {
	blocks  [][]entry   // entries, entryBlock to a block: never copied as they grow
	n       int         // entries in all
	text    [][]byte    // interned strings' bytes, back to back
	strs    []strRef    // interned strings; strs[0] == ""
	symbols symbolTable // strings → position in strs, while adding; dropped by seal
	refs    []uint32    // every entry's references, back to back

	// Rare parts, kept aside so that entries stay small.
	issues   map[int32][]sources.Issue
	keys     map[int32]string         // content keys that are not "sha256:" + 64 hex digits
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

// entry is one envelope, in 80 bytes. Strings are positions in
// index.strs. What rarely needs more room than the entry gives it is in
// the index's rare parts: a size of 4 GiB or more, a date's nanoseconds,
// a 255th distinct UTC offset. An entry's references are refs up to the
// next entry's (the last: to the end of index.refs).
type entry struct {
	offset  int64
	sec     int64 // Date, Unix seconds; meaningful when hasDate
	hash    [32]byte
	size    uint32 // bigSize: in index.sizes
	line    int32
	refs    uint32 // first reference in index.refs
	id      uint32
	subject uint32
	thread  uint32
	file    uint32
	src     uint16 // the reader, in archive.readers
	zone    uint8  // Date's UTC offset: utcZone, or 1 + a position in index.offsets, or bigZone
	flags   uint8
}

const (
	hasDate uint8 = 1 << iota
	hasHash
)

// Values of entry fields that send to the rare parts.
const (
	bigSize = math.MaxUint32
	utcZone = 0 // a Date in time.UTC (not a fixed zone of offset 0)
	bigZone = math.MaxUint8
)

const contentKeyPrefix = "sha256:"

func newIndex() *index {
	return &index{strs: []strRef{{}}, symbols: newSymbolTable()}
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
}

func (x *index) len() int { return x.n }

func (x *index) at(i int) *entry { return &x.blocks[i/entryBlock][i%entryBlock] }

// add appends env, read by reader src, as entry len().
func (x *index) add(env *sources.Envelope, src int) {
	i := int32(x.n)
	e := entry{
		offset: env.Loc.Offset, line: int32(env.Loc.Line),
		id: x.intern(env.MessageID), subject: x.intern(env.Subject),
		thread: x.intern(env.ThreadID), file: x.intern(env.Loc.File), src: uint16(src),
		refs: uint32(len(x.refs)),
	}
	for _, r := range env.References {
		x.refs = append(x.refs, x.intern(r))
	}
	if env.Size >= 0 && env.Size < bigSize {
		e.size = uint32(env.Size)
	} else {
		e.size = bigSize
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
	if k, ok := strings.CutPrefix(env.ContentKey, contentKeyPrefix); ok && len(k) == 2*len(e.hash) {
		if _, err := hex.Decode(e.hash[:], []byte(k)); err == nil && hex.EncodeToString(e.hash[:]) == k {
			e.flags |= hasHash
		}
	}
	if e.flags&hasHash == 0 && env.ContentKey != "" {
		if x.keys == nil {
			x.keys = make(map[int32]string)
		}
		x.keys[i] = env.ContentKey
	}
	if env.Corrects != "" {
		if x.corrects == nil {
			x.corrects = make(map[int32]string)
		}
		x.corrects[i] = env.Corrects
	}
	if len(env.Issues) > 0 {
		if x.issues == nil {
			x.issues = make(map[int32][]sources.Issue)
		}
		x.issues[i] = env.Issues
	}
	if x.n%entryBlock == 0 {
		x.blocks = append(x.blocks, make([]entry, entryBlock))
	}
	*x.at(x.n) = e
	x.n++
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

// refsOf is entry i's references: up to the next entry's first.
func (x *index) refsOf(i int) []uint32 {
	end := uint32(len(x.refs))
	if i+1 < x.n {
		end = x.at(i + 1).refs
	}
	return x.refs[x.at(i).refs:end]
}

func (x *index) size(i int) int64 {
	if e := x.at(i); e.size != bigSize {
		return int64(e.size)
	}
	return x.sizes[int32(i)]
}

func (x *index) messageID(i int) string { return x.str(x.at(i).id) }

func (x *index) contentKey(i int) string {
	e := x.at(i)
	if e.flags&hasHash != 0 {
		return contentKeyPrefix + hex.EncodeToString(e.hash[:])
	}
	return x.keys[int32(i)]
}

// key is the message key, sources.Envelope.Key.
func (x *index) key(i int) string {
	if id := x.messageID(i); id != "" {
		return id
	}
	return x.contentKey(i)
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

// envelope rebuilds entry i as the reader returned it, with Seq = i.
func (x *index) envelope(i int) *sources.Envelope {
	e := x.at(i)
	return &sources.Envelope{
		Loc:  sources.Location{File: x.str(e.file), Offset: e.offset, Line: int(e.line)},
		Size: x.size(i), Seq: i,
		MessageID: x.str(e.id), References: x.references(i), ContentKey: x.contentKey(i),
		ThreadID: x.str(e.thread), Subject: x.str(e.subject), Date: x.date(i),
		Corrects: x.corrects[int32(i)],
		Issues:   x.issues[int32(i)],
	}
}

// threadItems is the index as thread.BuildItems reads it: ids,
// references and groups are the index's own symbols, so threading copies
// nothing per message.
//
// An envelope in skip (one a failures file's copy replaces) takes no part
// in threading: it stands alone, with no id, references, group or subject
// and a key of its own, and its one-member thread is dropped afterwards.
type threadItems struct {
	x    *index
	skip map[int]bool
}

var _ thread.Items = threadItems{}

func (t threadItems) Len() int               { return t.x.n }
func (t threadItems) Symbols() int           { return len(t.x.strs) }
func (t threadItems) Name(sym uint32) string { return t.x.str(sym) }
func (t threadItems) Seq(i int) int          { return i }

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
	return t.x.contentKey(i)
}

// supersededKey is the threading key of a skipped envelope: no message
// key looks like it.
func supersededKey(i int) string { return "\x00superseded\x00" + strconv.Itoa(i) }
