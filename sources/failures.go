package sources

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Failures files (issue 11).
//
// After an import, every record that was not imported (rejected, or part
// of a thread that failed or was rejected) is written back out in its
// source's own format, so that it can be fixed and read again as a source
// of the same type, with the same fields and thread_key_prefix:
//   - mbox: the record as it is in the file (From line, escaping), with an
//     X-Threadlift-Source header after the From line and, for a message
//     without Message-ID, a Message-ID holding its content key;
//   - csv: the header row, then each row as it is in the file, with two
//     columns in front: threadlift_source and threadlift_key;
//   - json: one object per line (JSON Lines) with threadlift_source and
//     threadlift_key first; a message of a thread object is written inside
//     a copy of its thread object's own fields. A record that could not be
//     read is copied as it is, its mark spliced in after its first '{'.
//
// The marks make the copy a correction. threadlift_source (the
// X-Threadlift-Source header) is the location of the record it replaces:
// the pipeline leaves every record with the copy's message key, or at
// that location, out of the run, so the fixed copy takes its place in its
// thread instead of being a duplicate of the broken one.
// threadlift_key is the original's message key: a csv/json copy keeps it
// whatever is fixed (the hash that keys a record without message_id
// would change with a fixed date), so that the ledger knows the message.
// An mbox copy keeps its key in its Message-ID.

// Names of the marks: csv columns and json fields (fields never renames
// them), and the mbox header.
const (
	MarkSourceField  = "threadlift_source"
	MarkKeyField     = "threadlift_key"
	MarkSourceHeader = "X-Threadlift-Source"
)

// FailedRecord is a record to write into a failures file: an envelope
// Next returned, or (Bad) a record Next could not read, copied by its
// location and size.
type FailedRecord struct {
	Env *Envelope
	Bad *RecordError
}

func (f FailedRecord) offset() int64 {
	if f.Env != nil {
		return f.Env.Loc.Offset
	}
	return f.Bad.Loc.Offset
}

// FailureWriter is implemented by readers that can write their records
// back out as a failures file (see the top of this file).
type FailureWriter interface {
	// FailuresName is the name of the failures file of a source file
	// named name: the same, but ".jsonl" for json.
	FailuresName(name string) string
	// WriteFailures writes recs, records of this reader, to w in file
	// order, each marked as a correction of its original.
	WriteFailures(w io.Writer, recs []FailedRecord) error
}

var (
	_ FailureWriter = (*mboxReader)(nil)
	_ FailureWriter = (*csvReader)(nil)
	_ FailureWriter = (*jsonReader)(nil)
)

func sortRecords(recs []FailedRecord) {
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].offset() < recs[j].offset() })
}

// markCorrection sets env.Corrects from an mbox message's mark header,
// given as get returns it.
func markCorrection(env *Envelope, get func(string) (string, bool)) {
	if v, ok := get(MarkSourceHeader); ok {
		env.Corrects = strings.TrimSpace(v)
	}
}

// FailuresName keeps an mbox file's name.
func (r *mboxReader) FailuresName(name string) string { return name }

// WriteFailures copies each record, marked (see the top of this file). A
// mark already there (a failures file read as a source) is replaced.
func (r *mboxReader) WriteFailures(w io.Writer, recs []FailedRecord) error {
	sortRecords(recs)
	for _, rec := range recs {
		if rec.Env == nil {
			continue // mbox records are always read
		}
		raw, err := r.Raw(rec.Env)
		if err != nil {
			return err
		}
		id := ""
		if rec.Env.MessageID == "" {
			id = rec.Env.ContentKey
		}
		if err := writeMarkedMessage(w, raw, rec.Env.Loc.String(), id); err != nil {
			return fmt.Errorf("copy %s: %w", rec.Env.Loc, err)
		}
	}
	return nil
}

