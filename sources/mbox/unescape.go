package mbox

import (
	"bufio"
	"bytes"
)

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
