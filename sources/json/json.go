package json

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/internal/files"
)

// The json reader.
//
// Shapes (contract §3), decided by the file's first non-space byte after
// an optional UTF-8 byte-order mark, and held throughout the file:
//   - '{': a stream of objects, one per line (JSON Lines) or pretty-printed
//     one after the other;
//   - '[': a top-level array of objects (several arrays one after the
//     other are read as one).
//
// Each object is a message, or a thread object when it holds a "messages"
// array; the first object read decides which for the whole file. A thread
// object's own fields apply to each of its messages, whose own fields win
// (a message field that is null or absent inherits the thread's).
//
// The file is streamed with encoding/json's token API: memory holds one
// record at a time (a message, or a thread object's own fields), never the
// file. Next returns one light Envelope per message; Load reads the
// message back by its byte offset, and for a thread object also the
// thread's own fields, whose byte spans are kept per thread object (not
// per message) in a small index searched by the message's offset.
//
// Bad input does not stop the reader. A record that is not valid JSON is a
// *RecordError with rule "invalid-json"; the reader then resyncs: in a
// stream of objects at the next line that starts with '{' (or '['), in an
// array after the bad element (a scan that tracks brackets and strings
// finds the next ',' or ']' at the element's level). The error says which
// bytes and lines were skipped, or that the rest of the file could not be
// read. A value that is not an object where a record is expected is
// "wrong-type"; a thread object in a file of messages (or the reverse), or
// an object at the top level of an array file, is "mixed-shape".

// FieldMessages is the key of a thread object's messages array. It can be
// renamed in Options.Fields like the fields of contract §3.
const FieldMessages = "messages"

// Rule names of json RecordErrors and Issues (the shared rules of
// sources.Record, such as "missing-field", apply too).
const (
	RuleInvalidJSON    sources.Rule = "invalid-json"       // RecordError: the record is not valid JSON
	RuleWrongType      sources.Rule = "wrong-type"         // Issue or RecordError: a value of the wrong JSON type
	RuleMixedShape     sources.Rule = "mixed-shape"        // RecordError: a record of another shape than the file's
	RuleAttachmentPath sources.Rule = "attachment-path"    // Issue: an attachment path outside the source's folder
	RuleAttachmentFile sources.Rule = "attachment-missing" // Issue (warning, from Load): an attachment file that cannot be found; left out
	RuleExtraSender    sources.Rule = "extra-sender"       // Issue (warning): from holds several addresses
)

const (
	excerptChars     = 80
	keepThreadBodies = 4 << 20 // message bytes of one thread object kept between Next's two passes
)

var jsonRecordFields = [...]string{
	sources.FieldThreadID, sources.FieldMessageID, sources.FieldTicketID, sources.FieldCreatedAt, sources.FieldFrom, sources.FieldTo, sources.FieldCc,
	sources.FieldSubject, sources.FieldBody, sources.FieldHTMLBody, sources.FieldAttachments,
}

type jsonShape int32

const (
	shapeUnknown jsonShape = iota
	shapeMessages
	shapeThreads
)

// Format describes the json format for a sources.Registry: JSON Lines,
// arrays of messages, and thread objects.
func Format() sources.Format {
	return sources.Format{Name: "json", Open: Open, Records: true, Paths: true, Keys: []string{"messages_path"}}
}

// Open opens a json source (contract §3): JSON Lines, an array of
// message objects, or thread objects holding a "messages" array. The file
// is opened once; Load reads records back with ReadAt and is safe for
// concurrent use. A file holding no JSON object or array at all is an
// error.
func Open(path string, opts sources.Options) (sources.Reader, error) {
	f, st, err := files.Open(path, "json")
	if err != nil {
		return nil, err
	}
	dir, err := files.FolderOf(path)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open json %s: %w", path, err)
	}
	r, err := newReader(f, st.Size(), f, dir, opts.WithDefaults(path))
	if err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

var (
	_ sources.Reader           = (*reader)(nil)
	_ sources.RawReader        = (*reader)(nil)
	_ sources.AttachmentReader = (*reader)(nil)
)

