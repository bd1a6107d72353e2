package mbox

import (
	"bufio"
	"bytes"
	"fmt"
	"hash"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/internal/charset"
	"github.com/threadlift/threadlift/sources/internal/header"
	"github.com/threadlift/threadlift/sources/internal/mime"
)

// Load decodes the message of env fully. It is safe for concurrent use.
// It returns an error only for I/O failures; content problems are Issues.
func (r *reader) Load(env *sources.Envelope) (*sources.Message, error) {
	return r.LoadWith(env, sources.LoadOptions{})
}

// LoadWith is Load leaving out what o says. It is safe for concurrent use.
func (r *reader) LoadWith(env *sources.Envelope, o sources.LoadOptions) (*sources.Message, error) {
	if r.closed.Load() {
		return nil, sources.ErrClosed
	}
	if env == nil {
		return nil, fmt.Errorf("load %s: envelope is not a record of this file", r.opts.Name)
	}
	msg := &sources.Message{Envelope: env}
	msg.Issues = append(msg.Issues, env.Issues...)

	ls, _ := r.bufs.Get().(*loadState)
	if ls == nil {
		ls = &loadState{br: bufio.NewReaderSize(nil, loadBufferBytes)}
	}
	defer func() {
		ls.br.Reset(nil)
		ls.mime.Release()
		r.bufs.Put(ls)
	}()
	head, err := r.readHead(env, ls.br, nil, ls)
	if err != nil {
		return nil, err
	}
	if !head.hasHeader {
		return msg, nil // no-header (or nothing after the From line): nothing to decode
	}

	mime.DecodeHeader(msg, &head.hdr)
	if env.Size > r.opts.MaxMessageBytes {
		return msg, nil // rejected as too-large: do not decode the body
	}
	mime.DecodeBody(msg, &head.hdr, head.body(ls.br), mime.Options{Budget: r.opts.MaxMessageBytes,
		AtFileEnd: env.Loc.Offset+env.Size == r.size, NoHTMLText: o.NoHTMLText, Bufs: &ls.mime, Prefix: head.prefix()})
	if head.rec.err != nil {
		return nil, fmt.Errorf("load %s: %w", env.Loc, head.rec.err)
	}
	return msg, nil
}

var _ sources.OptionsLoader = (*reader)(nil)

// loadState is what a Load reuses from the previous one (reader.bufs):
// allocating a read buffer per Load, and regrowing a text buffer per part,
// dominated its cost.
type loadState struct {
	whole  []byte       // a small record, read in one piece
	wholeR bytes.Reader // over whole
	br     *bufio.Reader
	mime   mime.Buffers // the decoder's
}

// recordHead is what readHead found at the start of a record.
type recordHead struct {
	rec       *errRecorder  // the record's reader under br: its err is an I/O failure
	hdr       header.Header // the repaired header
	hasHeader bool          // false: the record has no header to decode
	repair    header.Repair // where header lines that are not fields went
	literal   bool          // the body is not mboxrd-escaped (a message file)
}

// readHead points br at env's record (without the empty line that
// separates mbox messages), skips its preamble and "From " line and reads
// and repairs its header block, leaving br at the start of the body. h,
// when not nil, is fed the header block as Next hashed it for ContentKey.
// ls, when not nil, lends a buffer for reading a small record in one
// piece. The error is an I/O failure.
func (r *reader) readHead(env *sources.Envelope, br *bufio.Reader, h hash.Hash, ls *loadState) (recordHead, error) {
	head := recordHead{literal: r.message}
	if env == nil || env.Loc.Offset < 0 || env.Size < 0 || env.Loc.Offset+env.Size > r.size {
		return head, fmt.Errorf("load %s: envelope is not a record of this file", r.opts.Name)
	}
	if ls != nil && env.Size <= loadBufferBytes {
		// Most records are a few KiB: one read for the whole record
		// rather than one for its end and one for the rest.
		if cap(ls.whole) < loadBufferBytes {
			ls.whole = make([]byte, loadBufferBytes)
		}
		b := ls.whole[:env.Size]
		if n, _ := r.ra.ReadAt(b, env.Loc.Offset); n == len(b) {
			ls.wholeR.Reset(b[:len(b)-int(r.separatorBytes(b[max(0, len(b)-4):]))])
			head.rec = &errRecorder{r: &ls.wholeR}
		}
		// else the file changed: read it as a stream, which says why
	}
	if head.rec == nil {
		size := env.Size
		if size >= 2 {
			var tail [4]byte
			k := min(int64(4), size)
			if _, err := r.ra.ReadAt(tail[:k], env.Loc.Offset+size-k); err != nil && err != io.EOF {
				return head, fmt.Errorf("load %s: %w", env.Loc, err)
			}
			size -= r.separatorBytes(tail[:k])
		}
		head.rec = &errRecorder{r: io.NewSectionReader(r.ra, env.Loc.Offset, size)}
	}
	br.Reset(head.rec)

	if err := skipPreamble(br, env.Loc.Offset == 0); err != nil {
		if head.rec.err != nil {
			return head, fmt.Errorf("load %s: %w", env.Loc, head.rec.err)
		}
		return head, nil
	}
	if h == nil {
		if hdr, ok := header.FromBuffer(br); ok {
			head.hdr, head.hasHeader = hdr, len(hdr) > 0
			return head, nil
		}
	}
	hb, err := header.ReadBlock(br, h, header.MaxBytes)
	if head.rec.err != nil {
		return head, fmt.Errorf("load %s: %w", env.Loc, head.rec.err)
	}
	if err != nil {
		return head, fmt.Errorf("load %s: %w", env.Loc, err)
	}
	fields, _, rep := header.ParseRepair(hb.Lines) // issues are the envelope's
	if fields != nil {
		head.hdr, head.hasHeader = header.Repaired(fields), true
		head.repair = rep
	}
	return head, nil
}

