package sources

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/mail"
	nettextproto "net/textproto"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/inbucket/html2text"
)

// Load decoding.
//
// The header block is read with our own tolerant parser (the one Next
// uses) and repaired (lines without a colon dropped, raw 8-bit bytes made
// UTF-8) into a topHeader that holds each field as go-message's
// textproto.ReadHeader would read the repaired block: go-message on its
// own loses the whole message on a header line without a colon.
//
// The MIME tree is walked with go-message's textproto.MultipartReader, but
// by our own recursive walk rather than message.Entity.Walk, and transfer
// encodings are decoded by our own lenient decoders rather than by
// message.New:
//   - Entity.Walk stops the whole walk at the first broken nested multipart,
//     so the sibling parts after it were lost; ours drops only what is
//     broken and says so.
//   - message.New's decoders stop at the first bad byte (mime/quotedprintable
//     rejects control characters, encoding/base64 any stray character);
//     ours keep everything decodable and count what they skipped
//     ("bad-encoding").
//   - charsets go through decodeCharset (see decode.go).
//
// Body selection: the first text/plain part that is not an attachment is
// Body; further inline text/plain parts (mailing-list footers, say) are
// appended to it after a blank line. HTMLBody is set only when the message
// has no text/plain part (as the Message type documents); Body is then the
// text html2text derives from it. Inside multipart/alternative the
// text/plain part wins. Other inline text/* parts (text/enriched, ...) are
// the Body only when there is neither text/plain nor text/html; otherwise
// they are attachments. Every non-text part (message/rfc822 included) and
// every part with Content-Disposition: attachment is an Attachment, but for
// the inline rules of attachments.go (unreferenced inline parts of a
// multipart/related are left out); its content is streamed to count its
// size and never held. Attachment.Part records where the part is, for
// OpenAttachment.

const maxDepth = 32 // deeper multipart nesting is not walked

// Load decodes the message of env fully. It is safe for concurrent use.
// It returns an error only for I/O failures; content problems are Issues.
func (r *mboxReader) Load(env *Envelope) (*Message, error) {
	return r.LoadWith(env, LoadOptions{})
}

// LoadWith is Load leaving out what o says. It is safe for concurrent use.
func (r *mboxReader) LoadWith(env *Envelope, o LoadOptions) (*Message, error) {
	if r.closed.Load() {
		return nil, ErrClosed
	}
	if env == nil {
		return nil, fmt.Errorf("load %s: envelope is not a record of this file", r.opts.Name)
	}
	msg := &Message{Envelope: env}
	msg.Issues = append(msg.Issues, env.Issues...)

	ls, _ := r.bufs.Get().(*loadState)
	if ls == nil {
		ls = &loadState{br: bufio.NewReaderSize(nil, loadBufferBytes)}
	}
	defer func() {
		ls.br.Reset(nil)
		if ls.text.Cap() > maxPooledText {
			ls.text = bytes.Buffer{} // one huge part must not stay in memory
		}
		ls.text.Reset()
		ls.b64.reset(nil, nil, "")
		ls.qp.reset(nil, nil, "")
		if ls.qpIn != nil {
			ls.qpIn.Reset(nil)
		}
		for _, m := range ls.mime {
			m.Reset(nil)
		}
		r.bufs.Put(ls)
	}()
	head, err := r.readHead(env, ls.br, nil, ls)
	if err != nil {
		return nil, err
	}
	if !head.hasHeader {
		return msg, nil // no-header (or nothing after the From line): nothing to decode
	}

	d := &decoder{msg: msg, budget: r.opts.MaxMessageBytes, atFileEnd: env.Loc.Offset+env.Size == r.size,
		noHTMLText: o.NoHTMLText, ls: ls, prefix: head.prefix()}
	d.headers(&head.hdr)
	if env.Size > r.opts.MaxMessageBytes {
		// rejected as too-large: do not decode the body
	} else {
		d.entity(&head.hdr, head.body(ls.br), nil, 0)
		if head.rec.err != nil {
			return nil, fmt.Errorf("load %s: %w", env.Loc, head.rec.err)
		}
		d.finish()
	}
	return msg, nil
}

// maxPooledText is the largest text buffer kept for the next Load: text
// parts are mostly a few KiB, and a rare big one should not pin its
// buffer for the rest of the run.
const maxPooledText = 1 << 20

