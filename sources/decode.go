package sources

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"mime"
	"net/mail"
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

// decodeStatus says how decodeCharset went.
type decodeStatus int

const (
	decodedOK        decodeStatus = iota
	decodedInvalid                // declared UTF-8/ASCII (or none) but had other bytes: read as windows-1252
	decodedUnknown                // unknown charset: valid UTF-8 kept, other bytes read as windows-1252
	decodedWrongUTF8              // the bytes are not valid in the declared charset but valid UTF-8: kept as UTF-8
	decodedLossy                  // bytes not valid in the declared charset (nor UTF-8) became U+FFFD
)

// decodeCharset converts b from the charset label to UTF-8.
func decodeCharset(label string, b []byte) (string, decodeStatus) {
	return decodeCharsetBuf(label, b, nil)
}

// decodeCharsetBuf is decodeCharset converting legacy charsets in *buf
// (grown as needed and left for the next call) when buf is not nil.
func decodeCharsetBuf(label string, b []byte, buf *[]byte) (string, decodeStatus) {
	n := normLabel(label)
	switch n {
	case "", "utf8", "usascii", "ascii", "us", "ansix3.41968", "iso646us", "unicode11utf8", "xunknown", "unknown8bit", "unknown", "default":
		if utf8.Valid(b) {
			return string(b), decodedOK
		}
		return fixUTF8(b), decodedInvalid
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
		if buf != nil && cap(out) <= maxPooledText {
			*buf = out[:0]
		}
		if err == nil {
			return checkDecoded(string(out), b)
		}
	}
	return fixUTF8(b), decodedUnknown
}

// checkDecoded applies contract §9's test to text decoded from b by a
// declared charset: when the decoder met bytes that are not valid in that
// charset (they became U+FFFD) and b is valid UTF-8, the declaration is
// wrong and b is kept as UTF-8 (a UTF-8 part labelled GB2312, say).
// Otherwise the decoded text stands, lossy or not.
func checkDecoded(out string, b []byte) (string, decodeStatus) {
	if !strings.ContainsRune(out, utf8.RuneError) {
		return out, decodedOK
	}
	if utf8.Valid(b) {
		if bytes.Contains(b, []byte("\uFFFD")) && strings.Count(out, "\uFFFD") == bytes.Count(b, []byte("\uFFFD")) {
			return out, decodedOK // the text itself holds U+FFFD, decoded as it was
		}
		return string(b), decodedWrongUTF8
	}
	return out, decodedLossy
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

// quotedWords decodes the RFC 2047 encoded words left in a display name:
// net/mail leaves those inside a quoted string ("=?utf-8?B?...?=" <a@b>)
// as they are, as RFC 2047 asks, but mailers write them so and Python
// decodes them (issue 12, item 11).
func quotedWords(p *mail.AddressParser, name string) string {
	if !strings.Contains(name, "=?") || !strings.Contains(name, "?=") || p.WordDecoder == nil {
		return name
	}
	if out, err := p.WordDecoder.DecodeHeader(name); err == nil {
		return out
	}
	return name
}

// unescaper reads an mbox body, removing one '>' from lines matching
// ^>+From (mboxrd; for mboxo files this undoes the ">From " escaping).
//
// Most lines do not start with '>': the bytes up to the next line that
// does are handed on in one piece, straight from br's buffer, rather than
// line by line (a base64 attachment is thousands of short lines, and a
// Read per line was the cost of reading it).
type unescaper struct {
	br          *bufio.Reader
	pending     []byte // the rest of a line that started with '>', in br's buffer
	clear       int    // bytes at the head of br's buffer known to need no unescaping
	atLineStart bool
	err         error
}

func newUnescaper(br *bufio.Reader) *unescaper { return &unescaper{br: br, atLineStart: true} }

func (u *unescaper) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(u.pending) > 0 {
			k := copy(p[n:], u.pending)
			u.pending = u.pending[k:]
			n += k
			continue
		}
		if u.clear > 0 {
			b, _ := u.br.Peek(min(u.clear, len(p)-n)) // buffered: cannot fail
			k := copy(p[n:], b)
			u.br.Discard(k)
			u.clear -= k
			u.atLineStart = b[k-1] == '\n'
			n += k
			continue
		}
		if u.err != nil {
			break
		}
		if u.br.Buffered() == 0 {
			if n > 0 {
				break // hand on what there is before reading more
			}
			if _, err := u.br.Peek(1); err != nil {
				u.err = err
				break
			}
		}
		buf, _ := u.br.Peek(u.br.Buffered())
		if u.atLineStart && buf[0] == '>' {
			chunk, err := u.br.ReadSlice('\n')
			j := 0
			for j < len(chunk) && chunk[j] == '>' {
				j++
			}
			if bytes.HasPrefix(chunk[j:], fromPrefix) {
				chunk = chunk[1:]
			}
			u.atLineStart = err != bufio.ErrBufferFull
			if err == bufio.ErrBufferFull {
				err = nil
			}
			u.pending, u.err = chunk, err
			continue
		}
		// Up to and including the line end before the next line that
		// starts with '>', or all that is buffered.
		u.clear = len(buf)
		if i := bytes.Index(buf, []byte("\n>")); i >= 0 {
			u.clear = i + 1
		}
	}
	if n == 0 && u.err != nil {
		return 0, u.err
	}
	return n, nil
}

