package sources

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The mbox reader.
//
// We split mbox files with our own strict splitter rather than go-mbox's
// Reader: go-mbox cannot report byte offsets (contract §9 locates every
// mbox record by the offset of its "From " line), it ends a message at ANY
// line starting "From " (contract §3: a separator only at the start of the
// file or right after an empty line) and it is mboxo-only (">>From " stays
// escaped). go-mbox's Writer is still fine for writing mboxes.
//
// Splitting rules:
//   - A line starting "From " is a separator at the start of the file
//     (after an optional UTF-8 byte-order mark and blank or white-space-only
//     lines) or right after an empty line ("" or "\r" once "\n" is removed).
//   - mboxcl/mboxcl2: a Content-Length header is honoured when the body it
//     measures ends on a message boundary (end of file, a "From " line, or
//     an empty line followed by a "From " line or end of file); separators
//     inside that body then do not split. Otherwise it is ignored.
//   - A file whose first non-blank line is not a "From " line (a single
//     .eml message, say) is read as ONE message at offset 0 spanning the
//     whole file; it is never split.
//
// Memory does not grow with message or file size: bodies are never held,
// lines longer than the read buffer are consumed in pieces, and at most
// maxHeaderBytes of each header block is kept (the rest is skipped with a
// warning, though it still counts for the content key).

const (
	// DefaultMaxMessageBytes is the default Options.MaxMessageBytes (25 MiB).
	DefaultMaxMessageBytes = 25 << 20

	maxHeaderBytes  = 256 << 10 // header bytes kept per message
	maxFromLine     = 1024      // bytes of a "From " line kept for its date
	scanBufferBytes = 64 << 10
	loadBufferBytes = 32 << 10
)

// Options configures a source reader. The zero value means defaults.
type Options struct {
	// MaxMessageBytes is the largest raw record accepted; larger records get
	// an error Issue "too-large". 0 means DefaultMaxMessageBytes.
	MaxMessageBytes int64
	// Name is what Location.File shows; default: the path as given.
	Name string
	// Now is used for the "more than a day in the future" date check;
	// default time.Now.
	Now func() time.Time
	// Fields renames the default field names of csv/json records
	// (contract §3); mbox ignores it.
	Fields map[string]string
	// ThreadKeyPrefix is put before the thread_id and message_id of
	// csv/json records, and into their content hash (records.go), so
	// that two exports numbering their conversations alike stay apart;
	// mbox ignores it.
	ThreadKeyPrefix string
}

func (o Options) withDefaults(path string) Options {
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if o.Name == "" {
		o.Name = path
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// ErrClosed is returned by Next and Load after Close.
var ErrClosed = errors.New("sources: reader is closed")

// OpenMbox opens an mbox file (mboxo, mboxrd, mboxcl/mboxcl2, LF or CRLF)
// or a single message file (.eml). The file is opened once; Load reads
// records back with ReadAt and is safe for concurrent use.
func OpenMbox(path string, opts Options) (Reader, error) {
	f, st, err := openFile(path, "mbox")
	if err != nil {
		return nil, err
	}
	var ra io.ReaderAt = f
	bareCR, err := sniffBareCR(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open mbox %s: %w", path, err)
	}
	if bareCR {
		ra = crReaderAt{f}
	}
	r := newMboxReader(ra, st.Size(), f, opts.withDefaults(path))
	r.bareCR = bareCR
	return r, nil
}

// sniffBareCR reports whether the file uses bare CR line endings (classic
// Mac OS): its first 64 KiB hold a CR but no LF.
func sniffBareCR(ra io.ReaderAt) (bool, error) {
	buf := make([]byte, 64<<10)
	n, err := ra.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return false, err
	}
	buf = buf[:n]
	return bytes.IndexByte(buf, '\n') < 0 && bytes.IndexByte(buf, '\r') >= 0, nil
}

// crReaderAt reads a bare-CR file as if every CR were an LF. The
// replacement is byte for byte, so offsets stay those of the file.
type crReaderAt struct{ ra io.ReaderAt }

func (c crReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.ra.ReadAt(p, off)
	for i, b := range p[:n] {
		if b == '\r' {
			p[i] = '\n'
		}
	}
	return n, err
}

var _ Reader = (*mboxReader)(nil)

type scanState int

const (
	stateStart  scanState = iota // nothing read yet
	stateMbox                    // the From line of the next message has been read
	stateSingle                  // the file is one message without a From line
	stateDone
)

type mboxReader struct {
	ra     io.ReaderAt
	size   int64
	closer io.Closer
	opts   Options
	bareCR bool // the file's lines end in bare CRs, read as LFs

	// Next's state; Next is not safe for concurrent use.
	br       *bufio.Reader
	pos      int64 // file offset of the next byte br returns
	state    scanState
	seq      int
	msgStart int64       // offset of the pending From line (stateMbox)
	fromLine []byte      // the pending From line (capped, without line end)
	closed   atomic.Bool // read by concurrent loads
	err      error       // sticky I/O error

	// bufs holds Load's read buffers: messages are often smaller than a
	// buffer, and allocating one per Load dominated its cost.
	bufs sync.Pool
}

func newMboxReader(ra io.ReaderAt, size int64, closer io.Closer, opts Options) *mboxReader {
	r := &mboxReader{ra: ra, size: size, closer: closer, opts: opts}
	r.seek(0)
	return r
}

func (r *mboxReader) seek(off int64) {
	sr := io.NewSectionReader(r.ra, off, r.size-off)
	if r.br == nil {
		r.br = bufio.NewReaderSize(sr, scanBufferBytes)
	} else {
		r.br.Reset(sr)
	}
	r.pos = off
}

var _ RawReader = (*mboxReader)(nil)

// Raw returns the record's bytes as they are in the file. It is safe for
// concurrent use, like Load.
func (r *mboxReader) Raw(env *Envelope) (io.Reader, error) {
	if env.Loc.Offset < 0 || env.Size < 0 || env.Loc.Offset+env.Size > r.size {
		return nil, fmt.Errorf("raw record %s: outside the file (%d bytes)", env.Loc, r.size)
	}
	return io.NewSectionReader(r.ra, env.Loc.Offset, env.Size), nil
}

// Close closes the file. Next and Load fail afterwards.
func (r *mboxReader) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	if r.closer != nil {
		return r.closer.Close()
	}
	return nil
}