// loadState is what a Load reuses from the previous one (mboxReader.bufs):
// allocating a read buffer per Load, and regrowing a text buffer per part,
// dominated its cost.
type loadState struct {
	whole   []byte       // a small record, read in one piece
	wholeR  bytes.Reader // over whole
	br      *bufio.Reader
	text    bytes.Buffer // readText's
	conv    []byte       // text converted from a legacy charset
	capture []byte       // a multipart's captureReader's
	b64     b64Checked
	qp      qpChecked
	qpIn    *bufio.Reader   // qp's input
	mime    []*bufio.Reader // multipart read buffers, by nesting level
}

// recordHead is what readHead found at the start of a record.
type recordHead struct {
	rec       *errRecorder // the record's reader under br: its err is an I/O failure
	hdr       topHeader    // the repaired header
	hasHeader bool         // false: the record has no header to decode
	repair    headerRepair // where header lines that are not fields went
}

// readHead points br at env's record (without the empty line that
// separates mbox messages), skips its preamble and "From " line and reads
// and repairs its header block, leaving br at the start of the body. h,
// when not nil, is fed the header block as Next hashed it for ContentKey.
// ls, when not nil, lends a buffer for reading a small record in one
// piece. The error is an I/O failure.
func (r *mboxReader) readHead(env *Envelope, br *bufio.Reader, h hash.Hash, ls *loadState) (recordHead, error) {
	var head recordHead
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
			ls.wholeR.Reset(b[:len(b)-int(separatorBytes(b[max(0, len(b)-4):]))])
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
			size -= separatorBytes(tail[:k])
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
		if hdr, ok := headerFromBuffer(br); ok {
			head.hdr, head.hasHeader = hdr, len(hdr) > 0
			return head, nil
		}
	}
	hb, err := readHeaderBlock(br, h, maxHeaderBytes)
	if head.rec.err != nil {
		return head, fmt.Errorf("load %s: %w", env.Loc, head.rec.err)
	}
	if err != nil {
		return head, fmt.Errorf("load %s: %w", env.Loc, err)
	}
	fields, _, rep := parseHeaderBlockRepair(hb.block) // issues are the envelope's
	if fields != nil {
		head.hdr, head.hasHeader = repairedHeader(fields), true
		head.repair = rep
	}
	return head, nil
}

// body returns the reader of the record's body, br being left at the
// start of its body by readHead: the header lines that became body text
// first (parseHeaderBlockRepair), then the body, unescaped.
func (h *recordHead) body(br *bufio.Reader) io.Reader {
	u := newUnescaper(br)
	if len(h.repair.body) == 0 {
		return u
	}
	lead := append(append([]byte(nil), h.repair.body...), '\n') // the blank line that ended the block
	if lead[len(lead)-2] != '\n' {
		lead = append(lead[:len(lead)-1], '\n', '\n')
	}
	return io.MultiReader(bytes.NewReader(lead), u)
}

// prefix is the text of header lines kept as the first lines of the body.
func (h *recordHead) prefix() string {
	if len(h.repair.text) == 0 {
		return ""
	}
	s := strings.Join(h.repair.text, "\n")
	if !utf8.ValidString(s) {
		s = fixUTF8([]byte(s))
	}
	return s
}

// headerFromBuffer reads the header block from what br holds, when it
// holds all of it and the blank line after it (ok; br is left after the
// blank line), and otherwise consumes nothing. It gives what
// readHeaderBlock, parseHeaderBlock and repairedHeader give
// (FuzzHeaderFromBuffer) without copying the block and then each value
// before making the values: Next already read this header once, and
// reading it again was a good part of Load.
//
// Line ends need no care: parseHeaderBlock trims the CRs before each LF,
// and a line that is blank only once its CRs are trimmed ("\r\r\n") does
// not end the block for readHeaderBlock, nor here.
func headerFromBuffer(br *bufio.Reader) (topHeader, bool) {
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
	h := make(topHeader, 0, bytes.Count(b[:end], []byte("\n"))) // at most a field a line
	var key string
	var segs [][]byte // the value's lines: first the text after the colon
	var stack [8][]byte
	flush := func() {
		if key != "" {
			h = append(h, headerValue{key: key, value: unfoldLines(segs)})
		}
	}
	for block := b[:end]; len(block) > 0; {
		nl := bytes.IndexByte(block, '\n') // every line of block ends with one
		line := bytes.TrimRight(block[:nl], "\r")
		block = block[nl+1:]
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			if key == "" {
				return nil, false // continues no field: parseHeaderBlockRepair decides
			}
			segs = append(segs, line)
			continue
		}
		i := bytes.IndexByte(line, ':')
		if i < 0 || !validKey(bytes.TrimRight(line[:i], " \t")) {
			return nil, false // not a field: parseHeaderBlockRepair decides where its text goes
		}
		flush()
		key = nettextproto.CanonicalMIMEHeaderKey(string(bytes.TrimRight(line[:i], " \t")))
		segs = append(stack[:0], line[i+1:])
	}
	flush()
	br.Discard(next)
	return h, true
}