// base64Reader decodes base64 leniently: characters outside the alphabet
// are skipped and counted, '=' ends a quantum, and a final partial quantum
// is decoded as far as it goes.
//
// What follows a quantum ended by '=' padding is held back (up to
// maxB64Tail characters) until it proves to be base64: more encoded
// blocks, as some senders concatenate them (valid characters only, whole
// quanta, ending in padding or long), are decoded; anything else is text
// after the encoded data ("Cheerio!", a mailing-list footer) and is not
// decoded into the content (issue 12, item 8): junk counts it.
type base64Reader struct {
	src     io.Reader
	in      [4096]byte
	out     []byte
	outBuf  [3*4096/4 + 3]byte
	q       [4]byte
	nq      int
	invalid int  // bytes outside the alphabet (white space not counted)
	partial bool // input ended inside a quantum
	padded  bool // a quantum ended in '=': what follows is held in tail
	tail    []byte
	junk    int // characters after the padding that were not base64, ignored
	err     error
}

// maxB64Tail bounds what is held back after padding: text after the
// encoded data is a line or a footer, not kilobytes.
const maxB64Tail = 8 << 10

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

// reset makes d a decoder of src, keeping its buffers.
func (d *base64Reader) reset(src io.Reader) {
	d.src, d.out, d.nq, d.invalid, d.partial, d.err = src, nil, 0, 0, false, nil
	d.padded, d.tail, d.junk = false, d.tail[:0], 0
}

func (d *base64Reader) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.err != nil {
			if d.err == io.EOF && d.padded {
				d.out = d.outBuf[:0]
				d.decode(d.settle())
				continue
			}
			if d.err == io.EOF && d.nq > 0 {
				d.out = d.outBuf[:0]
				d.flush()
				d.partial = true
				continue
			}
			return 0, d.err
		}
		n, err := d.src.Read(d.in[:])
		d.out = d.outBuf[:0]
		d.decode(d.in[:n])
		d.err = err
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	return n, nil
}