// body returns the reader of the record's body, br being left at the
// start of its body by readHead: the header lines that became body text
// first (header.ParseRepair), then the body, unescaped.
func (h *recordHead) body(br *bufio.Reader) io.Reader {
	// Never br itself: bufio.NewReader returns a *bufio.Reader as it is,
	// and the decoder keeps what it returns in its pooled Buffers, which
	// must not hold Load's own read buffer.
	var u io.Reader = plainReader{br}
	if !h.literal {
		u = newUnescaper(br)
	}
	if len(h.repair.Body) == 0 {
		return u
	}
	lead := append(append([]byte(nil), h.repair.Body...), '\n') // the blank line that ended the block
	if lead[len(lead)-2] != '\n' {
		lead = append(lead[:len(lead)-1], '\n', '\n')
	}
	return io.MultiReader(bytes.NewReader(lead), u)
}

// prefix is the text of header lines kept as the first lines of the body.
func (h *recordHead) prefix() string {
	if len(h.repair.Text) == 0 {
		return ""
	}
	s := strings.Join(h.repair.Text, "\n")
	if !utf8.ValidString(s) {
		s = charset.FixUTF8([]byte(s))
	}
	return s
}

// separatorBytes is how many bytes at the end of a record of at least two
// bytes, whose last (up to) four bytes are tail, are the empty line that
// separates mbox messages, not part of the message.
func (r *reader) separatorBytes(tail []byte) int64 {
	if r.message {
		return 0 // a message file: no separator follows it
	}
	return separatorBytes(tail)
}

func separatorBytes(tail []byte) int64 {
	switch {
	case len(tail) < 2:
		return 0
	case bytes.HasSuffix(tail, []byte("\r\n\r\n")):
		return 2
	case bytes.HasSuffix(tail, []byte("\n\n")):
		return 1
	}
	return 0
}

// skipPreamble skips a byte-order mark and blank lines at the start of the
// file, then the "From " line when there is one.
func skipPreamble(br *bufio.Reader, fileStart bool) error {
	if fileStart {
		if b, err := br.Peek(3); err == nil && bytes.Equal(b, utf8BOM) {
			br.Discard(3)
		}
		for {
			b, err := br.Peek(maxFromLine)
			if len(b) == 0 {
				return err
			}
			i := bytes.IndexByte(b, '\n')
			if i < 0 || len(bytes.TrimLeft(b[:i+1], " \t\r\n\f\v")) != 0 {
				break
			}
			br.Discard(i + 1)
		}
	}
	if b, _ := br.Peek(len(fromPrefix)); bytes.Equal(b, fromPrefix) {
		for {
			_, err := br.ReadSlice('\n')
			if err != bufio.ErrBufferFull {
				if err != nil && err != io.EOF {
					return err
				}
				break
			}
		}
	}
	return nil
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

// plainReader hides what its reader is, so that no one unwraps it.
type plainReader struct{ r io.Reader }

func (p plainReader) Read(b []byte) (int, error) { return p.r.Read(b) }