// unfoldLines is repairedHeader's value of a field whose value is lines
// joined with LFs: each line made UTF-8 (the raw 8-bit bytes of a line
// that is not UTF-8 read as windows-1252; a UTF-8 sequence cannot span a
// line end, so line by line is as the whole value at once) and trimmed of
// spaces and tabs, the empty ones left out, joined with one space.
func unfoldLines(lines [][]byte) string {
	if len(lines) == 1 {
		l := trimSpaceTab(lines[0])
		if !bytesASCII(l) && !utf8.Valid(l) {
			return fixUTF8(l)
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
			b.WriteString(fixUTF8(l))
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

// separatorBytes is how many bytes at the end of a record of at least two
// bytes, whose last (up to) four bytes are tail, are the empty line that
// separates mbox messages, not part of the message.
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

// partHeader is what the walk reads of a part's header: go-message's
// *textproto.Header for the parts of a multipart, *topHeader for the
// message's own.
type partHeader interface {
	Get(key string) string
}

// topHeader is a message's header, each field as go-message's
// textproto.ReadHeader reads it from the repaired header block: the
// fields are already split and their keys checked and canonical, so
// writing them back out to parse them again (and keeping what
// textproto.Header keeps to write them out unchanged) was wasted work.
type topHeader []headerValue

type headerValue struct {
	key   string // canonical
	value string // unfolded as go-message does
}

// Get returns the value of the first field named key, or "".
func (h *topHeader) Get(key string) string {
	key = nettextproto.CanonicalMIMEHeaderKey(key)
	for _, f := range *h {
		if f.key == key {
			return f.value
		}
	}
	return ""
}

// Values returns the values of every field named key, in order.
func (h *topHeader) Values(key string) []string {
	key = nettextproto.CanonicalMIMEHeaderKey(key)
	var out []string
	for _, f := range *h {
		if f.key == key {
			out = append(out, f.value)
		}
	}
	return out
}

// Has reports whether a field is named key.
func (h *topHeader) Has(key string) bool {
	key = nettextproto.CanonicalMIMEHeaderKey(key)
	for _, f := range *h {
		if f.key == key {
			return true
		}
	}
	return false
}

// repairedHeader makes raw 8-bit bytes of the fields UTF-8 and unfolds
// their values.
func repairedHeader(fields []rawField) topHeader {
	h := make(topHeader, len(fields))
	for i, f := range fields {
		v := f.Value
		if !bytesASCII(v) && !bytesValidUTF8(v) {
			v = []byte(fixUTF8(v))
		}
		h[i] = headerValue{key: f.Key, value: unfoldValue(v)}
	}
	return h
}

// unfoldValue is the value go-message's textproto.ReadHeader reads from a
// field whose value is v written back with each line ending in CRLF (the
// CRs before each line end dropped first): its lines trimmed of spaces and
// tabs, the empty ones left out, joined with one space. (unfold, for the
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

// decoder collects what the walk finds.
type decoder struct {
	msg       *Message
	budget    int64 // bytes of text still allowed
	atFileEnd bool  // the record ends at the end of its file

	noHTMLText bool       // LoadOptions.NoHTMLText
	ls         *loadState // buffers to reuse; nil: allocate (OpenAttachment's reader keeps them)

	plain     []string
	html      string
	hasHTML   bool
	other     string // first inline text/* that is neither plain nor html
	hasOther  bool
	recovered string // text of a multipart whose boundary never occurs
	hasRecov  bool
	prefix    string // header lines kept as the first lines of the body

	cids    map[string]bool // lower-cased Content-IDs referenced by "cid:" in a text/html part
	unnamed []bool          // per attachment: it had no file name (one is made up by finish)
	related []bool          // per attachment: it is a part of a multipart/related
	parent  string          // media type of the multipart whose part entity is called for

	// find is set by OpenAttachment: the walk stops at that attachment.
	find *partFinder
}

func (d *decoder) warn(rule, format string, args ...any) {
	d.msg.Issues = append(d.msg.Issues, Issue{SeverityWarning, rule, fmt.Sprintf(format, args...)})
}

func (d *decoder) fail(rule, format string, args ...any) {
	d.msg.Issues = append(d.msg.Issues, Issue{SeverityError, rule, fmt.Sprintf(format, args...)})
}

// headers fills Header, From, To and Cc from the top-level header.
func (d *decoder) headers(h *topHeader) {
	m := d.msg
	m.Header = make(map[string][]string, len(*h))
	for _, f := range *h {
		v, _ := decodeWords(f.value)
		m.Header[f.key] = append(m.Header[f.key], v)
	}

	from := d.addresses(h, "From")
	if len(from) > 0 {
		m.From, m.HasFrom = from[0], true
	} else {
		why := "no From header"
		if h.Has("From") {
			why = fmt.Sprintf("From header %q has no valid address", clip([]byte(h.Get("From")), 80))
		}
		d.fail("no-sender", "%s", why)
	}
	m.To = d.addresses(h, "To")
	m.Cc = d.addresses(h, "Cc")
	if len(m.To) == 0 && len(m.Cc) == 0 {
		switch {
		case !h.Has("To") && !h.Has("Cc"):
			d.fail("no-recipient", "no To or Cc header")
		default:
			d.fail("no-recipient", "no valid address in To %q or Cc %q", clip([]byte(h.Get("To")), 80), clip([]byte(h.Get("Cc")), 80))
		}
	}
}

// addresses parses every key field of h leniently: the whole list with
// net/mail first, then address by address; invalid ones are dropped with
// an "invalid-address" warning (only when some other address of the field
// is valid, or the field is From: no valid one at all is the caller's
// error).
func (d *decoder) addresses(h *topHeader, key string) []Address {
	var out []Address
	var bad []string
	var unknown []string
	p := &mail.AddressParser{WordDecoder: wordDecoder(&unknown)}
	for _, v := range h.Values(key) {
		o, b := parseAddresses(p, v)
		out = append(out, o...)
		for _, x := range b {
			// "a@x.com b@x.com": addresses without the comma between them.
			if list := spaceSeparated(x); len(list) > 0 {
				out = append(out, list...)
				what := "read as " + strconv.Itoa(len(list)) + " addresses"
				if key == "From" {
					what = "the first, " + list[0].Email + ", is the sender"
				}
				d.warn("invalid-address", "%s %q holds addresses without a comma between them; %s", key, clip([]byte(x), 80), what)
				continue
			}
			bad = append(bad, x)
		}
	}
	for _, cs := range dedupe(unknown) {
		d.warn("charset", "unknown charset %s in %s header; valid UTF-8 kept, other bytes read as windows-1252", cs, key)
	}
	if len(bad) > 0 && (len(out) > 0 || key != "From") {
		q := make([]string, len(bad))
		for i, b := range bad {
			q[i] = strconv.Quote(clip([]byte(b), 60))
		}
		d.warn("invalid-address", "dropped invalid address(es) %s from %s", strings.Join(q, ", "), key)
	}
	return out
}

// spaceSeparated reads s as two or more bare addresses separated by white
// space only, or returns nil.
func spaceSeparated(s string) []Address {
	words := strings.Fields(s)
	if len(words) < 2 {
		return nil
	}
	out := make([]Address, 0, len(words))
	for _, w := range words {
		w = strings.Trim(w, `<>"'(),;`)
		if !validAddrSpec(w) {
			return nil
		}
		out = append(out, Address{Email: w})
	}
	return out
}

// lenientAddress parses one address: net/mail, then "<addr>" with the
// text before it as name, then a bare word with an '@'.
func lenientAddress(p *mail.AddressParser, s string) (Address, bool) {
	s = strings.TrimSpace(s)
	if a, err := p.Parse(s); err == nil {
		return Address{Name: a.Name, Email: a.Address}, true
	}
	if i := strings.LastIndexByte(s, '<'); i >= 0 {
		if j := strings.IndexByte(s[i:], '>'); j > 0 {
			addr := strings.TrimSpace(s[i+1 : i+j])
			if validAddrSpec(addr) {
				name := strings.Trim(strings.TrimSpace(s[:i]), `"' `)
				name, _ = decodeWords(name)
				return Address{Name: name, Email: addr}, true
			}
		}
	}
	// "user at example.com" (pipermail) and bare addresses with junk
	if t := strings.Replace(s, " at ", "@", 1); strings.Count(t, "@") == 1 {
		w := strings.Fields(t)
		for _, x := range w {
			x = strings.Trim(x, `<>"'(),;`)
			if validAddrSpec(x) {
				return Address{Email: x}, true
			}
		}
	}
	return Address{}, false
}

func validAddrSpec(s string) bool {
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || strings.ContainsAny(s, " \t<>,;\"()[]\\") {
		return false
	}
	_, err := mail.ParseAddress("<" + s + ">")
	return err == nil
}

// splitAddressList splits an address list on commas outside quotes,
// comments and angle brackets.
func splitAddressList(v string) []string {
	var out []string
	depth, angle := 0, false
	quote := false
	start := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case quote:
			if c == '\\' {
				i++
			} else if c == '"' {
				quote = false
			}
		case c == '"':
			quote = true
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case c == '<':
			angle = true
		case c == '>':
			angle = false
		case (c == ',' || c == ';') && depth == 0 && !angle:
			out = append(out, v[start:i])
			start = i + 1
		}
	}
	return append(out, v[start:])
}

// partName names a part for reasons: "the body", "part 2", "part 1.3".
func partName(path []int) string {
	if len(path) == 0 {
		return "the body"
	}
	s := make([]string, len(path))
	for i, p := range path {
		s[i] = strconv.Itoa(p)
	}
	return "part " + strings.Join(s, ".")
}

// mediaType parses Content-Type or Content-Disposition leniently.
func mediaType(v string) (string, map[string]string, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", map[string]string{}, true
	}
	t, params, err := mime.ParseMediaType(v)
	if err == nil {
		return t, params, true
	}
	// lenient: type before ';', params split on ';'
	parts := strings.Split(v, ";")
	t = strings.ToLower(strings.TrimSpace(parts[0]))
	params = map[string]string{}
	for _, p := range parts[1:] {
		k, val, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		val = strings.TrimSpace(val)
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			val = val[1 : len(val)-1]
		}
		if k != "" {
			params[k] = val
		}
	}
	return t, params, false
}