// writeMarkedMessage copies one mbox record (or a bare message) with the
// mark header, and a Message-ID when id is not empty, after its From
// line, dropping any mark header it had. A record of an mbox ends with a
// blank line, so that the next From line is a separator.
func writeMarkedMessage(w io.Writer, raw io.Reader, loc, id string) error {
	br := bufio.NewReaderSize(raw, 64<<10)
	head, _ := br.Peek(5)
	mbox := string(head) == "From "
	eol := "\n"
	if mbox {
		line, err := readLine(br)
		if err != nil && err != io.EOF {
			return err
		}
		if _, err := w.Write(line); err != nil {
			return err
		}
		if bytes.HasSuffix(line, []byte("\r\n")) {
			eol = "\r\n"
		} else if !bytes.HasSuffix(line, []byte("\n")) {
			_, err := io.WriteString(w, "\n")
			return err // a From line alone: nothing else to copy
		}
	} else if b, _ := br.Peek(4096); bytes.Contains(b, []byte("\r\n")) {
		eol = "\r\n"
	}
	marks := MarkSourceHeader + ": " + oneLine(loc) + eol
	if id != "" {
		marks += "Message-ID: <" + oneLine(id) + ">" + eol
	}
	if _, err := io.WriteString(w, marks); err != nil {
		return err
	}
	bol, inHeader, dropping := true, true, false
	var tail []byte // the last bytes written, to end the record with a blank line
	for {
		frag, err := br.ReadSlice('\n')
		if len(frag) > 0 {
			if bol && inHeader {
				switch {
				case len(bytes.TrimRight(frag, "\r\n")) == 0:
					inHeader, dropping = false, false
				case frag[0] == ' ' || frag[0] == '\t': // a continuation line: as its field
				default:
					dropping = len(frag) > len(MarkSourceHeader) &&
						strings.EqualFold(string(frag[:len(MarkSourceHeader)+1]), MarkSourceHeader+":")
				}
			}
			if !dropping {
				if _, werr := w.Write(frag); werr != nil {
					return werr
				}
				tail = append(tail, frag...)
				if len(tail) > 4 {
					tail = append(tail[:0], tail[len(tail)-4:]...)
				}
			}
			bol = frag[len(frag)-1] == '\n'
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if !mbox {
		return nil
	}
	t := strings.ReplaceAll(string(tail), "\r", "")
	var end string
	switch {
	case strings.HasSuffix(t, "\n\n"):
	case strings.HasSuffix(t, "\n"):
		end = eol
	default:
		end = eol + eol
	}
	_, err := io.WriteString(w, end)
	return err
}

// readLine reads one line, whatever its length, with its line end.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		line = append(line, frag...)
		if err != bufio.ErrBufferFull {
			return line, err
		}
	}
}

// oneLine makes s safe as a one-line header value.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
}

// FailuresName keeps a csv file's name.
func (r *csvReader) FailuresName(name string) string { return name }

// WriteFailures writes the header row and each row as it is in the file,
// the two mark columns in front. A failures file read as a source has them
// in front already: its rows get new values in them.
func (r *csvReader) WriteFailures(w io.Writer, recs []FailedRecord) error {
	sortRecords(recs)
	if r.headerEnd <= r.headerStart {
		return nil // an empty file has no rows
	}
	header := make([]byte, r.headerEnd-r.headerStart)
	if _, err := r.ra.ReadAt(header, r.headerStart); err != nil && err != io.EOF {
		return fmt.Errorf("read the header of %s: %w", r.opts.Name, err)
	}
	eol := "\n"
	if bytes.HasSuffix(header, []byte("\r\n")) {
		eol = "\r\n"
	}
	marked := r.markCol == 0 && r.keyCol == 1 // our own layout
	bw := bufio.NewWriter(w)
	if !marked {
		bw.WriteString(MarkSourceField + "," + MarkKeyField + ",")
	}
	bw.Write(header)
	if !bytes.HasSuffix(header, []byte("\n")) {
		bw.WriteString(eol)
	}
	for _, rec := range recs {
		var off, size int64
		loc, key := "", ""
		if rec.Env != nil {
			off, size, loc, key = rec.Env.Loc.Offset, rec.Env.Size, rec.Env.Loc.String(), rec.Env.Key()
		} else {
			off, size, loc = rec.Bad.Loc.Offset, rec.Bad.Size, rec.Bad.Loc.String()
		}
		if size <= 0 || off+size > r.size {
			continue
		}
		row := make([]byte, size)
		if _, err := r.ra.ReadAt(row, off); err != nil && err != io.EOF {
			return fmt.Errorf("read %s: %w", loc, err)
		}
		if marked {
			if rest, ok := skipCSVFields(row, 2); ok {
				row = rest
			}
		}
		bw.WriteString(csvQuote(loc) + "," + csvQuote(key) + ",")
		bw.Write(row)
		if !bytes.HasSuffix(row, []byte("\n")) {
			bw.WriteString(eol)
		}
	}
	return bw.Flush()
}

