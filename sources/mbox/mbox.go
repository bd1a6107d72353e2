package mbox

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/internal/files"
	"github.com/threadlift/threadlift/sources/internal/header"
)

// The mbox reader.
//
// We split mbox files with our own strict splitter rather than go-mbox's
// Reader: go-mbox cannot report byte offsets (contract §9 locates every
// mbox record by the offset of its "From " line), it ends a message at ANY
// line starting "From " (contract §3 decides by the line's shape, the
// blank line before it and the line after it) and it is mboxo-only
// (">>From " stays escaped). go-mbox's Writer is still fine for writing
// mboxes.
//
// Splitting rules: see split.go (contract §3). A file whose first
// non-blank line is not a "From " line (a single .eml message, say) is
// read as ONE message at offset 0 spanning the whole file; it is never
// split. A compressed file (gzip, bzip2, zstd, xz) is one unreadable
// record that says to decompress it first.
//
// Memory does not grow with message or file size: bodies are never held,
// lines longer than the read buffer are consumed in pieces, and at most
// header.MaxBytes of each header block is kept (the rest is skipped with a
// warning, though it still counts for the content key).

const (
	maxFromLine     = 1024 // bytes of a "From " line kept for its date
	scanBufferBytes = 64 << 10
	loadBufferBytes = 32 << 10
)

// Format describes the mbox format for a sources.Registry: mbox files
// (mboxo, mboxrd, mboxcl/mboxcl2) and single message files, with Gmail
// Takeout's threading and labels (gmail.go).
func Format() sources.Format {
	return sources.Format{Name: "mbox", Open: Open, Keys: []string{"thread_by", "skip_labels"}}
}

// Open opens an mbox file (mboxo, mboxrd, mboxcl/mboxcl2, LF or CRLF)
// or a single message file (.eml). The file is opened once; Load reads
// records back with ReadAt and is safe for concurrent use.
func Open(path string, opts sources.Options) (sources.Reader, error) {
	f, st, err := files.Open(path, "mbox")
	if err != nil {
		return nil, err
	}
	var ra io.ReaderAt = f
	bareCR, err := sniffBareCR(f, st.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open mbox %s: %w", path, err)
	}
	if bareCR {
		ra = crReaderAt{f}
	}
	r := newReader(ra, st.Size(), f, opts.WithDefaults(path), scanBufferBytes)
	r.bareCR = bareCR
	return r, nil
}

// NewMessage returns a reader of ra (size bytes) as ONE message file: a
// maildir message or an .eml file, named opts.Name. It is never split:
// a leading "From " line is skipped (its date is the last resort, as in
// an mbox) and no "From " line of the body ends it; nor is its body
// unescaped (">From " stays as written: only mbox files escape). Its one
// record is at offset 0 and spans the whole file. Closing the reader
// does not close ra.
//
// bufs, when not nil, lends Load its buffers: a caller that reads many
// message files shares one (a Load's buffers are 64 KiB, most messages
// a few).
func NewMessage(ra io.ReaderAt, size int64, opts sources.Options, bufs *Buffers) (sources.Reader, error) {
	bareCR, err := sniffBareCR(ra, size)
	if err != nil {
		return nil, fmt.Errorf("open message %s: %w", opts.Name, err)
	}
	if bareCR {
		ra = crReaderAt{ra}
	}
	// Message files are mostly small: a buffer of the file's size, not
	// of a whole mbox's, when thousands are read one after the other.
	r := newReader(ra, size, nil, opts.WithDefaults(opts.Name), int(min(max(size+16, 1<<10), scanBufferBytes)))
	r.bareCR = bareCR
	r.message = true
	if bufs != nil {
		r.bufs = &bufs.pool
	}
	return r, nil
}

// Buffers are load buffers that the readers of many message files share
// (NewMessage). The zero value is ready; it is safe for concurrent use.
type Buffers struct{ pool sync.Pool }