// entity decodes one MIME entity: a multipart is walked, a leaf is either
// text for the body or an attachment.
func (d *decoder) entity(h partHeader, body io.Reader, path []int, depth int) {
	name := partName(path)
	parent := d.parent
	ct, params, _ := mediaType(h.Get("Content-Type"))
	if ct == "" || !strings.Contains(ct, "/") {
		ct = "text/plain"
	}
	if strings.HasPrefix(ct, "multipart/") {
		if depth < maxDepth {
			d.multipart(ct, params, body, path, depth)
		} else {
			d.tooDeep(ct, body, name)
		}
		return
	}

	disp, dparams, _ := mediaType(h.Get("Content-Disposition"))
	filename := dparams["filename"]
	if filename == "" {
		// mime.ParseMediaType drops RFC 2231 values in charsets other
		// than UTF-8 and US-ASCII (filename*=iso-8859-1''...)
		filename = rfc2231Param(h.Get("Content-Disposition"), "filename")
	}
	if filename == "" {
		filename = params["name"]
	}
	if filename == "" {
		filename = rfc2231Param(h.Get("Content-Type"), "name")
	}
	filename, _ = decodeWords(filename)
	isAttachment := disp == "attachment" || !strings.HasPrefix(ct, "text/")

	dec := d.transferDecoder(h, body, name)
	if !isAttachment && (ct == "text/plain" || ct == "text/html" || (!d.hasOther && filename == "")) {
		if d.find != nil && d.find.part == partLocator(path) {
			d.find.stop = true // that part is text now
			return
		}
		d.text(ct, params["charset"], dec, name)
		return
	}
	if d.find != nil && d.find.part == partLocator(path) {
		d.find.match(h, ct, filename, dec)
		return
	}
	d.attachment(h, ct, disp, filename, dec, name, partLocator(path), parent == "multipart/related")
}