// csvQuote quotes a csv field.
func csvQuote(s string) string {
	if s == "" {
		return ""
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// skipCSVFields returns row without its first n fields (and their
// commas); ok is false when it has fewer.
func skipCSVFields(row []byte, n int) ([]byte, bool) {
	i := 0
	for range n {
		if i < len(row) && row[i] == '"' {
			i++
			for {
				j := bytes.IndexByte(row[i:], '"')
				if j < 0 {
					return row, false
				}
				i += j + 1
				if i < len(row) && row[i] == '"' {
					i++ // a doubled quote
					continue
				}
				break
			}
		} else {
			for i < len(row) && row[i] != ',' && row[i] != '\n' && row[i] != '\r' {
				i++
			}
		}
		if i >= len(row) || row[i] != ',' {
			return row, false
		}
		i++
	}
	return row[i:], true
}

// FailuresName gives a json file's failures the extension .jsonl: they
// are written one object per line whatever the file's shape.
func (r *jsonReader) FailuresName(name string) string {
	for _, ext := range []string{".jsonl", ".ndjson", ".json"} {
		if strings.HasSuffix(strings.ToLower(name), ext) {
			return name[:len(name)-len(ext)] + ".jsonl"
		}
	}
	return name + ".jsonl"
}

// WriteFailures writes one object per line: each message with the marks
// first (inside a copy of its thread object's own fields in a file of
// thread objects), each unreadable record as it is with its mark spliced
// in.
func (r *jsonReader) WriteFailures(w io.Writer, recs []FailedRecord) error {
	sortRecords(recs)
	bw := bufio.NewWriter(w)
	for _, rec := range recs {
		if rec.Bad != nil {
			if err := r.writeBad(bw, rec.Bad); err != nil {
				return err
			}
			continue
		}
		env := rec.Env
		raw, err := r.readSpan(env)
		if err != nil {
			return err
		}
		msg, err := markObject(raw, env.Loc.String(), env.Key())
		if err != nil {
			return fmt.Errorf("copy %s: %w", env.Loc, err)
		}
		if jsonShape(r.shape.Load()) == shapeThreads {
			fields, err := r.threadFieldList(env)
			if err != nil {
				return err
			}
			bw.WriteByte('{')
			for _, f := range fields {
				if f.key == MarkSourceField || f.key == MarkKeyField {
					continue
				}
				k, _ := json.Marshal(f.key)
				bw.Write(k)
				bw.WriteByte(':')
				var c bytes.Buffer
				if json.Compact(&c, f.raw) == nil {
					f.raw = c.Bytes()
				}
				bw.Write(f.raw)
				bw.WriteByte(',')
			}
			k, _ := json.Marshal(r.msgKey)
			bw.Write(k)
			bw.WriteString(":[")
			bw.Write(msg)
			bw.WriteString("]}\n")
			continue
		}
		bw.Write(msg)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// writeBad copies an unreadable record, its mark spliced in after its
// first '{' when it has one.
func (r *jsonReader) writeBad(bw *bufio.Writer, e *RecordError) error {
	if e.Size <= 0 || e.Loc.Offset+e.Size > r.size {
		return nil
	}
	raw := make([]byte, e.Size)
	if _, err := r.ra.ReadAt(raw, e.Loc.Offset); err != nil && err != io.EOF {
		return fmt.Errorf("read %s: %w", e.Loc, err)
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '{' {
		loc, _ := json.Marshal(e.Loc.String())
		bw.WriteString(`{"` + MarkSourceField + `":`)
		bw.Write(loc)
		raw = dropLeadingMark(raw[1:])
		if rest := bytes.TrimLeft(raw, " \t\r\n"); len(rest) == 0 || rest[0] != '}' {
			bw.WriteByte(',')
		}
	}
	bw.Write(raw)
	return bw.WriteByte('\n')
}

// dropLeadingMark removes the mark member an object starts with (the
// record is a copy already: its new mark replaces it). b follows the '{'.
func dropLeadingMark(b []byte) []byte {
	rest := bytes.TrimLeft(b, " \t\r\n")
	name := []byte(`"` + MarkSourceField + `"`)
	if !bytes.HasPrefix(rest, name) {
		return b
	}
	rest = bytes.TrimLeft(rest[len(name):], " \t\r\n")
	if len(rest) == 0 || rest[0] != ':' {
		return b
	}
	dec := json.NewDecoder(bytes.NewReader(rest[1:]))
	var v string
	if dec.Decode(&v) != nil {
		return b
	}
	rest = bytes.TrimLeft(rest[1+int(dec.InputOffset()):], " \t\r\n")
	if len(rest) > 0 && rest[0] == ',' {
		rest = rest[1:]
	}
	return rest
}

// markObject returns a JSON object on one line with the marks first and
// the object's other members after them, in their order.
func markObject(raw []byte, loc, key string) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object")
	}
	var b bytes.Buffer
	l, _ := json.Marshal(loc)
	k, _ := json.Marshal(key)
	b.WriteString(`{"` + MarkSourceField + `":`)
	b.Write(l)
	b.WriteString(`,"` + MarkKeyField + `":`)
	b.Write(k)
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		if name == MarkSourceField || name == MarkKeyField {
			continue
		}
		n, _ := json.Marshal(name)
		b.WriteByte(',')
		b.Write(n)
		b.WriteByte(':')
		if err := json.Compact(&b, v); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// threadFieldList reads the own fields of the thread object holding env,
// in their order in the file.
func (r *jsonReader) threadFieldList(env *Envelope) ([]struct {
	key string
	raw []byte
}, error) {
	off := env.Loc.Offset
	r.mu.RLock()
	i := sort.Search(len(r.threads), func(i int) bool { return r.threads[i].start > off }) - 1
	var t threadSpan
	if i >= 0 {
		t = r.threads[i]
	}
	r.mu.RUnlock()
	if i < 0 || off >= t.end {
		return nil, fmt.Errorf("copy %s: no thread object holds the record", env.Loc)
	}
	out := make([]struct {
		key string
		raw []byte
	}, 0, len(t.fields))
	for _, f := range t.fields {
		b := make([]byte, f.size)
		if _, err := r.ra.ReadAt(b, f.off); err != nil {
			return nil, fmt.Errorf("copy %s: thread field %q: %w", env.Loc, f.key, err)
		}
		out = append(out, struct {
			key string
			raw []byte
		}{f.key, b})
	}
	return out, nil
}
