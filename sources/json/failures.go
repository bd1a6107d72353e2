package json

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/threadlift/threadlift/sources"
)

var _ sources.FailureWriter = (*reader)(nil)

// FailuresName gives a json file's failures the extension .jsonl: they
// are written one object per line whatever the file's shape.
func (r *reader) FailuresName(name string) string {
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
func (r *reader) WriteFailures(w io.Writer, recs []sources.FailedRecord) error {
	sources.SortRecords(recs)
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
				if f.key == sources.MarkSourceField || f.key == sources.MarkKeyField {
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
func (r *reader) writeBad(bw *bufio.Writer, e *sources.RecordError) error {
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
		bw.WriteString(`{"` + sources.MarkSourceField + `":`)
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
	name := []byte(`"` + sources.MarkSourceField + `"`)
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
	b.WriteString(`{"` + sources.MarkSourceField + `":`)
	b.Write(l)
	b.WriteString(`,"` + sources.MarkKeyField + `":`)
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
		if name == sources.MarkSourceField || name == sources.MarkKeyField {
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
func (r *reader) threadFieldList(env *sources.Envelope) ([]struct {
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