// transferDecoder wraps body with the decoder of its
// Content-Transfer-Encoding.
func (d *decoder) transferDecoder(h partHeader, body io.Reader, name string) io.Reader {
	cte := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))
	if i := strings.IndexAny(cte, " \t;("); i >= 0 {
		cte = cte[:i]
	}
	switch cte {
	case "base64":
		if d.ls != nil { // one part is read at a time: Load's are reused
			d.ls.b64.reset(body, d, name)
			return &d.ls.b64
		}
		c := &b64Checked{}
		c.reset(body, d, name)
		return c
	case "quoted-printable":
		if d.ls != nil {
			if d.ls.qpIn == nil {
				d.ls.qpIn = bufio.NewReader(body)
			} else {
				d.ls.qpIn.Reset(body)
			}
			d.ls.qp.reset(d.ls.qpIn, d, name)
			return &d.ls.qp
		}
		c := &qpChecked{}
		c.reset(bufio.NewReader(body), d, name)
		return c
	case "", "7bit", "8bit", "binary", "7-bit", "8-bit":
		return body
	}
	d.warn("bad-encoding", "unknown Content-Transfer-Encoding %q in %s; read as is", clip([]byte(cte), 40), name)
	return body
}

// b64Checked reports what base64Reader repaired once it reaches the end.
type b64Checked struct {
	base64Reader
	d        *decoder
	name     string
	reported bool
}

