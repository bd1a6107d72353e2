package sources

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
	"golang.org/x/text/encoding/charmap"
)

// Charsets are decoded by go-message's charset package (golang.org/x/text
// underneath: every IANA charset including iso-2022-jp, shift_jis, gb*,
// big5). A label it does not know is an unknown charset: valid UTF-8 is
// kept and other bytes are read as windows-1252 (contract §9), with a
// "charset" warning.

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

// decodeStatus says how decodeCharset went.
type decodeStatus int

const (
	decodedOK      decodeStatus = iota
	decodedInvalid              // declared UTF-8/ASCII (or none) but had other bytes: read as windows-1252
	decodedUnknown              // unknown charset: valid UTF-8 kept, other bytes read as windows-1252
)

// decodeCharset converts b from the charset label to UTF-8.
func decodeCharset(label string, b []byte) (string, decodeStatus) {
	n := normLabel(label)
	switch n {
	case "", "utf8", "usascii", "ascii", "us", "ansix3.41968", "iso646us", "unicode11utf8", "xunknown", "unknown8bit", "unknown", "default":
		if utf8.Valid(b) {
			return string(b), decodedOK
		}
		return fixUTF8(b), decodedInvalid
	case "utf16", "utf16le", "utf16be", "ucs2":
		return decodeUTF16(n, b), decodedOK
	}
	if r, err := charset.Reader(strings.ToLower(strings.Trim(strings.TrimSpace(label), `"'`)), bytes.NewReader(b)); err == nil && r != nil {
		// b is bounded by max_message_bytes: it is a text part, never an
		// attachment.
		if out, err := io.ReadAll(r); err == nil {
			return string(out), decodedOK
		}
	}
	return fixUTF8(b), decodedUnknown
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

// fixUTF8 keeps valid UTF-8 sequences and reads every other byte as
// windows-1252.
func fixUTF8(b []byte) string {
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

// wordDecoder returns a mime.WordDecoder for RFC 2047 encoded words whose
// charsets go through decodeCharset; unknown charsets are appended to
// *unknown.
func wordDecoder(unknown *[]string) *mime.WordDecoder {
	return &mime.WordDecoder{CharsetReader: func(cs string, in io.Reader) (io.Reader, error) {
		b, err := io.ReadAll(io.LimitReader(in, 1<<20))
		if err != nil {
			return nil, err
		}
		s, st := decodeCharset(cs, b)
		if st == decodedUnknown && unknown != nil {
			*unknown = append(*unknown, cs)
		}
		return strings.NewReader(s), nil
	}}
}

// decodeWords decodes the RFC 2047 encoded words of a header value; on a
// malformed word the value is kept as it is. It returns the charsets it did
// not know.
func decodeWords(v string) (string, []string) {
	if !strings.Contains(v, "=?") {
		return v, nil
	}
	var unknown []string
	out, err := wordDecoder(&unknown).DecodeHeader(v)
	if err != nil {
		return v, nil
	}
	return out, unknown
}

// unescaper reads an mbox body, removing one '>' from lines matching
// ^>+From (mboxrd; for mboxo files this undoes the ">From " escaping).
type unescaper struct {
	br          *bufio.Reader
	pending     []byte
	atLineStart bool
	err         error
}

func newUnescaper(br *bufio.Reader) *unescaper { return &unescaper{br: br, atLineStart: true} }

func (u *unescaper) Read(p []byte) (int, error) {
	for len(u.pending) == 0 {
		if u.err != nil {
			return 0, u.err
		}
		chunk, err := u.br.ReadSlice('\n')
		if u.atLineStart && len(chunk) > 0 && chunk[0] == '>' {
			j := 0
			for j < len(chunk) && chunk[j] == '>' {
				j++
			}
			if bytes.HasPrefix(chunk[j:], fromPrefix) {
				chunk = chunk[1:]
			}
		}
		u.atLineStart = err != bufio.ErrBufferFull
		if err == bufio.ErrBufferFull {
			err = nil
		}
		u.pending, u.err = chunk, err
	}
	n := copy(p, u.pending)
	u.pending = u.pending[n:]
	return n, nil
}

// base64Reader decodes base64 leniently: characters outside the alphabet
// are skipped and counted, '=' ends a quantum (also in the middle: some
// senders concatenate encoded blocks), and a final partial quantum is
// decoded as far as it goes.
type base64Reader struct {
	src     io.Reader
	in      [4096]byte
	out     []byte
	outBuf  [3*4096/4 + 3]byte
	q       [4]byte
	nq      int
	invalid int  // bytes outside the alphabet (white space not counted)
	partial bool // input ended inside a quantum
	err     error
}

var b64val = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xFF
	}
	const a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(a); i++ {
		t[a[i]] = byte(i)
	}
	return t
}()