type reader struct {
	ra     io.ReaderAt
	size   int64
	closer io.Closer
	opts   sources.Options
	dir    files.Folder      // attachments are relative to it and may not leave it
	known  map[string]string // file keys of the record fields, to intern them
	msgKey string            // file key of the messages array

	// Next's state; Next is not safe for concurrent use.
	array   bool // the file's top level is an array
	dec     *json.Decoder
	base    int64 // file offset of the decoder's first byte
	inArray bool  // the decoder is inside a top-level array
	prevEnd int64 // file offset just after the last value consumed
	opStart int64 // file offset where the last decoder call started
	pending []jsonPending
	thread  map[string]json.RawMessage // own fields of the thread whose messages are pending
	lines   lineCounter
	done    bool
	err     error // sticky fatal error

	shape  atomic.Int32 // jsonShape, set by the first record
	closed atomic.Bool

	mu      sync.RWMutex
	threads []threadSpan // thread objects, by start offset
}

// threadSpan locates a thread object and its own fields, for Load.
type threadSpan struct {
	start, end int64
	fields     []fieldSpan
}

type fieldSpan struct {
	key       string
	off, size int64
}

// jsonPending is a message element of a thread object waiting for Next, or
// an error to return after them.
type jsonPending struct {
	off, size int64
	line      int
	index     int             // position in the messages array
	raw       json.RawMessage // the element, when kept; nil: read it again
	err       *sources.RecordError
}

func newReader(ra io.ReaderAt, size int64, closer io.Closer, dir files.Folder, opts sources.Options) (*reader, error) {
	r := &reader{ra: ra, size: size, closer: closer, opts: opts, dir: dir,
		known: make(map[string]string), msgKey: opts.FieldName(FieldMessages)}
	if p := opts.Format.MessagesPath; p != "" {
		r.msgKey = p
	}
	for _, f := range jsonRecordFields {
		for _, k := range capturedKeys(r.fieldPath(f)) {
			r.known[k] = k
		}
	}
	for _, k := range []string{sources.MarkSourceField, sources.MarkKeyField} {
		r.known[k] = k
	}
	r.lines = lineCounter{ra: ra, size: size}
	start := int64(0)
	var bom [3]byte
	if n, _ := ra.ReadAt(bom[:], 0); n == 3 && bytes.Equal(bom[:], utf8BOM) {
		start = 3
	}
	first, c := r.skipSpace(start, false)
	switch {
	case first >= size:
		r.done = true
		return r, nil
	case c == '{' || c == '[':
	default:
		// Leading garbage: find the first line that starts a structure.
		p, pc := r.nextStructureLine(first)
		if p < 0 {
			line := r.lines.at(first)
			return nil, fmt.Errorf("open json %s: no JSON object or array: line %d starts with %s, want '{' (JSON Lines, thread objects) or '[' (an array)",
				opts.Name, line, r.excerpt(first, first))
		}
		r.pending = append(r.pending, jsonPending{err: sized(r.recordError(first, RuleInvalidJSON,
			fmt.Sprintf("not JSON before the first object or array: %s; skipped %s", r.excerpt(first, first), r.skipped(first, p))), p-first)})
		first, c = p, pc
	}
	r.array = c == '['
	r.startAt(first, false)
	return r, nil
}

// startAt starts a decoder at off; inArray resumes inside a top-level
// array (after a bad element), feeding the decoder an opening bracket.
func (r *reader) startAt(off int64, inArray bool) {
	var rd io.Reader = ioErrReader{io.NewSectionReader(r.ra, off, r.size-off)}
	r.base = off
	if inArray {
		rd = io.MultiReader(strings.NewReader("["), rd)
		r.base = off - 1
	}
	r.dec = json.NewDecoder(rd)
	r.inArray = false
	if inArray {
		r.dec.Token() // the '[' we fed it
		r.inArray = true
	}
	r.prevEnd = off
}

func (r *reader) pos() int64 { return r.base + r.dec.InputOffset() }

// token and decode call the decoder, noting where the call started: the
// offsets of the decoder's syntax errors are not all relative to the same
// point, so recover finds the bad byte again from there (errorAt).
func (r *reader) token() (json.Token, error) {
	r.opStart = r.pos()
	return r.dec.Token()
}

func (r *reader) decode(raw *json.RawMessage) error {
	r.opStart = r.pos()
	return r.dec.Decode(raw)
}

