package mime

import (
	"bufio"
	"bytes"
	"errors"
	"io"

	"github.com/threadlift/threadlift/sources/internal/header"
)

// A lenient multipart reader (RFC 2046), in place of go-message's
// textproto.MultipartReader, which gives up on damage real archives have
// (issue 12, items 6 and 7):
//
//   - a boundary delimiter line written twice (or more) in a row: the
//     empty parts between them are skipped, as Python's email package
//     does, instead of failing the rest of the multipart;
//   - a part whose body follows its header without the blank line: the
//     header ends at the first line that is not a header field (nor a
//     continuation, nor a delimiter) and the body starts there, as Python
//     reads it;
//   - LF and CRLF line ends may be mixed.
//
// A delimiter line is "--" + boundary, optional spaces and tabs, then the
// line end or the end of the input (Python's rule). A line that starts
// with "--" + boundary + "--" is the close delimiter whatever follows on
// it ("-->"), and so is "--" + boundary + "-" alone on its line: Python
// would read both as body text up to the end of the message, and lose
// the part to a truncation that is not one. The line end before a delimiter belongs to
// the delimiter. The parts' bodies are streamed, never held: a part reads
// straight from the reader's buffer up to the next delimiter.

// errNoDelimiter is returned by next when the input ends before any
// delimiter line: the boundary never occurs.
var errNoDelimiter = errors.New("multipart: the boundary never occurs")

const (
	mimeBufferBytes     = 16 << 10 // the reader's buffer; a delimiter line must fit in it
	maxPartHeaderBytes  = 64 << 10 // header bytes kept per part
	partHeaderPeekBytes = 512      // a header line is told from a body line by its first bytes
)

type mimeParts struct {
	br     *bufio.Reader
	dash   []byte // "--" + boundary
	nlDash []byte // "\n--" + boundary
	cur    *mimePart
	parts  int  // parts returned
	closed bool // the close delimiter was read
	err    error
}

// mimePart is one part: its header and, as an io.Reader, its body.
type mimePart struct {
	Header header.Header
	// Repeated counts delimiter lines right after the one that opened
	// the part (empty parts skipped); NoBlank says the header ended at a
	// line that is not a header field, without a blank line; HeaderCut
	// says header lines over maxPartHeaderBytes were left out.
	Repeated  int
	NoBlank   bool
	HeaderCut bool

	mr      *mimeParts
	n       int   // bytes at the head of br known to be body
	err     error // returned once n is used up: io.EOF at a delimiter, else why the body ended
	readErr error // br's error after its buffered bytes
	total   int64 // body bytes returned so far
}

func newMimeParts(r io.Reader, boundary string, buf *bufio.Reader) *mimeParts {
	if buf == nil {
		buf = bufio.NewReaderSize(r, mimeBufferBytes)
	} else {
		buf.Reset(r)
	}
	nl := []byte("\n--" + boundary)
	return &mimeParts{br: buf, dash: nl[1:], nlDash: nl}
}

// next returns the next part. It returns io.EOF after the close
// delimiter, errNoDelimiter when no delimiter line occurs at all, and
// io.ErrUnexpectedEOF when the input ends without the close delimiter.
func (mr *mimeParts) next() (*mimePart, error) {
	if mr.err != nil {
		return nil, mr.err
	}
	if mr.cur != nil {
		// Read the rest of the current part, then its delimiter line.
		p := mr.cur
		mr.cur = nil
		io.Copy(io.Discard, p)
		if p.err != io.EOF {
			mr.err = io.ErrUnexpectedEOF
			return nil, mr.err
		}
		kind := mr.consumeDelimiter()
		if kind == delimClose {
			mr.closed = true
			mr.err = io.EOF
			return nil, io.EOF
		}
	} else if mr.parts == 0 {
		// The preamble: lines up to the first delimiter line.
		for {
			line, err := mr.readLine()
			if len(line) == 0 && err != nil {
				mr.err = errNoDelimiter
				return nil, mr.err
			}
			switch mr.delimiter(line) {
			case delimNext:
			case delimClose:
				mr.closed = true
				mr.err = io.EOF
				return nil, io.EOF
			default:
				continue
			}
			break
		}
	}
	p, err := mr.header()
	if err != nil {
		mr.err = err
		return nil, err
	}
	mr.parts++
	mr.cur = p
	return p, nil
}

// readLine consumes one line, with its line end; a line longer than the
// buffer comes back as its first buffer-full.
func (mr *mimeParts) readLine() ([]byte, error) {
	line, err := mr.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		head := append([]byte(nil), line...)
		for err == bufio.ErrBufferFull {
			_, err = mr.br.ReadSlice('\n')
		}
		return head, err
	}
	return line, err
}

const (
	delimNone = iota
	delimNext
	delimClose
)

// delimiter says whether a whole line (with its line end, if any) is a
// delimiter line.
func (mr *mimeParts) delimiter(line []byte) int {
	switch matchDelimiter(line, mr.dash, true) {
	case 1:
		return delimNext
	case 2:
		return delimClose
	}
	return delimNone
}

