package header

import (
	"bufio"
	"bytes"
	nettextproto "net/textproto"
	"strings"
	"unicode/utf8"

	"github.com/threadlift/threadlift/sources/internal/charset"
)

// FromBuffer reads the header block from what br holds, when it
// holds all of it and the blank line after it (ok; br is left after the
// blank line), and otherwise consumes nothing. It gives what
// ReadBlock, Parse and Repaired give
// (FuzzHeaderFromBuffer) without copying the block and then each value
// before making the values: Next already read this header once, and
// reading it again was a good part of Load.
//
// Line ends need no care: Parse trims the CRs before each LF,
// and a line that is blank only once its CRs are trimmed ("\r\r\n") does
// not end the block for ReadBlock, nor here.
func FromBuffer(br *bufio.Reader) (Header, bool) {
	b, _ := br.Peek(br.Buffered())
	end, next := -1, 0 // where the blank line starts, and after it
	for off := 0; off < len(b); {
		nl := bytes.IndexByte(b[off:], '\n')
		if nl < 0 {
			break // a line is not all buffered, or the header ends the record: the slow path
		}
		if nl == 0 || (nl == 1 && b[off] == '\r') {
			end, next = off, off+nl+1
			break
		}
		off += nl + 1
	}
	if end < 0 {
		return nil, false
	}
	h := make(Header, 0, bytes.Count(b[:end], []byte("\n"))) // at most a field a line
	var key string
	var segs [][]byte // the value's lines: first the text after the colon
	var stack [8][]byte
	flush := func() {
		if key != "" {
			h = append(h, Field{Key: key, Value: unfoldLines(segs)})
		}
	}
	for block := b[:end]; len(block) > 0; {
		nl := bytes.IndexByte(block, '\n') // every line of block ends with one
		line := bytes.TrimRight(block[:nl], "\r")
		block = block[nl+1:]
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			if key == "" {
				return nil, false // continues no field: ParseRepair decides
			}
			segs = append(segs, line)
			continue
		}
		i := bytes.IndexByte(line, ':')
		if i < 0 || !validKey(bytes.TrimRight(line[:i], " \t")) {
			return nil, false // not a field: ParseRepair decides where its text goes
		}
		flush()
		key = nettextproto.CanonicalMIMEHeaderKey(string(bytes.TrimRight(line[:i], " \t")))
		segs = append(stack[:0], line[i+1:])
	}
	flush()
	br.Discard(next)
	return h, true
}

// unfoldLines is Repaired's value of a field whose value is lines
// joined with LFs: each line made UTF-8 (the raw 8-bit bytes of a line
// that is not UTF-8 read as windows-1252; a UTF-8 sequence cannot span a
// line end, so line by line is as the whole value at once) and trimmed of
// spaces and tabs, the empty ones left out, joined with one space.
func unfoldLines(lines [][]byte) string {
	if len(lines) == 1 {
		l := trimSpaceTab(lines[0])
		if !bytesASCII(l) && !utf8.Valid(l) {
			return charset.FixUTF8(l)
		}
		return string(l)
	}
	var b strings.Builder
	for _, l := range lines {
		l = trimSpaceTab(l)
		if len(l) == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		if !bytesASCII(l) && !utf8.Valid(l) {
			b.WriteString(charset.FixUTF8(l))
		} else {
			b.Write(l)
		}
	}
	return b.String()
}

func bytesASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// Header is a message's header, each field as go-message's
// textproto.ReadHeader reads it from the repaired header block: the
// fields are already split and their keys checked and canonical, so
// writing them back out to parse them again (and keeping what
// textproto.Header keeps to write them out unchanged) was wasted work.
type Header []Field

type Field struct {
	Key   string // canonical
	Value string // unfolded as go-message does
}

// Get returns the value of the first field named key, or "".
func (h *Header) Get(key string) string {
	key = nettextproto.CanonicalMIMEHeaderKey(key)
	for _, f := range *h {
		if f.Key == key {
			return f.Value
		}
	}
	return ""
}

// Values returns the values of every field named key, in order.
func (h *Header) Values(key string) []string {
	key = nettextproto.CanonicalMIMEHeaderKey(key)
	var out []string
	for _, f := range *h {
		if f.Key == key {
			out = append(out, f.Value)
		}
	}
	return out
}

// Has reports whether a field is named key.
func (h *Header) Has(key string) bool {
	key = nettextproto.CanonicalMIMEHeaderKey(key)
	for _, f := range *h {
		if f.Key == key {
			return true
		}
	}
	return false
}

// Repaired makes raw 8-bit bytes of the fields UTF-8 and unfolds
// their values.
func Repaired(fields []RawField) Header {
	h := make(Header, len(fields))
	for i, f := range fields {
		v := f.Value
		if !bytesASCII(v) && !bytesValidUTF8(v) {
			v = []byte(charset.FixUTF8(v))
		}
		h[i] = Field{Key: f.Key, Value: unfoldValue(v)}
	}
	return h
}

// unfoldValue is the value go-message's textproto.ReadHeader reads from a
// field whose value is v written back with each line ending in CRLF (the
// CRs before each line end dropped first): its lines trimmed of spaces and
// tabs, the empty ones left out, joined with one space. (Unfold, for the
// envelope, also trims CRs at both ends: not quite the same.)
func unfoldValue(v []byte) string {
	if bytes.IndexByte(v, '\n') < 0 {
		return string(trimSpaceTab(bytes.TrimRight(v, "\r")))
	}
	var b strings.Builder
	b.Grow(len(v))
	for len(v) > 0 {
		l := v
		if j := bytes.IndexByte(v, '\n'); j >= 0 {
			l, v = v[:j], v[j+1:]
		} else {
			v = nil
		}
		l = trimSpaceTab(bytes.TrimRight(l, "\r"))
		if len(l) == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.Write(l)
	}
	return b.String()
}

func trimSpaceTab(b []byte) []byte { return bytes.Trim(b, " \t") }

func bytesValidUTF8(b []byte) bool { return utf8.Valid(b) }
