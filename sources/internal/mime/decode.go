package mime

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strconv"
	"strings"

	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/internal/addr"
	"github.com/threadlift/threadlift/sources/internal/charset"
	"github.com/threadlift/threadlift/sources/internal/header"
	"github.com/threadlift/threadlift/sources/internal/htmltext"
	"github.com/threadlift/threadlift/sources/internal/transfer"
)

// Decoding a message.
//
// The header block is read with our own tolerant parser (package header,
// the one the mbox reader's Next uses) and repaired (lines without a colon dropped, raw 8-bit bytes made
// UTF-8) into a header.Header that holds each field as go-message's
// textproto.ReadHeader would read the repaired block: go-message on its
// own loses the whole message on a header line without a colon.
//
// The MIME tree is walked with our own lenient multipart reader
// (multipart.go) and our own recursive walk rather than go-message's
// textproto.MultipartReader and message.Entity.Walk, and transfer
// encodings are decoded by our own lenient decoders rather than by
// message.New:
//   - Entity.Walk stops the whole walk at the first broken nested multipart,
//     so the sibling parts after it were lost; ours drops only what is
//     broken and says so.
//   - message.New's decoders stop at the first bad byte (mime/quotedprintable
//     rejects control characters, encoding/base64 any stray character);
//     ours keep everything decodable and count what they skipped
//     ("bad-encoding").
//   - charsets go through charset.Decode.
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

// maxPooledText is the largest text buffer Buffers keep for the next
// message: text
// parts are mostly a few KiB, and a rare big one should not pin its
// buffer for the rest of the run.
const maxPooledText = 1 << 20

// partHeader is what the walk reads of a part's header: a *header.Header,
// the message's own or a part's.
type partHeader interface {
	Get(key string) string
}

// Options say how to decode a message's body.
type Options struct {
	// Budget is how many bytes of text the body may decode to: the
	// source's max_message_bytes.
	Budget int64
	// AtFileEnd says the message ends its file: a part cut short is then
	// reported as a truncated file.
	AtFileEnd bool
	// NoHTMLText leaves Body empty where it would be derived from
	// HTMLBody (sources.LoadOptions.NoHTMLText).
	NoHTMLText bool
	// Bufs lends buffers to reuse from one message to the next; nil:
	// allocate.
	Bufs *Buffers
	// Prefix is text that goes before the body: header lines kept as the
	// first lines of the body (header.Repair.Text).
	Prefix string
}

// Buffers are what decoding one message lends the next: allocating
// them per message, and regrowing a text buffer per part, dominated the
// cost of a load. The zero value is ready to use; one message is decoded
// with them at a time.
type Buffers struct {
	text    bytes.Buffer // readText's
	conv    []byte       // text converted from a legacy charset
	capture []byte       // a multipart's captureReader's
	b64     b64Checked
	qp      qpChecked
	qpIn    *bufio.Reader   // qp's input
	mime    []*bufio.Reader // multipart read buffers, by nesting level
}

// Release drops what the last message left in b (its readers, a huge
// text buffer) so that b holds no more than buffers until the next one.
func (b *Buffers) Release() {
	if b.text.Cap() > maxPooledText {
		b.text = bytes.Buffer{} // one huge part must not stay in memory
	}
	b.text.Reset()
	b.b64.reset(nil, nil, "")
	b.qp.reset(nil, nil, "")
	if b.qpIn != nil {
		b.qpIn.Reset(nil)
	}
	for _, m := range b.mime {
		m.Reset(nil)
	}
}

// DecodeHeader fills msg's Header, From, To and Cc from the message's
// header h, with an issue for each problem.
func DecodeHeader(msg *sources.Message, h *header.Header) {
	d := &decoder{msg: msg}
	d.headers(h)
}

// DecodeBody decodes the body of msg, whose header is h: it walks
// the MIME tree and sets Body, HTMLBody and Attachments, with an issue
// for each problem. body is the message after its header block.
func DecodeBody(msg *sources.Message, h *header.Header, body io.Reader, o Options) {
	d := &decoder{msg: msg, budget: o.Budget, atFileEnd: o.AtFileEnd, noHTMLText: o.NoHTMLText, bufs: o.Bufs, prefix: o.Prefix}
	d.entity(h, body, nil, 0)
	d.finish()
}

// FindPart walks the MIME tree of the message of env (header h, body
// as for DecodeBody) up to the part of attachment a (a.Part), and
// returns that part's transfer-decoded content, unread: it streams from
// body. It returns nil and, when a part is there but is not a, why.
func FindPart(env *sources.Envelope, h *header.Header, body io.Reader, a sources.Attachment, o Options) (io.Reader, string) {
	f := &partFinder{part: a.Part, want: a}
	d := &decoder{msg: &sources.Message{Envelope: env}, budget: o.Budget, atFileEnd: o.AtFileEnd, find: f}
	d.entity(h, body, nil, 0)
	return f.found, f.mismatch
}

