package transfer

import (
	"bufio"
	"encoding/binary"
	"io"
)

// Base64Reader decodes base64 leniently: characters outside the alphabet
// are skipped and counted, '=' ends a quantum, and a final partial quantum
// is decoded as far as it goes.
//
// What follows a quantum ended by '=' padding is held back (up to
// maxB64Tail characters) until it proves to be base64: more encoded
// blocks, as some senders concatenate them (valid characters only, whole
// quanta, ending in padding or long), are decoded; anything else is text
// after the encoded data ("Cheerio!", a mailing-list footer) and is not
// decoded into the content (issue 12, item 8): junk counts it.
type Base64Reader struct {
	src     io.Reader
	in      [4096]byte
	out     []byte
	outBuf  [3*4096/4 + 3]byte
	q       [4]byte
	nq      int
	Invalid int  // bytes outside the alphabet (white space not counted)
	Partial bool // input ended inside a quantum
	padded  bool // a quantum ended in '=': what follows is held in tail
	tail    []byte
	Junk    int // characters after the padding that were not base64, ignored
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

// Reset makes d a decoder of src, keeping its buffers. The zero value
// is a decoder of nothing: Reset it first.
func (d *Base64Reader) Reset(src io.Reader) {
	d.src, d.out, d.nq, d.Invalid, d.Partial, d.err = src, nil, 0, 0, false, nil
	d.padded, d.tail, d.Junk = false, d.tail[:0], 0
}

func (d *Base64Reader) Read(p []byte) (int, error) {
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
				d.Partial = true
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
func (d *Base64Reader) decode(in []byte) {
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
				d.Invalid++
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
func (d *Base64Reader) held(in []byte) (n int, long bool) {
	for i, c := range in {
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
		case c == '=' && len(d.tail) == 0 && d.Junk == 0: // the rest of the padding
		case d.Junk > 0:
			d.Junk++
		case b64val[c] != 0xFF || c == '=':
			if len(d.tail) == maxB64Tail {
				return i, true
			}
			d.tail = append(d.tail, c)
		default:
			d.Junk = len(d.tail) + 1
			d.tail = d.tail[:0]
		}
	}
	return len(in), false
}

// release ends the held state and returns a copy of the tail, to be
// decoded as base64.
func (d *Base64Reader) release() []byte {
	t := append([]byte(nil), d.tail...)
	d.tail, d.padded = d.tail[:0], false
	return t
}

// settle decides, at the end of the input, what the held tail is: it
// returns it to be decoded, or counts it as junk and returns nil.
func (d *Base64Reader) settle() []byte {
	if d.Junk == 0 && len(d.tail) > 0 && len(d.tail)%4 == 0 && (d.tail[len(d.tail)-1] == '=' || len(d.tail) >= 64) {
		// whole quanta, ending in padding or too long for a word ("Best"
		// is not data)
		return d.release()
	}
	d.Junk += len(d.tail)
	d.tail, d.padded = d.tail[:0], false
	return nil
}

// Discard consumes the rest of the input and returns how many bytes Read
// would have returned, without producing them: Read's state machine,
// counting instead of writing, so invalid, partial, junk and the error
// come out as Read would leave them. The error is the input's, io.EOF
// included.
func (d *Base64Reader) Discard() (int64, error) {
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
					d.Invalid++
				}
				d.nq = 0
				d.Partial = true
			}
			return n, d.err
		}
		k, err := d.src.Read(d.in[:])
		n += d.count(d.in[:k])
		d.err = err
	}
}

// count is decode counting the bytes it would append.
func (d *Base64Reader) count(in []byte) int64 {
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
					d.Invalid++
				}
				d.padded = true
			}
			q = 0
		case ' ', '\t', '\r', '\n':
		default:
			d.Invalid++
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
func (d *Base64Reader) flush() {
	switch d.nq {
	case 2:
		d.out = append(d.out, d.q[0]<<2|d.q[1]>>4)
	case 3:
		d.out = append(d.out, d.q[0]<<2|d.q[1]>>4, d.q[1]<<4|d.q[2]>>2)
	case 1:
		d.Invalid++
	}
	d.nq = 0
}

// QPReader decodes quoted-printable leniently: '=' not followed by two hex
// digits or a line end is kept as a literal '=' (and counted), control
// characters pass through, a final '=' is ignored.
type QPReader struct {
	src     *bufio.Reader
	out     []byte
	buf     [4096]byte
	state   int // 0 normal, 1 after '=', 2 after '=' and a hex digit, 3 after '=' and white space, 4 after '=' and "\r"
	hex1    byte
	ws      []byte
	Invalid int
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

// Reset makes d a decoder of src, keeping its buffers. The zero value
// is a decoder of nothing: Reset it first.
func (d *QPReader) Reset(src *bufio.Reader) {
	d.src, d.out, d.state, d.hex1, d.ws, d.Invalid, d.err = src, nil, 0, 0, d.ws[:0], 0, nil
}

func (d *QPReader) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.err != nil {
			if d.state == 2 {
				d.out = append(d.buf[:0], '=', d.hex1)
				d.Invalid++
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
func (d *QPReader) steps(lim int) {
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

func (d *QPReader) step(c byte) {
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
			d.Invalid++
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
		d.Invalid++
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
		d.Invalid++
		d.out = append(d.out, '=')
		d.out = append(d.out, d.ws...)
		d.state = 0
		d.step(c)
	case 4:
		d.state = 0
		if c == '\n' {
			return // "=\r\n"
		}
		d.Invalid++
		d.out = append(d.out, '=', '\r')
		d.step(c)
	}
}
