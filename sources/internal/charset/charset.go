package charset

import (
	"bytes"
	"io"
	"mime"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

// Charsets are looked up as go-message's charset package does and decoded
// by golang.org/x/text (every IANA charset including iso-2022-jp,
// shift_jis, gb*, big5). A label it does not know is an unknown charset:
// valid UTF-8 is kept and other bytes are read as windows-1252 (contract
// §9), with a "charset" warning.

func normLabel(label string) string {
	label = strings.ToLower(strings.Trim(strings.TrimSpace(label), `"'`))
	return strings.Map(func(r rune) rune {
		switch r {
		case '-', '_', ' ', ':':
			return -1
		}
		return r
	}, label)
}

// Status says how Decode went.
type Status int

const (
	OK        Status = iota
	Invalid          // declared UTF-8/ASCII (or none) but had other bytes: read as windows-1252
	Unknown          // unknown charset: valid UTF-8 kept, other bytes read as windows-1252
	WrongUTF8        // the bytes are not valid in the declared charset but valid UTF-8: kept as UTF-8
	Lossy            // bytes not valid in the declared charset (nor UTF-8) became U+FFFD
)

// Decode converts b from the charset label to UTF-8.
func Decode(label string, b []byte) (string, Status) {
	return DecodeBuf(label, b, nil)
}

// DecodeBuf is Decode converting legacy charsets in *buf
// (grown as needed and left for the next call) when buf is not nil.
func DecodeBuf(label string, b []byte, buf *[]byte) (string, Status) {
	n := normLabel(label)
	switch n {
	case "", "utf8", "usascii", "ascii", "us", "ansix3.41968", "iso646us", "unicode11utf8", "xunknown", "unknown8bit", "unknown", "default":
		if utf8.Valid(b) {
			return string(b), OK
		}
		return FixUTF8(b), Invalid
	case "utf16", "utf16le", "utf16be", "ucs2":
		out := decodeUTF16(n, b)
		return checkDecoded(out, b)
	}
	if enc := lookupEncoding(strings.ToLower(strings.Trim(strings.TrimSpace(label), `"'`))); enc != nil {
		// b is bounded by max_message_bytes: it is a text part, never an
		// attachment. Twice its size covers most text; where UTF-8 is
		// longer still (windows-1252's 0x80-0x9F take 3 bytes),
		// transform.Append grows the buffer.
		var dst []byte
		if buf != nil && cap(*buf) >= 2*len(b)+16 {
			dst = (*buf)[:0]
		} else {
			dst = make([]byte, 0, 2*len(b)+16)
		}
		out, _, err := transform.Append(enc.NewDecoder(), dst, b)
		if buf != nil && cap(out) <= maxKept {
			*buf = out[:0]
		}
		if err == nil {
			return checkDecoded(string(out), b)
		}
	}
	return FixUTF8(b), Unknown
}

// checkDecoded applies contract §9's test to text decoded from b by a
// declared charset: when the decoder met bytes that are not valid in that
// charset (they became U+FFFD) and b is valid UTF-8, the declaration is
// wrong and b is kept as UTF-8 (a UTF-8 part labelled GB2312, say).
// Otherwise the decoded text stands, lossy or not.
func checkDecoded(out string, b []byte) (string, Status) {
	if !strings.ContainsRune(out, utf8.RuneError) {
		return out, OK
	}
	if utf8.Valid(b) {
		if bytes.Contains(b, []byte("\uFFFD")) && strings.Count(out, "\uFFFD") == bytes.Count(b, []byte("\uFFFD")) {
			return out, OK // the text itself holds U+FFFD, decoded as it was
		}
		return string(b), WrongUTF8
	}
	return out, Lossy
}

// lookupEncoding finds a charset as go-message's charset.Reader does
// (its quirks table, the IANA MIME names, "cs" + the name, the WHATWG
// labels), or returns nil. Converting with the encoding in one call
// rather than through charset.Reader's stream gives the same text
// (TestDecodeCharsetMatchesCharsetReader) without the two 4 KiB buffers a
// stream allocates, for every encoded word of a header too.
func lookupEncoding(label string) encoding.Encoding {
	switch label {
	case "ansi_x3.110-1983": // go-message's quirks
		return charmap.ISO8859_1
	case "x-utf_8j":
		return unicode.UTF8
	}
	if enc, err := ianaindex.MIME.Encoding(label); err == nil && enc != nil {
		return enc
	}
	if enc, err := ianaindex.MIME.Encoding("cs" + label); err == nil && enc != nil {
		return enc
	}
	if enc, err := htmlindex.Get(label); err == nil && enc != nil {
		return enc
	}
	return nil
}

func decodeUTF16(label string, b []byte) string {
	be := label == "utf16be"
	if len(b) >= 2 {
		switch {
		case b[0] == 0xFE && b[1] == 0xFF:
			be, b = true, b[2:]
		case b[0] == 0xFF && b[1] == 0xFE:
			be, b = false, b[2:]
		}
	}
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		if be {
			u = append(u, uint16(b[i])<<8|uint16(b[i+1]))
		} else {
			u = append(u, uint16(b[i+1])<<8|uint16(b[i]))
		}
	}
	return string(utf16.Decode(u))
}

// FixUTF8 keeps valid UTF-8 sequences and reads every other byte as
// windows-1252.
func FixUTF8(b []byte) string {
	var s strings.Builder
	s.Grow(len(b) + len(b)/8)
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size <= 1 {
			s.WriteRune(charmap.Windows1252.DecodeByte(b[0]))
			b = b[1:]
			continue
		}
		s.Write(b[:size])
		b = b[size:]
	}
	return s.String()
}

// WordDecoder returns a mime.WordDecoder for RFC 2047 encoded words whose
// charsets go through Decode; unknown charsets are appended to
// *unknown.
func WordDecoder(unknown *[]string) *mime.WordDecoder {
	return &mime.WordDecoder{CharsetReader: func(cs string, in io.Reader) (io.Reader, error) {
		var b []byte
		var err error
		if l, ok := in.(interface{ Len() int }); ok && l.Len() <= 1<<20 {
			// mime hands over a bytes.Reader: read it in one go rather
			// than from io.ReadAll's 512 bytes up
			b = make([]byte, l.Len())
			_, err = io.ReadFull(in, b)
		} else {
			b, err = io.ReadAll(io.LimitReader(in, 1<<20))
		}
		if err != nil {
			return nil, err
		}
		s, st := Decode(cs, b)
		if st == Unknown && unknown != nil {
			*unknown = append(*unknown, cs)
		}
		return strings.NewReader(s), nil
	}}
}

// DecodeWords decodes the RFC 2047 encoded words of a header value; on a
// malformed word the value is kept as it is. It returns the charsets it did
// not know.
func DecodeWords(v string) (string, []string) {
	if !strings.Contains(v, "=?") {
		return v, nil
	}
	var unknown []string
	out, err := WordDecoder(&unknown).DecodeHeader(v)
	if err != nil {
		return v, nil
	}
	return out, unknown
}

// maxKept is the largest conversion buffer DecodeBuf leaves for
// the next call: text parts are mostly a few KiB, and a rare big one
// should not pin its buffer.
const maxKept = 1 << 20