// Next returns the envelope of the next message, or io.EOF.
func (r *mboxReader) Next() (*Envelope, error) {
	if r.closed.Load() {
		return nil, ErrClosed
	}
	if r.err != nil {
		return nil, r.err
	}
	if r.state == stateStart {
		if err := r.start(); err != nil {
			r.err = err
			return nil, err
		}
	}
	switch r.state {
	case stateMbox, stateSingle:
		env, err := r.scanMessage()
		if err != nil {
			r.err = fmt.Errorf("read %s at byte %d: %w", r.opts.Name, r.pos, err)
			return nil, r.err
		}
		if r.bareCR {
			env.Issues = append(env.Issues, Issue{SeverityWarning, "bare-cr", "the file's lines end in bare CR (classic Mac OS); read as line ends"})
		}
		return env, nil
	}
	return nil, io.EOF
}

// start skips a byte-order mark and blank lines, then decides between an
// mbox and a single message.
func (r *mboxReader) start() error {
	if b, err := r.br.Peek(3); err == nil && bytes.Equal(b, utf8BOM) {
		r.br.Discard(3)
		r.pos = 3
	}
	for {
		lineStart := r.pos
		line, n, err := r.readLine(nil, maxFromLine)
		if err == io.EOF {
			r.state = stateDone
			return nil
		}
		if err != nil {
			return err
		}
		if n <= maxFromLine && len(bytes.TrimLeft(line, " \t\r\n\f\v")) == 0 {
			continue // blank or white space only
		}
		if bytes.HasPrefix(line, fromPrefix) {
			r.state = stateMbox
			r.msgStart = lineStart
			r.fromLine = trimEOL(line)
			return nil
		}
		r.state = stateSingle
		r.seek(lineStart)
		return nil
	}
}

var (
	utf8BOM    = []byte{0xEF, 0xBB, 0xBF}
	fromPrefix = []byte("From ")
)