// decoder collects what the walk finds.
type decoder struct {
	msg       *sources.Message
	budget    int64 // bytes of text still allowed
	atFileEnd bool  // the record ends at the end of its file

	noHTMLText bool     // LoadOptions.NoHTMLText
	bufs       *Buffers // buffers to reuse; nil: allocate (OpenAttachment's reader keeps them)

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
	d.msg.Issues = append(d.msg.Issues, sources.Issue{Severity: sources.SeverityWarning, Rule: rule, Reason: fmt.Sprintf(format, args...)})
}

func (d *decoder) fail(rule, format string, args ...any) {
	d.msg.Issues = append(d.msg.Issues, sources.Issue{Severity: sources.SeverityError, Rule: rule, Reason: fmt.Sprintf(format, args...)})
}

// headers fills Header, From, To and Cc from the top-level header.
func (d *decoder) headers(h *header.Header) {
	m := d.msg
	m.Header = make(map[string][]string, len(*h))
	for _, f := range *h {
		v, _ := charset.DecodeWords(f.Value)
		m.Header[f.Key] = append(m.Header[f.Key], v)
	}

	from := d.addresses(h, "From")
	if len(from) > 0 {
		m.From, m.HasFrom = from[0], true
	} else {
		why := "no From header"
		if h.Has("From") {
			why = fmt.Sprintf("From header %q has no valid address", header.Clip([]byte(h.Get("From")), 80))
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
			d.fail("no-recipient", "no valid address in To %q or Cc %q", header.Clip([]byte(h.Get("To")), 80), header.Clip([]byte(h.Get("Cc")), 80))
		}
	}
}

// addresses parses every key field of h leniently: the whole list with
// net/mail first, then address by address; invalid ones are dropped with
// an "invalid-address" warning (only when some other address of the field
// is valid, or the field is From: no valid one at all is the caller's
// error).
func (d *decoder) addresses(h *header.Header, key string) []sources.Address {
	var out []sources.Address
	var bad []string
	var unknown []string
	p := &mail.AddressParser{WordDecoder: charset.WordDecoder(&unknown)}
	for _, v := range h.Values(key) {
		o, b := addr.ParseList(p, v)
		out = append(out, o...)
		for _, x := range b {
			// "a@x.com b@x.com": addresses without the comma between them.
			if list := addr.SpaceSeparated(x); len(list) > 0 {
				out = append(out, list...)
				what := "read as " + strconv.Itoa(len(list)) + " addresses"
				if key == "From" {
					what = "the first, " + list[0].Email + ", is the sender"
				}
				d.warn("invalid-address", "%s %q holds addresses without a comma between them; %s", key, header.Clip([]byte(x), 80), what)
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
			q[i] = strconv.Quote(header.Clip([]byte(b), 60))
		}
		d.warn("invalid-address", "dropped invalid address(es) %s from %s", strings.Join(q, ", "), key)
	}
	return out
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
	filename, _ = charset.DecodeWords(filename)
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
		if d.bufs != nil { // one part is read at a time: Load's are reused
			d.bufs.b64.reset(body, d, name)
			return &d.bufs.b64
		}
		c := &b64Checked{}
		c.reset(body, d, name)
		return c
	case "quoted-printable":
		if d.bufs != nil {
			if d.bufs.qpIn == nil {
				d.bufs.qpIn = bufio.NewReader(body)
			} else {
				d.bufs.qpIn.Reset(body)
			}
			d.bufs.qp.reset(d.bufs.qpIn, d, name)
			return &d.bufs.qp
		}
		c := &qpChecked{}
		c.reset(bufio.NewReader(body), d, name)
		return c
	case "", "7bit", "8bit", "binary", "7-bit", "8-bit":
		return body
	}
	d.warn("bad-encoding", "unknown Content-Transfer-Encoding %q in %s; read as is", header.Clip([]byte(cte), 40), name)
	return body
}

// b64Checked reports what transfer.Base64Reader repaired once it reaches the end.
type b64Checked struct {
	transfer.Base64Reader
	d        *decoder
	name     string
	reported bool
}

// reset makes c a decoder of src, keeping its buffers.
func (c *b64Checked) reset(src io.Reader, d *decoder, name string) {
	c.Base64Reader.Reset(src)
	c.d, c.name, c.reported = d, name, false
}

func (c *b64Checked) Read(p []byte) (int, error) {
	n, err := c.Base64Reader.Read(p)
	if err != nil {
		c.report()
	}
	return n, err
}

// discard is io.Copy(io.Discard, c) without decoding: the bytes count,
// the repairs are reported, and the error is io.Copy's (nil at the end).
func (c *b64Checked) discard() (int64, error) {
	n, err := c.Base64Reader.Discard()
	c.report()
	if err == io.EOF {
		err = nil
	}
	return n, err
}

