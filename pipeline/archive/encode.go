package archive

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/fnv"
	"strings"
	"time"

	"github.com/threadlift/threadlift/sources"
)

// The scan record's encoding of an envelope (see record.go): varints and
// length-prefixed strings, a content key "sha256:…" as its 32 bytes. The
// file name is not stored: it is the source's (Source.File), named by
// the source's index. A date keeps its instant, offset and zone name.

// encodingVersion changes whenever the encoding does: a record written
// with another one is not used (it is part of the options digest).
const encodingVersion = "1"

const (
	encHasDate = 1 << iota
	encDateUTC
	encHashKey
)

type encoder struct{ b []byte }

func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }

// encodeEnvelope encodes env, read from source src.
func encodeEnvelope(env *sources.Envelope, src int) []byte {
	e := &encoder{b: make([]byte, 0, 128)}
	var flags uint64
	var hash []byte
	if k, ok := strings.CutPrefix(env.ContentKey, contentKeyPrefix); ok && len(k) == 64 {
		if h, err := hex.DecodeString(k); err == nil && hex.EncodeToString(h) == k {
			flags |= encHashKey
			hash = h
		}
	}
	if !env.Date.IsZero() {
		flags |= encHasDate
		if env.Date.Location() == time.UTC {
			flags |= encDateUTC
		}
	}
	e.uvarint(flags)
	e.uvarint(uint64(src))
	e.varint(env.Loc.Offset)
	e.uvarint(uint64(env.Loc.Line))
	e.varint(env.Size)
	e.str(env.MessageID)
	e.uvarint(uint64(len(env.References)))
	for _, r := range env.References {
		e.str(r)
	}
	if hash != nil {
		e.b = append(e.b, hash...)
	} else {
		e.str(env.ContentKey)
	}
	e.str(env.ThreadID)
	e.str(env.Subject)
	if flags&encHasDate != 0 {
		name, off := env.Date.Zone()
		e.varint(env.Date.Unix())
		e.uvarint(uint64(env.Date.Nanosecond()))
		e.varint(int64(off))
		e.str(name)
	}
	e.str(env.Corrects)
	e.uvarint(uint64(len(env.Issues)))
	for _, is := range env.Issues {
		e.str(string(is.Severity))
		e.str(is.Rule)
		e.str(is.Reason)
	}
	return e.b
}

var errBadEncoding = errors.New("archive: a recorded envelope does not decode")

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errBadEncoding
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errBadEncoding
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(n uint64) []byte {
	if d.err != nil || n > uint64(len(d.b)) {
		d.err = errBadEncoding
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) str() string { return string(d.bytes(d.uvarint())) }

// decodeEnvelope decodes what encodeEnvelope wrote; file names the
// sources by their index.
func decodeEnvelope(b []byte, file func(src int) (string, bool)) (*sources.Envelope, int, error) {
	d := &decoder{b: b}
	env := &sources.Envelope{}
	flags := d.uvarint()
	src := int(d.uvarint())
	env.Loc.Offset = d.varint()
	env.Loc.Line = int(d.uvarint())
	env.Size = d.varint()
	env.MessageID = d.str()
	if n := d.uvarint(); n > 0 && n <= uint64(len(d.b)) {
		env.References = make([]string, n)
		for i := range env.References {
			env.References[i] = d.str()
		}
	}
	if flags&encHashKey != 0 {
		env.ContentKey = contentKeyPrefix + hex.EncodeToString(d.bytes(32))
	} else {
		env.ContentKey = d.str()
	}
	env.ThreadID = d.str()
	env.Subject = d.str()
	if flags&encHasDate != 0 {
		sec, nsec, off := d.varint(), d.uvarint(), d.varint()
		name := d.str()
		t := time.Unix(sec, int64(nsec))
		if flags&encDateUTC != 0 {
			env.Date = t.UTC()
		} else {
			env.Date = t.In(time.FixedZone(name, int(off)))
		}
	}
	env.Corrects = d.str()
	if n := d.uvarint(); n > 0 && n <= uint64(len(d.b)) {
		env.Issues = make([]sources.Issue, n)
		for i := range env.Issues {
			env.Issues[i] = sources.Issue{Severity: sources.Severity(d.str()), Rule: d.str(), Reason: d.str()}
		}
	}
	name, ok := file(src)
	if d.err != nil || len(d.b) != 0 || !ok {
		return nil, 0, errBadEncoding
	}
	env.Loc.File = name
	return env, src, nil
}

// encodeBad encodes an unreadable record of source src.
func encodeBad(re *sources.RecordError, src int) []byte {
	e := &encoder{}
	e.uvarint(uint64(src))
	e.varint(re.Loc.Offset)
	e.uvarint(uint64(re.Loc.Line))
	e.varint(re.Size)
	e.str(string(re.Rule))
	e.str(re.Err.Error())
	return e.b
}

func decodeBad(b []byte, file func(src int) (string, bool)) (Bad, error) {
	d := &decoder{b: b}
	src := int(d.uvarint())
	re := &sources.RecordError{}
	re.Loc.Offset = d.varint()
	re.Loc.Line = int(d.uvarint())
	re.Size = d.varint()
	re.Rule = sources.Rule(d.str())
	re.Err = errors.New(d.str())
	name, ok := file(src)
	if d.err != nil || len(d.b) != 0 || !ok {
		return Bad{}, errBadEncoding
	}
	re.Loc.File = name
	return Bad{Err: re, Src: src}, nil
}

// symOf is the scan record's 64-bit name of an id, reference, message key
// or group: FNV-1a, stable across runs. Two names that collide only make
// an appended scan read one more thread.
func symOf(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// mentions appends the syms of what env names: its id, references, key
// and group. Threads that share none of these are apart in every
// threading (thread.BuildItems links and deduplicates only through them).
func mentions(out []uint64, env *sources.Envelope) []uint64 {
	for _, s := range env.References {
		out = append(out, symOf(s))
	}
	for _, s := range []string{env.MessageID, env.ContentKey, env.ThreadID} {
		if s != "" {
			out = append(out, symOf(s))
		}
	}
	return out
}