// sniffBareCR reports whether the file uses bare CR line endings (classic
// Mac OS): its first 64 KiB hold a CR but no LF.
func sniffBareCR(ra io.ReaderAt, size int64) (bool, error) {
	buf := make([]byte, min(size, 64<<10))
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

var _ sources.Reader = (*reader)(nil)

type scanState int

const (
	stateStart  scanState = iota // nothing read yet
	stateMbox                    // the From line of the next message has been read
	stateSingle                  // the file is one message without a From line
	stateDone
)

type reader struct {
	ra     io.ReaderAt
	size   int64
	closer io.Closer
	opts   sources.Options
	bareCR bool // the file's lines end in bare CRs, read as LFs
	// message: the file is one message (NewMessage), never split, its
	// body not unescaped.
	message bool

	// Next's state; Next is not safe for concurrent use.
	br       *bufio.Reader
	pos      int64 // file offset of the next byte br returns
	state    scanState
	seq      int
	msgStart int64  // offset of the pending From line (stateMbox)
	fromLine []byte // the pending From line (capped, without line end)
	// pendingIssue says the pending From line was taken as a separator
	// without a blank line before it; nil otherwise.
	pendingIssue *sources.Issue
	compressed   string         // the file is compressed ("gzip", ...): Next reports it once
	closed       atomic.Bool    // read by concurrent loads
	err          error          // sticky I/O error
	skipped      map[string]int // messages left out by skip_labels, by reason
	skipLabel    string         // the skip_labels label of the message just scanned

	// bufs holds Load's read buffers: messages are often smaller than a
	// buffer, and allocating one per Load dominated its cost.
	bufs *sync.Pool
}

func newReader(ra io.ReaderAt, size int64, closer io.Closer, opts sources.Options, bufSize int) *reader {
	r := &reader{ra: ra, size: size, closer: closer, opts: opts, bufs: new(sync.Pool)}
	r.br = bufio.NewReaderSize(nil, bufSize)
	r.seek(0)
	return r
}

func (r *reader) seek(off int64) {
	sr := io.NewSectionReader(r.ra, off, r.size-off)
	if r.br == nil {
		r.br = bufio.NewReaderSize(sr, scanBufferBytes)
	} else {
		r.br.Reset(sr)
	}
	r.pos = off
}

var _ sources.RawReader = (*reader)(nil)

// Raw returns the record's bytes as they are in the file. It is safe for
// concurrent use, like Load.
func (r *reader) Raw(env *sources.Envelope) (io.Reader, error) {
	if env.Loc.Offset < 0 || env.Size < 0 || env.Loc.Offset+env.Size > r.size {
		return nil, fmt.Errorf("raw record %s: outside the file (%d bytes)", env.Loc, r.size)
	}
	return io.NewSectionReader(r.ra, env.Loc.Offset, env.Size), nil
}

// Close closes the file. Next and Load fail afterwards.
func (r *reader) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	if r.closer != nil {
		return r.closer.Close()
	}
	return nil
}

// Next returns the envelope of the next message, or io.EOF.
func (r *reader) Next() (*sources.Envelope, error) {
	if r.closed.Load() {
		return nil, sources.ErrClosed
	}
	if r.err != nil {
		return nil, r.err
	}
	if r.state == stateStart {
		if err := r.start(); err != nil {
			r.err = err
			return nil, err
		}
		if r.compressed != "" {
			return nil, &sources.RecordError{Loc: sources.Location{File: r.opts.Name, Offset: 0}, Rule: RuleCompressed,
				Err: fmt.Errorf("the file is %s-compressed, not an mbox: decompress it first (%s %s) and give the result as the source", r.compressed, decompressHint(r.compressed), r.opts.Name)}
		}
	}
	for r.state == stateMbox || r.state == stateSingle {
		env, err := r.scanMessage()
		if err != nil {
			r.err = fmt.Errorf("read %s at byte %d: %w", r.opts.Name, r.pos, err)
			return nil, r.err
		}
		if r.skip(env) {
			continue
		}
		if r.bareCR {
			env.Issues = append(env.Issues, sources.Issue{Severity: sources.SeverityWarning, Rule: "bare-cr", Reason: "the file's lines end in bare CR (classic Mac OS); read as line ends"})
		}
		return env, nil
	}
	return nil, io.EOF
}

