package json

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Field paths (issue 16).
//
// A name in fields: is a key of the message object, or a path into it:
// keys separated by dots go down nested objects ("createdBy.email"), and
// "[]" after a key takes every element of the array there
// ("to_emails[]", "cc[].email": the email of each). A path with [] gives
// a list (what to, cc and attachments take). A key that holds a dot
// itself is still found: the whole name is tried as a key first.
//
// A path is read from the message first, then from its thread object
// (contract §3's inheritance): "item.subject" finds the subject of a Help
// Scout conversation for each of its messages. A path that starts with
// the messages array's own path, or its last key, then "[]." is read from
// the message only: "threads[].createdBy.email" is "createdBy.email" of
// each message of item.threads. A path that starts with "$." is read
// from the thread object only (JSONPath's root): "$.id" is the id of an
// Intercom conversation, whose parts have ids of their own.

// pathSeg is one key of a path; each says whether its array is expanded.
type pathSeg struct {
	key    string
	expand bool
}

func parsePath(p string) []pathSeg {
	var out []pathSeg
	for k := range strings.SplitSeq(p, ".") {
		seg := pathSeg{key: k}
		if base, ok := strings.CutSuffix(k, "[]"); ok {
			seg = pathSeg{key: base, expand: true}
		}
		out = append(out, seg)
	}
	return out
}

func joinPath(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// fieldPath returns the path of a default field in the object that
// holds it (the message's or the thread object's).
func (r *reader) fieldPath(field string) string {
	p, _ := r.messagePath(r.opts.FieldName(field))
	return p
}

// Where a path is read from (messagePath).
const (
	inBoth   = iota // the message, then its thread object
	inMsg           // the message only
	inThread        // the thread object only
)

// messagePath strips the messages array's path (or its last key) and
// "[]." from p (the message only), or "$." (the thread object only).
func (r *reader) messagePath(p string) (string, int) {
	if rest, ok := strings.CutPrefix(p, "$."); ok && rest != "" {
		return rest, inThread
	}
	last := r.msgKey[strings.LastIndexByte(r.msgKey, '.')+1:]
	for _, pre := range []string{r.msgKey + "[].", last + "[]."} {
		if rest, ok := strings.CutPrefix(p, pre); ok && rest != "" {
			return rest, inMsg
		}
	}
	return p, inBoth
}

// capturedKeys lists the keys record keeps for a path: every dotted
// prefix up to the first expanded array (the value there is navigated
// at Load), and the whole name as a key of its own.
func capturedKeys(p string) []string {
	out := []string{p}
	var prefix string
	for _, seg := range parsePath(p) {
		prefix = joinPath(prefix, seg.key)
		out = append(out, prefix)
		if seg.expand {
			break
		}
	}
	return out
}

// resolve returns the value of path p in the object m (its members by
// key, as record keeps them: dotted keys for the members of nested
// objects on the way to the messages array); nil when there is none.
func resolve(m map[string]json.RawMessage, p string) json.RawMessage {
	if v, ok := m[p]; ok {
		return v
	}
	segs := parsePath(p)
	for k := len(segs); k >= 1; k-- {
		var key string
		for i, s := range segs[:k] {
			key = joinPath(key, s.key)
			if s.expand && i < k-1 {
				key = "" // an array on the way: not a kept key
				break
			}
		}
		if v, ok := m[key]; key != "" && ok {
			return navigate(v, segs[k-1].expand, segs[k:])
		}
	}
	return nil
}

// navigate goes down rest from v (expanded first when expand): objects
// by key, arrays element by element where a key has []. Absent and null
// values are left out. A path that expanded an array gives a JSON array
// of what it found.
func navigate(v json.RawMessage, expand bool, rest []pathSeg) json.RawMessage {
	vals := []json.RawMessage{v}
	list := false
	if expand {
		vals, list = elements(v), true
	}
	for _, seg := range rest {
		var next []json.RawMessage
		for _, val := range vals {
			if isNull(val) || val[0] != '{' {
				continue
			}
			var obj map[string]json.RawMessage
			if json.Unmarshal(val, &obj) != nil {
				continue
			}
			c, ok := obj[seg.key]
			if !ok || isNull(c) {
				continue
			}
			if seg.expand {
				next, list = append(next, elements(c)...), true
				continue
			}
			next = append(next, c)
		}
		vals = next
	}
	if !list {
		if len(vals) == 1 {
			return vals[0]
		}
		return nil
	}
	var b bytes.Buffer
	b.WriteByte('[')
	for i, val := range vals {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(val)
	}
	b.WriteByte(']')
	return b.Bytes()
}

// elements returns the elements of an array, or v itself when it is not
// one (a single value where a list was expected reads as a list of one).
func elements(v json.RawMessage) []json.RawMessage {
	if isNull(v) {
		return nil
	}
	if v[0] != '[' {
		return []json.RawMessage{v}
	}
	var list []json.RawMessage
	if json.Unmarshal(v, &list) != nil {
		return nil
	}
	return list
}