// matchDelimiter reports whether b, the start of a line, is a delimiter
// line: 1 for one that opens a part, 2 for the close delimiter, -1 when
// it is not, 0 when more input is needed to tell (atEOF: no more comes).
func matchDelimiter(b, dash []byte, atEOF bool) int {
	if !bytes.HasPrefix(b, dash) {
		if !atEOF && bytes.HasPrefix(dash, b) {
			return 0
		}
		return -1
	}
	rest := b[len(dash):]
	kind := 1
	switch {
	case bytes.HasPrefix(rest, []byte("--")):
		// The close delimiter; text after it on its line ("-->") is
		// epilogue, as lenient readers take it.
		return 2
	case !atEOF && (len(rest) == 0 || len(rest) == 1 && rest[0] == '-'):
		return 0
	case len(rest) > 0 && rest[0] == '-':
		// "--boundary-": a close delimiter short of a dash, when nothing
		// else is on the line.
		kind, rest = 2, rest[1:]
	}
	for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
		rest = rest[1:]
	}
	switch {
	case len(rest) == 0:
		if atEOF {
			return kind
		}
		return 0
	case rest[0] == '\n', rest[0] == '\r':
		return kind
	}
	return -1
}

// consumeDelimiter reads the delimiter line that ended the current part
// (and the line end before it) and returns its kind.
func (mr *mimeParts) consumeDelimiter() int {
	if b, _ := mr.br.Peek(2); bytes.HasPrefix(b, []byte("\r\n")) {
		mr.br.Discard(2)
	} else if len(b) > 0 && b[0] == '\n' {
		mr.br.Discard(1)
	}
	line, _ := mr.readLine()
	return mr.delimiter(line)
}

// header reads a part's header, after the delimiter line that opened it.
func (mr *mimeParts) header() (*mimePart, error) {
	p := &mimePart{mr: mr}
	var block []byte
	for {
		b, err := mr.br.Peek(min(partHeaderPeekBytes, mr.br.Size()))
		if len(b) == 0 {
			if err == io.EOF {
				break // the part ends in its header: its body is empty
			}
			return nil, err
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line = b[:i+1]
		}
		atEOF := err != nil
		switch {
		case header.IsBlankLine(line) && (len(line) > 0 && line[len(line)-1] == '\n' || atEOF):
			mr.br.Discard(len(line))
			return p.withHeader(block), nil
		case matchDelimiter(line, mr.dash, atEOF || bytes.HasSuffix(line, []byte("\n"))) > 0:
			if len(block) == 0 {
				// The delimiter line again, right after the one that
				// opened this part: an empty part, skipped.
				mr.readLine()
				if mr.delimiter(line) == delimClose {
					mr.closed = true
					return nil, io.EOF
				}
				p.Repeated++
				continue
			}
			return p.withHeader(block), nil // a header and no body
		case (line[0] == ' ' || line[0] == '\t') && len(block) > 0, header.IsField(line):
			l, _ := mr.readLine()
			if len(block)+len(l) > maxPartHeaderBytes {
				p.HeaderCut = true
				continue
			}
			block = append(block, l...)
			continue
		}
		// Not a header line: the body starts here.
		p.NoBlank = true
		return p.withHeader(block), nil
	}
	return p.withHeader(block), nil
}

func (p *mimePart) withHeader(block []byte) *mimePart {
	block = bytes.ReplaceAll(block, []byte("\r\n"), []byte("\n"))
	if fields, _ := header.Parse(block); fields != nil {
		p.Header = header.Repaired(fields)
	}
	return p
}

// Read reads the part's body up to the line end before the next
// delimiter line. It returns io.EOF there, and io.ErrUnexpectedEOF when
// the input ends first.
func (p *mimePart) Read(d []byte) (int, error) {
	br := p.mr.br
	for p.n == 0 && p.err == nil {
		peek, _ := br.Peek(br.Buffered())
		p.n, p.err = p.scan(peek, len(peek) >= br.Size())
		if p.n == 0 && p.err == nil {
			_, p.readErr = br.Peek(len(peek) + 1)
			if p.readErr == io.EOF {
				p.readErr = io.ErrUnexpectedEOF
			}
		}
	}
	if p.n == 0 {
		return 0, p.err
	}
	n, _ := br.Read(d[:min(len(d), p.n)])
	p.total += int64(n)
	p.n -= n
	if p.n == 0 {
		return n, p.err
	}
	return n, nil
}

// scan says how much of buf (the buffered input) is body, and the error
// to return after it: io.EOF when a delimiter line follows it. full says
// buf fills the buffer: a line that long cannot be a delimiter line, and
// scan must not ask for more input without handing on some.
func (p *mimePart) scan(buf []byte, full bool) (int, error) {
	atEOF := p.readErr != nil
	if p.total == 0 && p.n == 0 {
		// At the start of the body a delimiter may come first.
		switch m := matchDelimiter(buf, p.mr.dash, atEOF); {
		case m > 0:
			return 0, io.EOF
		case m == 0 && !full:
			return 0, nil
		}
	}
	for from := 0; ; {
		i := bytes.Index(buf[from:], p.mr.nlDash)
		if i < 0 {
			break
		}
		i += from
		cut := i
		if cut > 0 && buf[cut-1] == '\r' {
			cut--
		}
		switch m := matchDelimiter(buf[i+1:], p.mr.dash, atEOF); {
		case m > 0:
			return cut, io.EOF
		case m == 0 && (cut > 0 || !full):
			return cut, nil // not enough input to tell: hand on what is before it
		}
		from = i + 1
	}
	// What follows the last line end may be the start of a delimiter.
	if i := bytes.LastIndexByte(buf, '\n'); i >= 0 && bytes.HasPrefix(p.mr.nlDash, buf[i:]) && !atEOF {
		if i > 0 && buf[i-1] == '\r' {
			i--
		}
		if i > 0 || !full {
			return i, nil
		}
	}
	if n := len(buf); n > 0 && buf[n-1] == '\r' && !atEOF {
		return n - 1, nil // its "\n" may come next, before a delimiter
	}
	return len(buf), p.readErr
}