// reset makes c a decoder of src, keeping its buffers.
func (c *b64Checked) reset(src io.Reader, d *decoder, name string) {
	c.base64Reader.reset(src)
	c.d, c.name, c.reported = d, name, false
}

func (c *b64Checked) Read(p []byte) (int, error) {
	n, err := c.base64Reader.Read(p)
	if err != nil {
		c.report()
	}
	return n, err
}

// discard is io.Copy(io.Discard, c) without decoding: the bytes count,
// the repairs are reported, and the error is io.Copy's (nil at the end).
func (c *b64Checked) discard() (int64, error) {
	n, err := c.base64Reader.discard()
	c.report()
	if err == io.EOF {
		err = nil
	}
	return n, err
}

func (c *b64Checked) report() {
	if !c.reported {
		c.reported = true
		if c.invalid > 0 || c.partial {
			what := fmt.Sprintf("%d characters outside the base64 alphabet skipped", c.invalid)
			if c.partial {
				what = "base64 ends inside a 4-character group"
				if c.invalid > 0 {
					what += fmt.Sprintf(", %d characters outside the alphabet skipped", c.invalid)
				}
			}
			c.d.warn("bad-encoding", "invalid base64 in %s: %s; the decodable part was kept", c.name, what)
		}
		if c.junk > 0 {
			c.d.warn("bad-encoding", "%s has %d characters of text after the base64 padding; they were not decoded into it", c.name, c.junk)
		}
	}
}

// qpChecked reports what qpReader repaired once it reaches the end.
type qpChecked struct {
	qpReader
	d        *decoder
	name     string
	reported bool
}

// reset makes c a decoder of src, keeping its buffers.
func (c *qpChecked) reset(src *bufio.Reader, d *decoder, name string) {
	c.qpReader.reset(src)
	c.d, c.name, c.reported = d, name, false
}

func (c *qpChecked) Read(p []byte) (int, error) {
	n, err := c.qpReader.Read(p)
	if err != nil && !c.reported {
		c.reported = true
		if c.invalid > 0 {
			c.d.warn("bad-encoding", "invalid quoted-printable in %s: %d '=' not followed by two hex digits kept as is", c.name, c.invalid)
		}
	}
	return n, err
}

func (d *decoder) multipart(ct string, params map[string]string, body io.Reader, path []int, depth int) {
	name := partName(path)
	boundary := params["boundary"]
	capture := &captureReader{r: body, max: int(min(d.budget, 16<<20))}
	if d.ls != nil {
		capture.buf, d.ls.capture = d.ls.capture, nil
	}
	if boundary == "" {
		d.recover(capture, fmt.Sprintf("%s in %s has no boundary parameter; its text was kept as the body", ct, name))
		return
	}
	mr := newMimeParts(capture, boundary, d.mimeReader(depth))
	nparts := 0
	for {
		p, err := mr.next()
		if err == io.EOF {
			return
		}
		if err != nil {
			if nparts == 0 {
				d.recover(capture, fmt.Sprintf("%s boundary %q never occurs in %s; its text was kept as the body", ct, clip([]byte(boundary), 70), name))
				return
			}
			why := "ends without its closing boundary"
			if d.atFileEnd {
				why += " (the file ends inside this message: truncated?)"
			}
			d.warn("truncated", "%s in %s %s; the %d parts before that were kept", ct, name, why, nparts)
			return
		}
		if nparts == 0 {
			d.stopCapture(capture)
		}
		nparts++
		d.parent = ct
		sub := append(append([]int(nil), path...), nparts)
		if p.Repeated > 0 {
			d.warn("bad-multipart", "%s in %s has a repeated boundary delimiter line (%d extra) before %s; the empty part(s) between them were skipped", ct, name, p.Repeated, partName(sub))
		}
		if p.NoBlank {
			d.warn("bad-multipart", "%s has no blank line after its header; its body starts at the first line that is not a header field", partName(sub))
		}
		if p.HeaderCut {
			d.warn("header-too-large", "the header of %s is over %d bytes; the fields after that were skipped", partName(sub), maxPartHeaderBytes)
		}
		d.entity(&p.Header, p, sub, depth+1)
		if d.find != nil && d.find.stop {
			return // leave the rest unread: the found part reads from it
		}
	}
}