func (d *base64Reader) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.err != nil {
			if d.err == io.EOF && d.nq > 0 {
				d.flush()
				d.partial = true
				continue
			}
			return 0, d.err
		}
		n, err := d.src.Read(d.in[:])
		d.out = d.outBuf[:0]
		for _, c := range d.in[:n] {
			v := b64val[c]
			if v == 0xFF {
				switch c {
				case '=':
					if d.nq > 0 {
						d.flush()
					}
				case ' ', '\t', '\r', '\n':
				default:
					d.invalid++
				}
				continue
			}
			d.q[d.nq] = v
			d.nq++
			if d.nq == 4 {
				d.out = append(d.out, d.q[0]<<2|d.q[1]>>4, d.q[1]<<4|d.q[2]>>2, d.q[2]<<6|d.q[3])
				d.nq = 0
			}
		}
		d.err = err
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	return n, nil
}

// flush decodes a partial quantum (2 or 3 characters; 1 carries no byte).
func (d *base64Reader) flush() {
	switch d.nq {
	case 2:
		d.out = append(d.out, d.q[0]<<2|d.q[1]>>4)
	case 3:
		d.out = append(d.out, d.q[0]<<2|d.q[1]>>4, d.q[1]<<4|d.q[2]>>2)
	case 1:
		d.invalid++
	}
	d.nq = 0
}

// qpReader decodes quoted-printable leniently: '=' not followed by two hex
// digits or a line end is kept as a literal '=' (and counted), control
// characters pass through, a final '=' is ignored.
type qpReader struct {
	src     *bufio.Reader
	out     []byte
	buf     [4096]byte
	state   int // 0 normal, 1 after '=', 2 after '=' and a hex digit, 3 after '=' and white space, 4 after '=' and "\r"
	hex1    byte
	ws      []byte
	invalid int
	err     error
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

func (d *qpReader) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.err != nil {
			if d.state == 2 {
				d.out = append(d.buf[:0], '=', d.hex1)
				d.invalid++
				d.state = 0
				continue
			}
			return 0, d.err
		}
		d.out = d.buf[:0]
		for len(d.out) < len(d.buf)-8 {
			c, err := d.src.ReadByte()
			if err != nil {
				d.err = err
				break
			}
			d.step(c)
		}
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	return n, nil
}

func (d *qpReader) step(c byte) {
	switch d.state {
	case 0:
		if c == '=' {
			d.state = 1
			return
		}
		d.out = append(d.out, c)
	case 1:
		switch {
		case c == '\n':
			d.state = 0 // soft line break
		case c == '\r':
			d.state = 4
		case c == ' ' || c == '\t':
			d.ws = append(d.ws[:0], c)
			d.state = 3
		default:
			if _, ok := unhex(c); ok {
				d.hex1 = c
				d.state = 2
				return
			}
			d.invalid++
			d.out = append(d.out, '=')
			d.state = 0
			d.step(c)
		}
	case 2:
		h, ok2 := unhex(c)
		if ok2 {
			h1, _ := unhex(d.hex1)
			d.out = append(d.out, h1<<4|h)
			d.state = 0
			return
		}
		d.invalid++
		d.out = append(d.out, '=', d.hex1)
		d.state = 0
		d.step(c)
	case 3:
		switch c {
		case ' ', '\t':
			if len(d.ws) < 64 {
				d.ws = append(d.ws, c)
				return
			}
		case '\n':
			d.state = 0 // soft line break after trailing white space
			return
		case '\r':
			d.state = 4
			return
		}
		d.invalid++
		d.out = append(d.out, '=')
		d.out = append(d.out, d.ws...)
		d.state = 0
		d.step(c)
	case 4:
		d.state = 0
		if c == '\n' {
			return // "=\r\n"
		}
		d.invalid++
		d.out = append(d.out, '=', '\r')
		d.step(c)
	}
}

// errRecorder remembers the first error of r other than io.EOF: an I/O
// failure Load reports as an error.
type errRecorder struct {
	r   io.Reader
	err error
}

func (e *errRecorder) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// captureReader keeps the first max bytes read through it until stop.
type captureReader struct {
	r       io.Reader
	buf     []byte
	max     int
	stopped bool
}

func (c *captureReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if !c.stopped && n > 0 {
		if room := c.max - len(c.buf); room > 0 {
			c.buf = append(c.buf, p[:min(n, room)]...)
		}
	}
	return n, err
}

func (c *captureReader) stop() { c.stopped, c.buf = true, nil }

// countingReader counts bytes read.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