// start skips a byte-order mark and blank lines, then decides between an
// mbox and a single message.
func (r *reader) start() error {
	// Read transparently, a compressed file would leave Load no offsets
	// to seek to (every Load would decompress from the start): it is
	// refused with what to do instead.
	if b, _ := r.br.Peek(6); compressedKind(b) != "" {
		r.compressed = compressedKind(b)
		r.state = stateDone
		return nil
	}
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
			if r.message {
				// One message: its From line read, its header next.
				r.state = stateSingle
			}
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
func (r *reader) readLine(dst []byte, max int) ([]byte, int64, error) {
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

func trimEOL(l []byte) []byte {
	l = bytes.TrimSuffix(l, []byte("\n"))
	return bytes.TrimSuffix(l, []byte("\r"))
}

// scanMessage reads the message whose From line (stateMbox) or first
// header line (stateSingle) is next, up to the next separator.
func (r *reader) scanMessage() (*sources.Envelope, error) {
	single := r.state == stateSingle
	start := r.msgStart
	fromLine := r.fromLine
	if single {
		start = 0
	}
	env := &sources.Envelope{Loc: sources.Location{File: r.opts.Name, Offset: start}, Seq: r.seq}
	r.seq++
	sepIssue := r.pendingIssue // how this message's From line was taken
	r.pendingIssue = nil

	h := sha256.New()
	hb, err := header.ReadBlock(r.br, h, header.MaxBytes)
	r.pos += hb.N
	if err != nil {
		return nil, err
	}
	env.ContentKey = "sha256:" + hex.EncodeToString(h.Sum(nil))

	fields, issues := header.Parse(hb.Lines)
	if sepIssue != nil {
		issues = append([]sources.Issue{*sepIssue}, issues...)
	}
	if hb.Truncated {
		issues = append(issues, sources.Issue{Severity: sources.SeverityWarning, Rule: "header-too-large", Reason: header.TooLargeReason(hb.Lost)})
	}

	var end int64
	if single {
		// One message: the whole file.
		end = r.size
		r.state = stateDone
	} else {
		clen, badCL := contentLength(fields)
		var clIssues []sources.Issue
		end, clIssues, err = r.scanBody(hb.AtEOF, clen, badCL)
		if err != nil {
			return nil, err
		}
		issues = append(issues, clIssues...)
	}
	env.Size = end - start

	header.FillEnvelope(env, fields, issues, fromLine, r.opts)
	r.gmail(env, fields)
	r.skipLabel = r.skippedLabel(fields)
	return env, nil
}

// contentLength returns the Content-Length header's value: n is -1 when
// there is none, and bad holds the value when it is not a number.
func contentLength(fields []header.RawField) (n int64, bad string) {
	for _, f := range fields {
		if f.Key == "Content-Length" {
			v := strings.TrimSpace(header.Unfold(f.Value))
			if v == "" || len(v) > 15 {
				return -1, v
			}
			for _, c := range v {
				if c < '0' || c > '9' {
					return -1, v
				}
				n = n*10 + int64(c-'0')
			}
			return n, ""
		}
	}
	return -1, ""
}

// scanBody reads body lines up to the next separator (split.go),
// leaves its From line pending and returns the offset where the current
// message ends, with the warnings of the current message. clen is the
// Content-Length header's value, or -1.
func (r *reader) scanBody(atEOF bool, clen int64, badCL string) (int64, []sources.Issue, error) {
	var issues []sources.Issue
	if badCL != "" {
		issues = append(issues, sources.Issue{Severity: sources.SeverityWarning, Rule: string(RuleContentLengthIgnored),
			Reason: fmt.Sprintf("Content-Length %q is not a number of bytes; ignored", header.Clip([]byte(badCL), 40))})
	}
	if atEOF {
		r.state = stateDone
		return r.pos, issues, nil
	}
	if clen >= 0 {
		// mboxcl: a Content-Length that ends on a message boundary decides
		// where the message ends, whatever "From " lines its body holds.
		next, prevBlank, why := r.clBoundary(r.pos, r.pos+clen)
		if why == "" {
			if next == r.size {
				r.state = stateDone
				return next, issues, nil
			}
			r.seek(next)
			from, _, err := r.readLine(nil, maxFromLine)
			if err != nil {
				return 0, nil, err
			}
			r.msgStart, r.fromLine = next, trimEOL(from)
			r.pendingIssue = nil
			if !prevBlank {
				r.pendingIssue = &sources.Issue{Severity: sources.SeverityWarning, Rule: string(RuleSeparatorNoBlank),
					Reason: "the message starts at a \"From \" line with no blank line before it, where the previous message's Content-Length ends"}
			}
			return next, issues, nil
		}
		issues = append(issues, sources.Issue{Severity: sources.SeverityWarning, Rule: string(RuleContentLengthIgnored),
			Reason: fmt.Sprintf("Content-Length %d ignored: %s; the message ends at the next separator instead", clen, why)})
	}
	prevEmpty := true // the blank line that ended the header
	for {
		lineStart := r.pos
		chunk, err := r.br.ReadSlice('\n')
		if len(chunk) == 0 && err == io.EOF {
			r.state = stateDone
			return lineStart, issues, nil
		}
		if err != nil && err != bufio.ErrBufferFull && err != io.EOF {
			return 0, nil, err
		}
		r.pos += int64(len(chunk))
		isFrom := bytes.HasPrefix(chunk, fromPrefix)
		blank := err != bufio.ErrBufferFull && header.IsBlankLine(chunk)
		var from []byte
		if isFrom {
			from = append([]byte(nil), trimEOL(chunk[:min(len(chunk), maxFromLine)])...)
		}
		for err == bufio.ErrBufferFull { // rest of a long line
			chunk, err = r.br.ReadSlice('\n')
			r.pos += int64(len(chunk))
		}
		if err != nil && err != io.EOF {
			return 0, nil, err
		}
		if isFrom {
			// Rare: the line after it decides (Peek after the line is
			// consumed; chunk is not used again).
			k := fromLineKind(from)
			var next []byte
			if k != fromBody && (k == fromBare || !prevEmpty) {
				next, _ = r.br.Peek(header.MaxFieldNameBytes)
			}
			if startsMessage(k, prevEmpty, next) {
				r.msgStart, r.fromLine = lineStart, from
				r.pendingIssue = nil
				if !prevEmpty {
					r.pendingIssue = &sources.Issue{Severity: sources.SeverityWarning, Rule: string(RuleSeparatorNoBlank),
						Reason: fmt.Sprintf("the message starts at the line %q, with no blank line before it, because a header field follows it", header.Clip(from, 80))}
				}
				return lineStart, issues, nil
			}
		}
		prevEmpty = blank
	}
}