// errorAt returns the offset of the byte a syntax error is about, in the
// value that a decoder call starting at from was reading: it decodes that
// value again with a fresh decoder, whose error offset is relative to its
// start. When that value is valid, the error was about its place (a
// missing comma, say): its first byte is returned.
func (r *reader) errorAt(from int64) int64 {
	p, c := r.skipSpace(from, false)
	if c == ':' || c == ',' {
		p, _ = r.skipSpace(p+1, false)
	}
	if p >= r.size {
		return r.size
	}
	dec := json.NewDecoder(io.NewSectionReader(r.ra, p, r.size-p))
	var raw json.RawMessage
	var se *json.SyntaxError
	if err := dec.Decode(&raw); errors.As(err, &se) && se.Offset > 0 {
		return min(p+se.Offset-1, r.size)
	}
	return p
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

// Next returns the envelope of the next message, a *RecordError for a
// record that cannot be read, or io.EOF.
func (r *reader) Next() (*sources.Envelope, error) {
	if r.closed.Load() {
		return nil, sources.ErrClosed
	}
	if r.err != nil {
		return nil, r.err
	}
	for {
		if len(r.pending) > 0 {
			p := r.pending[0]
			r.pending[0] = jsonPending{}
			r.pending = r.pending[1:]
			if p.err != nil {
				return nil, p.err
			}
			return r.threadMessage(p)
		}
		r.thread = nil
		if r.done {
			return nil, io.EOF
		}
		env, err := r.step()
		if err != nil {
			var re *sources.RecordError
			if !errors.As(err, &re) {
				r.err = err
			}
			return nil, err
		}
		if env != nil {
			return env, nil
		}
	}
}

// step reads the next value at the record level. It returns an envelope,
// an error, or neither when it only moved on (into or out of an array, or
// queued a thread's messages).
func (r *reader) step() (*sources.Envelope, error) {
	dec := r.dec
	if r.inArray && !dec.More() {
		if _, err := r.token(); err != nil {
			return nil, r.recover(r.valueStart(), -1, err, 0)
		}
		r.inArray = false
		r.prevEnd = r.pos()
		return nil, nil
	}
	tok, err := r.token()
	if err == io.EOF && !r.inArray {
		r.done = true
		return nil, nil
	}
	if err != nil {
		return nil, r.recover(r.valueStart(), -1, err, 0)
	}
	switch tok {
	case json.Delim('{'):
		start := r.pos() - 1
		if r.array && !r.inArray {
			return nil, r.skipRest(start, 1, RuleMixedShape, "an object at the top level of a file whose records are in an array")
		}
		return r.record(start)
	case json.Delim('['):
		start := r.pos() - 1
		switch {
		case r.inArray:
			return nil, r.skipRest(start, 1, RuleWrongType, "an array element is a JSON array, want an object")
		case !r.array:
			return nil, r.skipRest(start, 1, RuleMixedShape, "an array in a file of JSON objects (JSON Lines)")
		}
		r.inArray = true
		r.prevEnd = r.pos()
		return nil, nil
	}
	start := r.valueStart()
	r.prevEnd = r.pos()
	what := "a top-level value"
	if r.inArray {
		what = "an array element"
	}
	return nil, sized(r.recordError(start, RuleWrongType, fmt.Sprintf("%s is a JSON %s, want an object", what, tokenType(tok))), r.prevEnd-start)
}

// skipRest consumes the rest of a value whose first depth delimiters were
// read, and reports it.
func (r *reader) skipRest(start int64, depth int, rule sources.Rule, reason string) error {
	for depth > 0 {
		tok, err := r.token()
		if err != nil {
			return r.recover(start, -1, err, 0)
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
	r.prevEnd = r.pos()
	return sized(r.recordError(start, rule, fmt.Sprintf("%s (%d bytes skipped)", reason, r.prevEnd-start)), r.prevEnd-start)
}

// recState is what record gathers of one object.
type recState struct {
	start     int64
	startLine int
	fields    map[string]json.RawMessage // known keys (dotted inside the messages' containers)
	spans     []fieldSpan
	msgs      []jsonPending
	isThread  bool
	kept      int    // message bytes kept in msgs
	msgType   string // JSON type of a messages value that is not an array
}

// record reads the object starting at start, whose '{' was just read.
func (r *reader) record(start int64) (*sources.Envelope, error) {
	st := &recState{start: start, startLine: r.lines.at(start), fields: make(map[string]json.RawMessage)}
	if err := r.members("", st); err != nil {
		return r.failRecord(st, err)
	}
	if _, err := r.token(); err != nil { // '}'
		return r.failRecord(st, err)
	}
	end := r.pos()
	r.prevEnd = end

	want := shapeMessages
	if st.isThread {
		want = shapeThreads
	}
	if !r.shape.CompareAndSwap(int32(shapeUnknown), int32(want)) && r.shape.Load() != int32(want) {
		return nil, r.mixedShape(st, end)
	}
	if st.isThread {
		r.queueThread(start, end, st.fields, st.spans, st.msgs)
		return nil, nil
	}
	loc := sources.Location{File: r.opts.Name, Offset: start, Line: st.startLine}
	rec := r.buildRecord(loc, nil, st.fields)
	if st.msgType != "" && st.msgType != "null" {
		rec.Issues = append(rec.Issues, sources.Issue{Severity: sources.SeverityWarning, Rule: string(RuleWrongType),
			Reason: fmt.Sprintf("%q is a JSON %s, not an array of messages: read as a message object", r.msgKey, st.msgType)})
	}
	return rec.Envelope(end-start, r.opts), nil
}

// failRecord reports a decoding error in the record st.
func (r *reader) failRecord(st *recState, err error) (*sources.Envelope, error) {
	lost := st.start
	if st.isThread && len(st.msgs) > 0 {
		last := st.msgs[len(st.msgs)-1]
		lost = last.off + last.size
	}
	rerr := r.recover(st.start, lost, err, len(st.msgs))
	var re *sources.RecordError
	if lost > st.start && errors.As(rerr, &re) &&
		(r.shape.CompareAndSwap(int32(shapeUnknown), int32(shapeThreads)) || r.shape.Load() == int32(shapeThreads)) {
		// The messages read before the error are whole: return them
		// (with the thread fields seen so far), then the error.
		r.queueThread(st.start, lost, st.fields, st.spans, st.msgs)
		r.pending = append(r.pending, jsonPending{err: re})
		return nil, nil
	}
	return nil, rerr
}

// mixedShape is the error of a record of the other shape than the file's.
func (r *reader) mixedShape(st *recState, end int64) error {
	if st.isThread {
		return sized(r.recordError(st.start, RuleMixedShape, fmt.Sprintf("a thread object (it has a %q array) in a file of message objects; not read: its %s", r.msgKey, plural(len(st.msgs), "message"))), end-st.start)
	}
	reason := fmt.Sprintf("a message object (no %q array) in a file of thread objects", r.msgKey)
	if st.msgType != "" {
		reason = fmt.Sprintf("%q is a JSON %s, want an array of messages, in a file of thread objects", r.msgKey, st.msgType)
	}
	return sized(r.recordError(st.start, RuleMixedShape, reason), end-st.start)
}

// members reads the members of the object whose '{' was just read, up
// to (not including) its '}'; prefix is its dotted path in the record
// ("" for the record). It keeps the known keys, reads the messages array
// and goes down the objects that lead to it (messages_path).
func (r *reader) members(prefix string, st *recState) error {
	for r.dec.More() {
		kt, err := r.token()
		if err != nil {
			return err
		}
		key, _ := kt.(string)
		full := joinPath(prefix, key)
		switch {
		case full == r.msgKey:
			err = r.messagesValue(st)
		case strings.HasPrefix(r.msgKey, full+"."):
			err = r.container(full, st)
		default:
			err = r.keep(full, st)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// keep reads a member's value and keeps it when its key is known.
func (r *reader) keep(full string, st *recState) error {
	var raw json.RawMessage
	if err := r.decode(&raw); err != nil {
		return err
	}
	if k, ok := r.known[full]; ok {
		st.fields[k] = raw
		end := r.pos()
		st.spans = append(st.spans, fieldSpan{key: k, off: end - int64(len(raw)), size: int64(len(raw))})
	}
	return nil
}

// container reads the value of a key on the way to the messages array:
// an object is gone down into; anything else is not where the messages
// are (kept if known, as any value).
func (r *reader) container(full string, st *recState) error {
	// Peek at the value's first byte in the file (after the ':').
	p, c := r.skipSpace(r.pos(), false)
	if c == ':' {
		_, c = r.skipSpace(p+1, false)
	}
	if c != '{' {
		return r.keep(full, st)
	}
	if _, err := r.token(); err != nil { // '{'
		return err
	}
	if err := r.members(full, st); err != nil {
		return err
	}
	_, err := r.token() // '}'
	return err
}

// messagesValue reads the value of the messages key: the array of a
// thread object's messages, or a value of another type (st.msgType).
func (r *reader) messagesValue(st *recState) error {
	vt, err := r.token()
	if err != nil {
		return err
	}
	if vt == json.Delim('{') {
		depth := 1
		for depth > 0 {
			t, err := r.token()
			if err != nil {
				return err
			}
			switch t {
			case json.Delim('{'), json.Delim('['):
				depth++
			case json.Delim('}'), json.Delim(']'):
				depth--
			}
		}
	}
	if vt != json.Delim('[') {
		st.msgType = tokenType(vt)
		return nil
	}
	st.isThread = true
	for r.dec.More() {
		var raw json.RawMessage
		if err := r.decode(&raw); err != nil {
			return err
		}
		end := r.pos()
		p := jsonPending{off: end - int64(len(raw)), size: int64(len(raw)), index: len(st.msgs)}
		p.line = r.lines.at(p.off)
		if raw[0] != '{' {
			p.err = sized(r.recordError(p.off, RuleWrongType, fmt.Sprintf("element %d of %q of the thread object at line %d is a JSON %s, want a message object",
				p.index+1, r.msgKey, st.startLine, rawType(raw))), p.size)
		} else if st.kept+len(raw) <= keepThreadBodies {
			p.raw = raw
			st.kept += len(raw)
		}
		st.msgs = append(st.msgs, p)
	}
	_, err = r.token() // ']'
	return err
}

// queueThread indexes a thread object for Load and queues its messages.
func (r *reader) queueThread(start, end int64, fields map[string]json.RawMessage, spans []fieldSpan, msgs []jsonPending) {
	r.mu.Lock()
	r.threads = append(r.threads, threadSpan{start: start, end: end, fields: spans})
	r.mu.Unlock()
	r.thread = fields
	r.pending = append(r.pending, msgs...)
}

// threadMessage builds the envelope of a pending thread message.
func (r *reader) threadMessage(p jsonPending) (*sources.Envelope, error) {
	raw := p.raw
	if raw == nil {
		raw = make([]byte, p.size)
		if _, err := r.ra.ReadAt(raw, p.off); err != nil {
			r.err = fmt.Errorf("read %s at byte %d: %w", r.opts.Name, p.off, err)
			return nil, r.err
		}
	}
	var msg map[string]json.RawMessage
	if err := json.Unmarshal(raw, &msg); err != nil {
		return nil, sized(r.recordError(p.off, RuleInvalidJSON, fmt.Sprintf("message element %d: %v", p.index+1, err)), p.size)
	}
	loc := sources.Location{File: r.opts.Name, Offset: p.off, Line: p.line}
	rec := r.buildRecord(loc, r.thread, msg)
	return rec.Envelope(p.size, r.opts), nil
}

// Load reads env's message again and decodes it. It is safe for
// concurrent use.
func (r *reader) Load(env *sources.Envelope) (*sources.Message, error) {
	if r.closed.Load() {
		return nil, sources.ErrClosed
	}
	raw, err := r.readSpan(env)
	if err != nil {
		return nil, err
	}
	var msg map[string]json.RawMessage
	if err := json.Unmarshal(raw, &msg); err != nil {
		return nil, fmt.Errorf("load %s: %w", env.Loc, err)
	}
	var thread map[string]json.RawMessage
	if jsonShape(r.shape.Load()) == shapeThreads {
		if thread, err = r.threadFields(env); err != nil {
			return nil, err
		}
	}
	rec := r.buildRecord(env.Loc, thread, msg)
	m := rec.Message(env)
	m.Issues = env.Issues[:len(env.Issues):len(env.Issues)]
	kept := m.Attachments[:0]
	for _, a := range m.Attachments {
		written := a.Name
		a.Name = path.Base(filepath.ToSlash(written))
		real, err := r.dir.Resolve(filepath.FromSlash(written))
		if errors.Is(err, files.ErrOutside) {
			// A symbolic link out of the folder: refused like "../x" is
			// when the record is read (buildRecord).
			m.Issues = append(m.Issues, sources.Issue{Severity: sources.SeverityError, Rule: string(RuleAttachmentPath),
				Reason: fmt.Sprintf("attachment %q is not inside the folder of the source file (%v)", clipString(written, 60), err)})
			continue
		}
		a.Path = real // read by its real path: a link changed later is not followed
		var st os.FileInfo
		if err == nil {
			st, err = os.Stat(real)
		}
		if err == nil && !st.IsDir() {
			a.Size = st.Size()
			kept = append(kept, a)
			continue
		}
		reason := "is a directory"
		if err != nil {
			reason = err.Error()
		}
		m.Issues = append(m.Issues, sources.Issue{Severity: sources.SeverityWarning, Rule: string(RuleAttachmentFile), Reason: fmt.Sprintf("attachment %s left out: %s", a.Path, reason)})
	}
	m.Attachments = kept
	if len(m.Attachments) == 0 {
		m.Attachments = nil
	}
	return m, nil
}

// Raw returns the message object's bytes as they are in the file (without
// the fields it inherits from its thread object).
func (r *reader) Raw(env *sources.Envelope) (io.Reader, error) {
	if err := r.checkSpan(env); err != nil {
		return nil, err
	}
	return io.NewSectionReader(r.ra, env.Loc.Offset, env.Size), nil
}

func (r *reader) checkSpan(env *sources.Envelope) error {
	if env.Loc.Offset < 0 || env.Size <= 0 || env.Loc.Offset+env.Size > r.size {
		return fmt.Errorf("record %s: outside the file (%d bytes)", env.Loc, r.size)
	}
	return nil
}

func (r *reader) readSpan(env *sources.Envelope) ([]byte, error) {
	if err := r.checkSpan(env); err != nil {
		return nil, err
	}
	b := make([]byte, env.Size)
	if _, err := r.ra.ReadAt(b, env.Loc.Offset); err != nil {
		return nil, fmt.Errorf("load %s: %w", env.Loc, err)
	}
	return b, nil
}

// threadFields reads the own fields of the thread object holding env.
func (r *reader) threadFields(env *sources.Envelope) (map[string]json.RawMessage, error) {
	off := env.Loc.Offset
	r.mu.RLock()
	i := sort.Search(len(r.threads), func(i int) bool { return r.threads[i].start > off }) - 1
	var t threadSpan
	if i >= 0 {
		t = r.threads[i]
	}
	r.mu.RUnlock()
	if i < 0 || off >= t.end {
		return nil, fmt.Errorf("load %s: no thread object holds the record", env.Loc)
	}
	fields := make(map[string]json.RawMessage, len(t.fields))
	for _, f := range t.fields {
		b := make([]byte, f.size)
		if _, err := r.ra.ReadAt(b, f.off); err != nil {
			return nil, fmt.Errorf("load %s: thread field %q: %w", env.Loc, f.key, err)
		}
		fields[f.key] = b
	}
	return fields, nil
}

// recover turns a decoding error in the record starting at start into a
// *RecordError and moves the decoder past the bad bytes. The bytes from
// lost on (start when lost < 0) are those not read: read messages of a
// thread object came before them. An I/O error is returned wrapped, not
// as a *RecordError: it is fatal.
func (r *reader) recover(start, lost int64, err error, read int) error {
	var ioe ioError
	if errors.As(err, &ioe) {
		return fmt.Errorf("read %s: %w", r.opts.Name, ioe.err)
	}
	if lost < start {
		lost = start
	}
	var b strings.Builder
	var se *json.SyntaxError
	at := lost
	switch {
	case errors.As(err, &se):
		at = max(r.errorAt(max(r.opStart, lost)), lost)
		line, col := r.lines.at(at), r.column(at)
		fmt.Fprintf(&b, "invalid JSON at line %d column %d: %s, near %s", line, col, se.Error(), r.excerpt(lost, at))
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		what := "the record"
		if r.inArray && start >= r.size {
			what = "the array"
		}
		fmt.Fprintf(&b, "the file ends inside %s (truncated?)", what)
		if lost < r.size {
			fmt.Fprintf(&b, " after %s", r.excerpt(lost, lost))
		}
	default:
		fmt.Fprintf(&b, "invalid JSON: %v", err)
	}
	if read > 0 {
		fmt.Fprintf(&b, "; the %s before the error were read", plural(read, "message"))
	}
	// Resync.
	var next int64 = -1
	inArray := false
	if r.inArray {
		var endArray bool
		next, endArray = r.scanElementEnd(start)
		inArray = !endArray
	} else {
		// In a stream of objects, records start lines: resume at the first
		// line starting with '{' or '[' at or after the bad byte.
		next, _ = r.nextStructureLine(max(at, start+1))
	}
	end := r.size // where the bad record's bytes end: where reading goes on
	if next < 0 {
		if lost < r.size {
			fmt.Fprintf(&b, "; the rest of the file (%s) could not be read", r.skipped(lost, r.size))
		}
		r.done = true
	} else {
		next = max(next, lost)
		fmt.Fprintf(&b, "; skipped %s", r.skipped(lost, next))
		r.startAt(next, inArray)
		end = next
	}
	return sized(r.recordError(start, RuleInvalidJSON, b.String()), trimRecordEnd(r.ra, start, end)-start)
}

// skipped describes the bytes [from, to) for an error message; the lines
// named are those of the first and the last byte that is not white space
// or a comma.
func (r *reader) skipped(from, to int64) string {
	var buf [256]byte
	if n := min(int64(len(buf)), to-from); n > 0 {
		m, _ := r.ra.ReadAt(buf[:n], from)
		from += int64(m - len(bytes.TrimLeft(buf[:m], " \t\r\n,")))
	}
	l1 := r.lines.at(from)
	end := to
	if n := min(int64(len(buf)), to-from); n > 0 {
		m, _ := r.ra.ReadAt(buf[:n], to-n)
		b := bytes.TrimRight(buf[:m], " \t\r\n,")
		end = to - n + int64(len(b))
	}
	n := end - from
	if end > from {
		end--
	}
	l2 := r.lines.at(end)
	if l1 == l2 {
		return fmt.Sprintf("%d bytes on line %d", n, l1)
	}
	return fmt.Sprintf("%d bytes, lines %d-%d", n, l1, l2)
}

func (r *reader) recordError(off int64, rule sources.Rule, reason string) *sources.RecordError {
	return &sources.RecordError{
		Loc:  sources.Location{File: r.opts.Name, Offset: off, Line: r.lines.at(off)},
		Rule: rule,
		Err:  errors.New(reason),
	}
}

// sized sets the size of a record error's bytes.
func sized(e *sources.RecordError, n int64) *sources.RecordError {
	e.Size = max(n, 0)
	return e
}

// trimRecordEnd moves end back over the white space and the comma (of an
// array) that separate a bad record from the next one.
func trimRecordEnd(ra io.ReaderAt, start, end int64) int64 {
	var buf [256]byte
	n := min(int64(len(buf)), end-start)
	if n <= 0 {
		return end
	}
	m, _ := ra.ReadAt(buf[:n], end-n)
	return end - n + int64(len(bytes.TrimRight(buf[:m], " \t\r\n,")))
}

// valueStart returns the offset of the value after prevEnd: the first
// non-space byte, past one comma inside an array.
func (r *reader) valueStart() int64 {
	off, _ := r.skipSpace(r.prevEnd, r.inArray)
	return off
}

// skipSpace returns the offset and value of the first non-space byte at or
// after off (past one comma when comma is set); r.size when there is none.
func (r *reader) skipSpace(off int64, comma bool) (int64, byte) {
	var buf [512]byte
	for off < r.size {
		n, err := r.ra.ReadAt(buf[:], off)
		for i := 0; i < n; i++ {
			switch c := buf[i]; c {
			case ' ', '\t', '\r', '\n':
			case ',':
				if !comma {
					return off + int64(i), c
				}
				comma = false
			default:
				return off + int64(i), c
			}
		}
		off += int64(n)
		if err != nil {
			break
		}
	}
	return r.size, 0
}

// nextStructureLine returns the offset of the first line starting at or
// after off that starts with '{' or '[', and that byte; -1 if none.
func (r *reader) nextStructureLine(off int64) (int64, byte) {
	var buf [32 << 10]byte
	nl := off == 0
	if off > 0 {
		off--
	}
	for off < r.size {
		n, err := r.ra.ReadAt(buf[:], off)
		for i := 0; i < n; i++ {
			c := buf[i]
			if nl && (c == '{' || c == '[') {
				return off + int64(i), c
			}
			nl = c == '\n'
		}
		off += int64(n)
		if err != nil {
			break
		}
	}
	return -1, 0
}

// scanElementEnd finds where to resume after a bad array element starting
// at start: the next element after a ',' at the element's level, or just
// after the array's closing ']' (endArray). Strings are skipped; a raw
// line end ends a string, which limits the damage of an unterminated one.
// It returns -1 when the file ends first.
func (r *reader) scanElementEnd(start int64) (next int64, endArray bool) {
	var buf [32 << 10]byte
	depth := 0
	inStr, esc := false, false
	off := start
	for off < r.size {
		n, err := r.ra.ReadAt(buf[:], off)
		for i := 0; i < n; i++ {
			c, at := buf[i], off+int64(i)
			if inStr {
				switch {
				case esc:
					esc = false
				case c == '\\':
					esc = true
				case c == '"' || c == '\n':
					inStr = false
				}
				continue
			}
			switch c {
			case '"':
				inStr = true
			case '{', '[':
				depth++
			case '}':
				if depth > 0 {
					depth--
				}
			case ']':
				if depth == 0 {
					return at + 1, true
				}
				depth--
			case ',':
				if depth == 0 && at > start {
					p, _ := r.skipSpace(at+1, false)
					if p >= r.size {
						return -1, false
					}
					return p, false
				}
			}
		}
		off += int64(n)
		if err != nil {
			break
		}
	}
	return -1, false
}

// column returns the 1-based byte column of off in its line (0 when the
// line start is more than 64 KiB before).
func (r *reader) column(off int64) int {
	from := max(off-64<<10, 0)
	b := make([]byte, off-from)
	n, _ := r.ra.ReadAt(b, from)
	b = b[:n]
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return len(b) - i
	}
	if from == 0 {
		return len(b) + 1
	}
	return 0
}

// excerpt quotes up to excerptChars characters of the file's line around
// at, not before start.
func (r *reader) excerpt(start, at int64) string {
	at = min(at, r.size)
	from := max(at-30, start, 0)
	var buf [excerptChars]byte
	n, _ := r.ra.ReadAt(buf[:], from)
	b := buf[:n]
	rel := min(int(at-from), len(b))
	if i := bytes.IndexByte(b[rel:], '\n'); i >= 0 {
		b = b[:rel+i]
	}
	if i := bytes.LastIndexByte(b[:rel], '\n'); i >= 0 {
		b = b[i+1:]
	}
	b = bytes.TrimRight(b, "\r")
	for {
		q := strconv.Quote(string(b))
		if len(q) <= excerptChars {
			return q
		}
		b = b[:len(b)*3/4]
	}
}

// plural is "1 message", "2 messages".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// rawType names the JSON type of a raw value.
func rawType(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

func tokenType(t json.Token) string {
	switch t.(type) {
	case string:
		return "string"
	case float64, json.Number:
		return "number"
	case bool:
		return "boolean"
	case nil:
		return "null"
	case json.Delim:
		if t == json.Delim('[') {
			return "array"
		}
		return "object"
	}
	return fmt.Sprintf("%T", t)
}

// ioError marks errors of the underlying file, which are fatal, apart from
// the decoder's syntax errors.
type ioError struct{ err error }

func (e ioError) Error() string { return e.err.Error() }
func (e ioError) Unwrap() error { return e.err }

type ioErrReader struct{ r io.Reader }

func (r ioErrReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		err = ioError{err}
	}
	return n, err
}

// lineCounter maps byte offsets to 1-based line numbers by counting line
// ends between queries; queries mostly move forward.
type lineCounter struct {
	ra   io.ReaderAt
	size int64
	off  int64 // offset of the last query
	nl   int   // line ends before off
	buf  []byte
}

func (c *lineCounter) at(off int64) int {
	off = min(max(off, 0), c.size)
	if c.buf == nil {
		c.buf = make([]byte, 32<<10)
	}
	count := func(from, to int64) int {
		n := 0
		for from < to {
			m, err := c.ra.ReadAt(c.buf[:min(int64(len(c.buf)), to-from)], from)
			n += bytes.Count(c.buf[:m], []byte{'\n'})
			from += int64(m)
			if err != nil && m == 0 {
				break
			}
		}
		return n
	}
	if off >= c.off {
		c.nl += count(c.off, off)
	} else {
		c.nl -= count(off, c.off)
	}
	c.off = off
	return c.nl + 1
}

// OpenAttachment opens the file of msg.Attachments[i] (given by path in
// the json file). It is safe for concurrent use.
func (r *reader) OpenAttachment(msg *sources.Message, i int) (io.ReadCloser, error) {
	if r.closed.Load() {
		return nil, sources.ErrClosed
	}
	a, err := files.AttachmentAt(msg, i)
	if err != nil {
		return nil, err
	}
	return files.OpenAttachment(a)
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// clipString shortens s to n bytes for a reason.
func clipString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