// maxPooledMime bounds the multipart read buffers a Load keeps, one per
// nesting level: deeper ones are allocated.
const maxPooledMime = 4

// mimeReader returns the read buffer for a multipart at depth, Load's
// own when there is one (an outer multipart reads on while an inner one
// does, hence one per level), or nil for newMimeParts to allocate.
func (d *decoder) mimeReader(depth int) *bufio.Reader {
	if d.ls == nil || depth >= maxPooledMime {
		return nil
	}
	for len(d.ls.mime) <= depth {
		d.ls.mime = append(d.ls.mime, bufio.NewReaderSize(nil, mimeBufferBytes))
	}
	return d.ls.mime[depth]
}

// recover reads the rest of a multipart whose boundary never occurs and
// keeps its text.
func (d *decoder) recover(capture *captureReader, reason string) {
	io.Copy(io.Discard, capture)
	if !d.hasRecov {
		text, _ := decodeCharset("", capture.buf)
		d.recovered, d.hasRecov = d.cleanText(text, "the recovered text"), true
	}
	d.stopCapture(capture)
	d.warn("no-boundary", "%s", reason)
}

// tooDeep keeps the raw text of a multipart nested deeper than maxDepth,
// unsplit, as the body of a message that has no other text, and says so
// (rather than leaving "message has no text" as the only trace).
func (d *decoder) tooDeep(ct string, body io.Reader, name string) {
	if d.find != nil {
		return
	}
	b, err := d.readText(body, name)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		d.readError(err, name, int64(len(b)), true)
	}
	if !d.hasRecov {
		text, _ := decodeCharset("", b)
		d.recovered, d.hasRecov = d.cleanText(text, name), true
	}
	d.warn("too-deep", "%s in %s is nested deeper than %d multipart levels; it was not split into parts, and its raw text is the body when the message has no other text", ct, name, maxDepth)
}

// stopCapture stops capture and keeps its buffer for the next multipart:
// only one captures at a time, as the outer one stops at its first part.
func (d *decoder) stopCapture(capture *captureReader) {
	b := capture.buf[:0]
	capture.stop()
	if d.ls != nil && cap(b) <= maxPooledText {
		d.ls.capture = b
	}
}

// readText reads at most the remaining text budget of r. The bytes are
// valid until the next readText: callers keep a string copy.
func (d *decoder) readText(r io.Reader, name string) ([]byte, error) {
	var buf *bytes.Buffer
	if d.ls != nil {
		buf = &d.ls.text
		buf.Reset()
	} else {
		buf = new(bytes.Buffer)
	}
	_, err := buf.ReadFrom(&io.LimitedReader{R: r, N: d.budget + 1})
	b := buf.Bytes()
	if int64(len(b)) > d.budget {
		b = b[:d.budget]
		d.warn("text-truncated", "text of %s is over max_message_bytes %d once decoded; the rest was cut", name, d.budget)
		io.Copy(io.Discard, r)
	}
	d.budget -= int64(len(b))
	return b, err
}