func (c *b64Checked) report() {
	if !c.reported {
		c.reported = true
		if c.Invalid > 0 || c.Partial {
			what := fmt.Sprintf("%d characters outside the base64 alphabet skipped", c.Invalid)
			if c.Partial {
				what = "base64 ends inside a 4-character group"
				if c.Invalid > 0 {
					what += fmt.Sprintf(", %d characters outside the alphabet skipped", c.Invalid)
				}
			}
			c.d.warn("bad-encoding", "invalid base64 in %s: %s; the decodable part was kept", c.name, what)
		}
		if c.Junk > 0 {
			c.d.warn("bad-encoding", "%s has %d characters of text after the base64 padding; they were not decoded into it", c.name, c.Junk)
		}
	}
}

// qpChecked reports what transfer.QPReader repaired once it reaches the end.
type qpChecked struct {
	transfer.QPReader
	d        *decoder
	name     string
	reported bool
}

// reset makes c a decoder of src, keeping its buffers.
func (c *qpChecked) reset(src *bufio.Reader, d *decoder, name string) {
	c.QPReader.Reset(src)
	c.d, c.name, c.reported = d, name, false
}

func (c *qpChecked) Read(p []byte) (int, error) {
	n, err := c.QPReader.Read(p)
	if err != nil && !c.reported {
		c.reported = true
		if c.Invalid > 0 {
			c.d.warn("bad-encoding", "invalid quoted-printable in %s: %d '=' not followed by two hex digits kept as is", c.name, c.Invalid)
		}
	}
	return n, err
}

func (d *decoder) multipart(ct string, params map[string]string, body io.Reader, path []int, depth int) {
	name := partName(path)
	boundary := params["boundary"]
	capture := &captureReader{r: body, max: int(min(d.budget, 16<<20))}
	if d.bufs != nil {
		capture.buf, d.bufs.capture = d.bufs.capture, nil
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
				d.recover(capture, fmt.Sprintf("%s boundary %q never occurs in %s; its text was kept as the body", ct, header.Clip([]byte(boundary), 70), name))
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
	if d.bufs == nil || depth >= maxPooledMime {
		return nil
	}
	for len(d.bufs.mime) <= depth {
		d.bufs.mime = append(d.bufs.mime, bufio.NewReaderSize(nil, mimeBufferBytes))
	}
	return d.bufs.mime[depth]
}

// recover reads the rest of a multipart whose boundary never occurs and
// keeps its text.
func (d *decoder) recover(capture *captureReader, reason string) {
	io.Copy(io.Discard, capture)
	if !d.hasRecov {
		text, _ := charset.Decode("", capture.buf)
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
		text, _ := charset.Decode("", b)
		d.recovered, d.hasRecov = d.cleanText(text, name), true
	}
	d.warn("too-deep", "%s in %s is nested deeper than %d multipart levels; it was not split into parts, and its raw text is the body when the message has no other text", ct, name, maxDepth)
}

// stopCapture stops capture and keeps its buffer for the next multipart:
// only one captures at a time, as the outer one stops at its first part.
func (d *decoder) stopCapture(capture *captureReader) {
	b := capture.buf[:0]
	capture.stop()
	if d.bufs != nil && cap(b) <= maxPooledText {
		d.bufs.capture = b
	}
}

// readText reads at most the remaining text budget of r. The bytes are
// valid until the next readText: callers keep a string copy.
func (d *decoder) readText(r io.Reader, name string) ([]byte, error) {
	var buf *bytes.Buffer
	if d.bufs != nil {
		buf = &d.bufs.text
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

func (d *decoder) text(ct, label string, r io.Reader, name string) {
	b, err := d.readText(r, name)
	if err != nil {
		d.readError(err, name, int64(len(b)), true)
	}
	var conv *[]byte
	if d.bufs != nil {
		conv = &d.bufs.conv
	}
	s, st := charset.DecodeBuf(label, b, conv)
	switch st {
	case charset.Invalid:
		cs := label
		if cs == "" {
			cs = "none declared"
		}
		d.warn("charset", "%s (charset %s) has bytes that are not valid UTF-8; read as windows-1252", name, cs)
	case charset.Unknown:
		d.warn("charset", "unknown charset %s in %s; valid UTF-8 kept, other bytes read as windows-1252", header.Clip([]byte(label), 40), name)
	case charset.WrongUTF8:
		d.warn("charset", "%s declares charset %s but its bytes are not valid %s; they are valid UTF-8 and were kept as UTF-8", name, header.Clip([]byte(label), 40), header.Clip([]byte(label), 40))
	case charset.Lossy:
		d.warn("charset", "%s has bytes that are not valid in its charset %s (nor UTF-8); they became U+FFFD", name, header.Clip([]byte(label), 40))
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
	d.msg.Attachments = append(d.msg.Attachments, sources.Attachment{
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
		text, err := htmltext.Render(d.html)
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

func dedupe(ss []string) []string {
	seen := map[string]bool{}
	out := ss[:0:0]
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