// decode decodes in, appending to out; once a quantum ends in padding
// what follows goes to held.
func (d *base64Reader) decode(in []byte) {
	for i := 0; i < len(in); i++ {
		if d.padded {
			j, long := d.held(in[i:])
			if !long {
				return
			}
			d.decode(d.release())
			i += j - 1
			continue
		}
		c := in[i]
		v := b64val[c]
		if v == 0xFF {
			switch c {
			case '=':
				if d.nq > 0 {
					d.flush()
					d.padded = true
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
}

// held takes what follows padding: white space is skipped, base64
// characters are held in tail, and the first other character makes all
// of it, and everything after it, junk. It returns how many bytes of in
// it took, and long when the tail grew past maxB64Tail: base64, as text
// is not that long; the caller then decodes release() and in[n:].
func (d *base64Reader) held(in []byte) (n int, long bool) {
	for i, c := range in {
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
		case c == '=' && len(d.tail) == 0 && d.junk == 0: // the rest of the padding
		case d.junk > 0:
			d.junk++
		case b64val[c] != 0xFF || c == '=':
			if len(d.tail) == maxB64Tail {
				return i, true
			}
			d.tail = append(d.tail, c)
		default:
			d.junk = len(d.tail) + 1
			d.tail = d.tail[:0]
		}
	}
	return len(in), false
}

// release ends the held state and returns a copy of the tail, to be
// decoded as base64.
func (d *base64Reader) release() []byte {
	t := append([]byte(nil), d.tail...)
	d.tail, d.padded = d.tail[:0], false
	return t
}

// settle decides, at the end of the input, what the held tail is: it
// returns it to be decoded, or counts it as junk and returns nil.
func (d *base64Reader) settle() []byte {
	if d.junk == 0 && len(d.tail) > 0 && len(d.tail)%4 == 0 && (d.tail[len(d.tail)-1] == '=' || len(d.tail) >= 64) {
		// whole quanta, ending in padding or too long for a word ("Best"
		// is not data)
		return d.release()
	}
	d.junk += len(d.tail)
	d.tail, d.padded = d.tail[:0], false
	return nil
}

// discard consumes the rest of the input and returns how many bytes Read
// would have returned, without producing them: Read's state machine,
// counting instead of writing, so invalid, partial, junk and the error
// come out as Read would leave them. The error is the input's, io.EOF
// included.
func (d *base64Reader) discard() (int64, error) {
	n := int64(len(d.out))
	d.out = nil
	for {
		if d.err != nil {
			if d.err == io.EOF && d.padded {
				n += d.count(d.settle())
				continue
			}
			if d.err == io.EOF && d.nq > 0 {
				n += int64(flushedBytes(d.nq))
				if d.nq == 1 {
					d.invalid++
				}
				d.nq = 0
				d.partial = true
			}
			return n, d.err
		}
		k, err := d.src.Read(d.in[:])
		n += d.count(d.in[:k])
		d.err = err
	}
}

// count is decode counting the bytes it would append.
func (d *base64Reader) count(in []byte) int64 {
	var n int64
	q := d.nq // characters since the last quantum was cut short (or since the start)
	for i := 0; i < len(in); i++ {
		if d.padded {
			j, long := d.held(in[i:])
			if !long {
				break
			}
			d.nq = q % 4
			n += d.count(d.release())
			q = d.nq
			i += j - 1
			continue
		}
		c := in[i]
		if b64val[c] != 0xFF {
			q++
			continue
		}
		switch c {
		case '=':
			n += 3 * int64(q/4)
			if q%4 > 0 {
				n += int64(flushedBytes(q % 4))
				if q%4 == 1 {
					d.invalid++
				}
				d.padded = true
			}
			q = 0
		case ' ', '\t', '\r', '\n':
		default:
			d.invalid++
		}
	}
	n += 3 * int64(q/4)
	d.nq = q % 4
	return n
}

// flushedBytes is how many bytes flush makes of a partial quantum of nq
// characters.
func flushedBytes(nq int) int {
	if nq < 2 {
		return 0
	}
	return nq - 1
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

// reset makes d a decoder of src, keeping its buffers.
func (d *qpReader) reset(src *bufio.Reader) {
	d.src, d.out, d.state, d.hex1, d.ws, d.invalid, d.err = src, nil, 0, 0, d.ws[:0], 0, nil
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
		lim := len(d.buf) - 8
		for len(d.out) < lim {
			if d.src.Buffered() == 0 {
				c, err := d.src.ReadByte() // fills the buffer
				if err != nil {
					d.err = err
					break
				}
				d.step(c)
				continue
			}
			d.steps(lim)
		}
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	return n, nil
}

// steps decodes what src has buffered, until out holds lim bytes. It is
// step applied to each byte, but for the common cases taken in one go: a
// run of plain bytes up to the next '=', "=XX" with two hex digits and a
// soft line break.
func (d *qpReader) steps(lim int) {
	b, _ := d.src.Peek(d.src.Buffered())
	i := 0
	for i < len(b) && len(d.out) < lim {
		if d.state != 0 {
			d.step(b[i])
			i++
			continue
		}
		j := min(plainRun(b[i:]), lim-len(d.out))
		d.out = append(d.out, b[i:i+j]...)
		i += j
		if i == len(b) || len(d.out) >= lim {
			break
		}
		if i+2 < len(b) { // b[i] is '='
			h1, ok1 := unhex(b[i+1])
			h2, ok2 := unhex(b[i+2])
			switch {
			case ok1 && ok2:
				d.out = append(d.out, h1<<4|h2)
				i += 3
				continue
			case b[i+1] == '\n':
				i += 2
				continue
			case b[i+1] == '\r' && b[i+2] == '\n':
				i += 3
				continue
			}
		}
		d.step('=')
		i++
	}
	d.src.Discard(i)
}

// plainRun is the length of b up to its first '=' (all of b when there
// is none). Quoted-printable text has an '=' every few bytes (every
// non-ASCII byte of legacy-charset text, every soft line break): for runs
// that short, eight bytes at a time beats bytes.IndexByte's call.
func plainRun(b []byte) int {
	const ones, highs, eqs = 0x0101010101010101, 0x8080808080808080, 0x3d3d3d3d3d3d3d3d
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:]) ^ eqs // a zero byte where b has '='
		if (x-ones)&^x&highs != 0 {
			break
		}
	}
	for ; i < len(b); i++ {
		if b[i] == '=' {
			return i
		}
	}
	return i
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