func (d *decoder) text(ct, charset string, r io.Reader, name string) {
	b, err := d.readText(r, name)
	if err != nil {
		d.readError(err, name, int64(len(b)), true)
	}
	var conv *[]byte
	if d.ls != nil {
		conv = &d.ls.conv
	}
	s, st := decodeCharsetBuf(charset, b, conv)
	switch st {
	case decodedInvalid:
		cs := charset
		if cs == "" {
			cs = "none declared"
		}
		d.warn("charset", "%s (charset %s) has bytes that are not valid UTF-8; read as windows-1252", name, cs)
	case decodedUnknown:
		d.warn("charset", "unknown charset %s in %s; valid UTF-8 kept, other bytes read as windows-1252", clip([]byte(charset), 40), name)
	case decodedWrongUTF8:
		d.warn("charset", "%s declares charset %s but its bytes are not valid %s; they are valid UTF-8 and were kept as UTF-8", name, clip([]byte(charset), 40), clip([]byte(charset), 40))
	case decodedLossy:
		d.warn("charset", "%s has bytes that are not valid in its charset %s (nor UTF-8); they became U+FFFD", name, clip([]byte(charset), 40))
	}
	s = d.cleanText(s, name)
	if ct == "text/html" {
		if d.cids == nil {
			d.cids = map[string]bool{}
		}
		cidRefs(s, d.cids)
	}
	switch {
	case ct == "text/plain":
		d.plain = append(d.plain, s)
	case ct == "text/html":
		if !d.hasHTML {
			d.html, d.hasHTML = s, true
		}
	default:
		if !d.hasOther {
			d.other, d.hasOther = s, true
		}
	}
}

// cleanText turns CRLF into LF and removes NUL bytes.
func (d *decoder) cleanText(s, name string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	if n := strings.Count(s, "\x00"); n > 0 {
		s = strings.ReplaceAll(s, "\x00", "")
		d.warn("nul-bytes", "%d NUL bytes removed from %s", n, name)
	}
	return s
}

// readError reports an error met while reading a part.
func (d *decoder) readError(err error, name string, n int64, kept bool) {
	what := "the text read was kept"
	if !kept {
		what = "the attachment was left out"
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		why := "ends before its multipart boundary"
		if d.atFileEnd {
			why += " (the file ends inside this message: truncated?)"
		}
		d.warn("truncated", "%s %s after %d bytes; %s", name, why, n, what)
		return
	}
	d.warn("truncated", "%s could not be read to its end after %d bytes (%v); %s", name, n, err, what)
}

func (d *decoder) attachment(h partHeader, ct, disp, filename string, r io.Reader, name, part string, related bool) {
	var n int64
	var err error
	if b, ok := r.(*b64Checked); ok {
		n, err = b.discard() // the size without the decoded bytes
	} else {
		n, err = io.Copy(io.Discard, r)
	}
	if err != nil {
		// A part cut by the end of the file is left out; one that only lacks
		// its closing boundary in the middle of an archive is kept.
		if errors.Is(err, io.ErrUnexpectedEOF) && !d.atFileEnd {
			d.warn("truncated", "%s ends without its multipart boundary; the attachment was kept (%d bytes)", name, n)
		} else {
			d.readError(err, name, n, false)
			return
		}
	}
	if d.find != nil {
		return // OpenAttachment: only the wanted part matters
	}
	d.msg.Attachments = append(d.msg.Attachments, Attachment{
		Name:        filename,
		ContentType: ct,
		Size:        n,
		Inline:      disp == "inline",
		ContentID:   contentID(h),
		Part:        part,
	})
	d.unnamed = append(d.unnamed, filename == "")
	d.related = append(d.related, related)
}

// finish chooses Body and HTMLBody.
func (d *decoder) finish() {
	m := d.msg
	d.inlineParts()
	switch {
	case len(d.plain) > 0:
		m.Body = strings.Join(d.plain, "\n\n")
	case d.hasHTML && d.noHTMLText:
		m.HTMLBody = d.html
	case d.hasHTML:
		m.HTMLBody = d.html
		text, err := htmlText(d.html)
		if err != nil {
			d.warn("html", "HTML body could not be turned into text (%v); the plain body is empty", err)
		}
		m.Body = text
	case d.hasOther:
		m.Body = d.other
	case d.hasRecov:
		m.Body = d.recovered
	}
	if d.prefix != "" {
		if m.Body == "" {
			m.Body = d.prefix + "\n"
		} else {
			m.Body = d.prefix + "\n\n" + m.Body // the blank line that separated them
		}
	}
}

func bytesValidUTF8(b []byte) bool { return utf8.Valid(b) }

// htmlText is the plain text of an HTML body: the Body of a message whose
// only text is HTML, for every source (contract §3).
func htmlText(html string) (string, error) {
	return html2text.FromString(html, html2text.Options{PrettyTables: false})
}