// readLine consumes one line (up to and including '\n', or to end of file)
// and returns its first max bytes appended to dst and its full length.
// It returns io.EOF only when no byte was left.
func (r *mboxReader) readLine(dst []byte, max int) ([]byte, int64, error) {
	var n int64
	for {
		chunk, err := r.br.ReadSlice('\n')
		n += int64(len(chunk))
		if room := max - len(dst); room > 0 {
			dst = append(dst, chunk[:min(room, len(chunk))]...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		r.pos += n
		if err == io.EOF && n > 0 {
			err = nil
		}
		return dst, n, err
	}
}

// isBlankLine reports whether a whole line (with its line end) is empty:
// "" or "\r" once the "\n" is removed.
func isBlankLine(l []byte) bool {
	switch string(l) {
	case "\n", "\r\n", "\r", "":
		return true
	}
	return false
}

func trimEOL(l []byte) []byte {
	l = bytes.TrimSuffix(l, []byte("\n"))
	return bytes.TrimSuffix(l, []byte("\r"))
}

// scanMessage reads the message whose From line (stateMbox) or first
// header line (stateSingle) is next, up to the next separator.
func (r *mboxReader) scanMessage() (*Envelope, error) {
	single := r.state == stateSingle
	start := r.msgStart
	fromLine := r.fromLine
	if single {
		start = 0
	}
	env := &Envelope{Loc: Location{File: r.opts.Name, Offset: start}, Seq: r.seq}
	r.seq++

	h := sha256.New()
	hb, err := readHeaderBlock(r.br, h, maxHeaderBytes)
	r.pos += hb.n
	if err != nil {
		return nil, err
	}
	env.ContentKey = "sha256:" + hex.EncodeToString(h.Sum(nil))

	fields, issues := parseHeaderBlock(hb.block)
	if hb.truncated {
		issues = append(issues, Issue{SeverityWarning, "header-too-large",
			fmt.Sprintf("header block is over %d bytes; fields after that were skipped", maxHeaderBytes)})
	}

	var end int64
	if single {
		// One message: the whole file.
		end = r.size
		r.state = stateDone
	} else {
		end, err = r.scanBody(hb.atEOF, contentLength(fields))
		if err != nil {
			return nil, err
		}
	}
	env.Size = end - start

	fillEnvelope(env, fields, issues, fromLine, r.opts)
	return env, nil
}

// contentLength returns the value of a valid Content-Length header, or -1.
func contentLength(fields []rawField) int64 {
	for _, f := range fields {
		if f.Key == "Content-Length" {
			var n int64
			v := strings.TrimSpace(unfold(f.Value))
			if v == "" || len(v) > 15 {
				return -1
			}
			for _, c := range v {
				if c < '0' || c > '9' {
					return -1
				}
				n = n*10 + int64(c-'0')
			}
			return n
		}
	}
	return -1
}

// scanBody reads body lines up to the next separator, leaves its From line
// pending and returns the offset where the current message ends. clen is
// the Content-Length header's value, or -1.
func (r *mboxReader) scanBody(atEOF bool, clen int64) (int64, error) {
	if atEOF {
		r.state = stateDone
		return r.pos, nil
	}
	// mboxcl: separators before the end of a Content-Length body that ends
	// on a message boundary do not split. Checked lazily, at the first
	// separator inside the body, by reading the bytes at its end.
	target := int64(-1)
	if clen > 0 {
		target = r.pos + clen
	}
	checked := false
	prevEmpty := true // the blank line that ended the header
	for {
		lineStart := r.pos
		chunk, err := r.br.ReadSlice('\n')
		if len(chunk) == 0 && err == io.EOF {
			r.state = stateDone
			return lineStart, nil
		}
		if err != nil && err != bufio.ErrBufferFull && err != io.EOF {
			return 0, err
		}
		r.pos += int64(len(chunk))
		isSep := prevEmpty && bytes.HasPrefix(chunk, fromPrefix)
		blank := err != bufio.ErrBufferFull && isBlankLine(chunk)
		var from []byte
		if isSep {
			from = append([]byte(nil), trimEOL(chunk[:min(len(chunk), maxFromLine)])...)
		}
		for err == bufio.ErrBufferFull { // rest of a long line
			chunk, err = r.br.ReadSlice('\n')
			r.pos += int64(len(chunk))
		}
		if err != nil && err != io.EOF {
			return 0, err
		}
		if isSep && lineStart < target {
			if !checked {
				checked = true
				if !r.boundaryAt(target) {
					target = -1
				}
			}
			if target > lineStart {
				isSep = false // inside the counted body
			}
		}
		if isSep {
			r.msgStart, r.fromLine = lineStart, from
			return lineStart, nil
		}
		prevEmpty = blank
	}
}

// boundaryAt reports whether a message may end at off: at the end of the
// file, or at the start of a line that is a "From " line or an empty line
// followed by a "From " line or the end of the file.
func (r *mboxReader) boundaryAt(off int64) bool {
	if off == r.size {
		return true
	}
	if off > r.size || off < 1 {
		return false
	}
	var b [8]byte
	n, err := r.ra.ReadAt(b[:], off-1)
	if err != nil && err != io.EOF {
		return false
	}
	p := b[:n]
	if p[0] != '\n' {
		return false // not at a line start
	}
	p = p[1:]
	switch {
	case bytes.HasPrefix(p, fromPrefix):
		return true
	case bytes.HasPrefix(p, []byte("\nFrom ")), bytes.HasPrefix(p, []byte("\r\nFrom ")):
		return true
	case string(p) == "\n" && off+1 == r.size, string(p) == "\r\n" && off+2 == r.size:
		return true
	}
	return false
}
