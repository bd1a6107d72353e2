package archive

import (
	"encoding/hex"
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
	blocks  [][]entry         // entries, entryBlock to a block: never copied as they grow
	n       int               // entries in all
	text    [][]byte          // interned strings' bytes, back to back
	strs    []strRef          // interned strings; strs[0] == ""
	symbols map[string]uint32 // strings → position in strs, while adding; dropped by seal
	refs    []uint32          // every entry's references, back to back

	// Rare parts, kept aside so that entries stay small.
	issues   map[int32][]sources.Issue
	keys     map[int32]string // content keys that are not "sha256:" + 64 hex digits
	zones    map[int32]*time.Location
	corrects map[int32]string // Envelope.Corrects of a failures file's records
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

// entry is one envelope. Strings are positions in index.strs.
type entry struct {
	offset  int64
	size    int64
	sec     int64 // Date, Unix seconds; meaningful when hasDate
	hash    [32]byte
	nsec    int32
	zone    int32 // Date's UTC offset in seconds
	line    int32
	refs    uint32 // first reference in index.refs
	nrefs   uint32
	id      uint32
	subject uint32
	thread  uint32
	file    uint32
	src     uint16 // the reader, in archive.readers
	flags   uint8
}

const (
	hasDate uint8 = 1 << iota
	hasHash
)

const contentKeyPrefix = "sha256:"

func newIndex() *index {
	return &index{strs: []strRef{{}}, symbols: map[string]uint32{"": 0}}
}

func (x *index) intern(s string) uint32 {
	if n, ok := x.symbols[s]; ok {
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
	n := uint32(len(x.strs))
	x.strs = append(x.strs, ref)
	x.symbols[x.str(n)] = n
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
	x.symbols = nil
}

func (x *index) len() int { return x.n }

func (x *index) at(i int) *entry { return &x.blocks[i/entryBlock][i%entryBlock] }

// add appends env, read by reader src, as entry len().
func (x *index) add(env *sources.Envelope, src int) {
	i := int32(x.n)
	e := entry{
		offset: env.Loc.Offset, size: env.Size, line: int32(env.Loc.Line),
		id: x.intern(env.MessageID), subject: x.intern(env.Subject),
		thread: x.intern(env.ThreadID), file: x.intern(env.Loc.File), src: uint16(src),
		refs: uint32(len(x.refs)), nrefs: uint32(len(env.References)),
	}
	for _, r := range env.References {
		x.refs = append(x.refs, x.intern(r))
	}
	if !env.Date.IsZero() {
		e.flags |= hasDate
		e.sec, e.nsec = env.Date.Unix(), int32(env.Date.Nanosecond())
		name, off := env.Date.Zone()
		e.zone = int32(off)
		if env.Date.Location() != time.UTC && x.zones[e.zone] == nil {
			if x.zones == nil {
				x.zones = make(map[int32]*time.Location)
			}
			x.zones[e.zone] = time.FixedZone(name, off)
		}
		if env.Date.Location() == time.UTC {
			e.zone = utcZone
		}
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

// utcZone marks a Date in time.UTC (not a fixed zone of offset 0): no real
// offset is this large.
const utcZone = 1 << 30

func (x *index) src(i int) int { return int(x.at(i).src) }

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
	t := time.Unix(e.sec, int64(e.nsec))
	if e.zone == utcZone {
		return t.UTC()
	}
	return t.In(x.zones[e.zone])
}

func (x *index) references(i int) []string {
	e := x.at(i)
	if e.nrefs == 0 {
		return nil
	}
	out := make([]string, e.nrefs)
	for j, r := range x.refs[e.refs : e.refs+e.nrefs] {
		out[j] = x.str(r)
	}
	return out
}

// envelope rebuilds entry i as the reader returned it, with Seq = i.
func (x *index) envelope(i int) *sources.Envelope {
	e := x.at(i)
	return &sources.Envelope{
		Loc:  sources.Location{File: x.str(e.file), Offset: e.offset, Line: int(e.line)},
		Size: e.size, Seq: i,
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
	e := t.x.at(i)
	return t.x.refs[e.refs : e.refs+e.nrefs]
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
