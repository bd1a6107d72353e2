package json

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/mail"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/internal/addr"
	"github.com/threadlift/threadlift/sources/internal/charset"
)

// buildRecord resolves a message's fields, and those it inherits from its
// thread object, into a record.
func (r *reader) buildRecord(loc sources.Location, thread, msg map[string]json.RawMessage) *sources.Record {
	b := recordBuilder{r: r, thread: thread, msg: msg, rec: &sources.Record{Loc: loc}}
	rec := b.rec
	rec.Corrects, _ = b.mark(sources.MarkSourceField)
	rec.Key, _ = b.mark(sources.MarkKeyField)
	rec.ThreadID = b.id(sources.FieldThreadID, true)
	rec.MessageID = b.id(sources.FieldMessageID, false)
	rec.TicketRef = b.id(sources.FieldTicketID, false)
	rec.CreatedAt = b.id(sources.FieldCreatedAt, true)
	rec.Subject, _ = b.text(sources.FieldSubject)
	body, hasBody := b.text(sources.FieldBody)
	html, hasHTML := b.text(sources.FieldHTMLBody)
	rec.Body, rec.HTMLBody = body, html
	if !hasBody && !hasHTML && !b.wrong[sources.FieldBody] && !b.wrong[sources.FieldHTMLBody] {
		rec.Missing = append(rec.Missing, sources.FieldBody)
	}
	if raw := b.get(sources.FieldFrom); raw != nil {
		rec.FromRaw = rawText(raw)
		from, bad := b.addresses(sources.FieldFrom, raw)
		if len(from) > 1 {
			rec.Issues = append(rec.Issues, sources.Issue{Severity: sources.SeverityWarning, Rule: string(RuleExtraSender),
				Reason: fmt.Sprintf("from holds %d addresses; the first (%s) is the sender", len(from), addrString(from[0]))})
			from = from[:1]
		}
		rec.From = from
		if is := addr.FieldIssue(sources.FieldFrom, bad); is != nil {
			rec.Issues = append(rec.Issues, *is)
		}
		if len(from) == 0 && len(bad) == 0 && !b.wrong[sources.FieldFrom] {
			rec.Missing = append(rec.Missing, sources.FieldFrom)
		}
	} else {
		rec.Missing = append(rec.Missing, sources.FieldFrom)
	}
	for _, f := range []string{sources.FieldTo, sources.FieldCc} {
		raw := b.get(f)
		if raw == nil {
			if f == sources.FieldTo {
				rec.Missing = append(rec.Missing, f)
			}
			continue
		}
		list, bad := b.addresses(f, raw)
		if is := addr.FieldIssue(f, bad); is != nil {
			rec.Issues = append(rec.Issues, *is)
		}
		if f == sources.FieldTo {
			rec.To = list
			if len(list) == 0 && len(bad) == 0 && !b.wrong[f] {
				rec.Missing = append(rec.Missing, f)
			}
		} else {
			rec.Cc = list
		}
	}
	b.attachments()
	return rec
}

// recordBuilder reads the fields of one message.
type recordBuilder struct {
	r           *reader
	thread, msg map[string]json.RawMessage
	rec         *sources.Record
	wrong       map[string]bool // fields with a wrong-type issue
}

// get returns the raw value of field, the message's own or else the
// thread's; nil when absent or null.
func (b *recordBuilder) get(field string) json.RawMessage {
	p, in := b.r.messagePath(b.r.opts.FieldName(field))
	if in != inThread {
		if v := resolve(b.msg, p); !isNull(v) {
			return v
		}
	}
	if in == inMsg {
		return nil
	}
	if v := resolve(b.thread, p); !isNull(v) {
		return v
	}
	return nil
}

func isNull(v json.RawMessage) bool { return len(v) == 0 || string(v) == "null" }

// desc names a field for reasons: `"to"`, or `"to" ("recipients" in the file)`.
func (b *recordBuilder) desc(field string) string {
	if n := b.r.opts.FieldName(field); n != field {
		return fmt.Sprintf("%q (%q in the file)", field, n)
	}
	return strconv.Quote(field)
}

func (b *recordBuilder) wrongType(field, what, want string) {
	if b.wrong == nil {
		b.wrong = make(map[string]bool)
	}
	b.wrong[field] = true
	b.rec.Issues = append(b.rec.Issues, sources.Issue{Severity: sources.SeverityError, Rule: string(RuleWrongType),
		Reason: fmt.Sprintf("field %s: %s, want %s", b.desc(field), what, want)})
}

// id reads a string or number field (a number keeps its text as written).
func (b *recordBuilder) id(field string, required bool) string {
	raw := b.get(field)
	var s string
	switch {
	case raw == nil:
	case raw[0] == '"':
		json.Unmarshal(raw, &s)
	case raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9':
		s = string(raw)
	default:
		b.wrongType(field, "is a JSON "+rawType(raw), "a string or a number")
		return ""
	}
	if required && strings.TrimSpace(s) == "" {
		b.rec.Missing = append(b.rec.Missing, field)
	}
	return s
}

// mark reads a failures file's mark (sources.MarkSourceField): a string under its own
// name, which fields never renames; anything else is ignored.
func (b *recordBuilder) mark(key string) (string, bool) {
	v, ok := b.msg[key]
	if !ok || isNull(v) {
		v, ok = b.thread[key]
	}
	if !ok || len(v) == 0 || v[0] != '"' {
		return "", false
	}
	var s string
	return s, json.Unmarshal(v, &s) == nil
}

// text reads a string field; ok is false when it is absent, null or of
// the wrong type.
func (b *recordBuilder) text(field string) (s string, ok bool) {
	raw := b.get(field)
	if raw == nil {
		return "", false
	}
	if raw[0] != '"' {
		b.wrongType(field, "is a JSON "+rawType(raw), "a string")
		return "", false
	}
	json.Unmarshal(raw, &s)
	return s, true
}

// addresses reads from, to or cc: a string (an address list), a
// participant object, or a list of strings and participant objects.
func (b *recordBuilder) addresses(field string, raw json.RawMessage) (out []sources.Address, bad []string) {
	p := &mail.AddressParser{WordDecoder: charset.WordDecoder(new([]string))}
	const want = "a string, a participant object or a list of them"
	switch raw[0] {
	case '"':
		var s string
		json.Unmarshal(raw, &s)
		return addr.ParseField(s)
	case '{':
		return b.participant(p, field, "", raw)
	case '[':
		var list []json.RawMessage
		json.Unmarshal(raw, &list)
		for i, el := range list {
			switch {
			case isNull(el):
			case el[0] == '"':
				var s string
				json.Unmarshal(el, &s)
				o, bd := addr.ParseField(s)
				out, bad = append(out, o...), append(bad, bd...)
			case el[0] == '{':
				o, bd := b.participant(p, field, fmt.Sprintf("element %d ", i+1), el)
				out, bad = append(out, o...), append(bad, bd...)
			default:
				b.wrongType(field, fmt.Sprintf("element %d is a JSON %s", i+1, rawType(el)), "a string or a participant object")
			}
		}
		return out, bad
	}
	b.wrongType(field, "is a JSON "+rawType(raw), want)
	return nil, nil
}

var participantKeys = []string{"email", "name", "user_id", "slack_workspace_id", "slack_channel_id",
	"support_group_id", "support_agent_id", "msteams_channel_id"}

// participant reads a participant object of any type the API accepts.
func (b *recordBuilder) participant(p *mail.AddressParser, field, elem string, raw json.RawMessage) (out []sources.Address, bad []string) {
	var obj map[string]json.RawMessage
	json.Unmarshal(raw, &obj)
	if !hasParticipantKey(obj) {
		b.wrongType(field, fmt.Sprintf("%sis an object without any participant property (%s)", elem, strings.Join(participantKeys, ", ")), "a participant object")
		return nil, nil
	}
	pf := &participantFields{b: b, field: field, elem: elem, obj: obj, ok: true}
	// Read in this order, which is the order of the wrong-type issues.
	var a sources.Address
	a.Name = pf.str("name", false)
	a.UserID = pf.userID()
	a.SlackWorkspaceID = pf.str("slack_workspace_id", true)
	a.SlackChannelID = pf.str("slack_channel_id", true)
	a.SupportGroupID = pf.str("support_group_id", true)
	a.SupportAgentID = pf.str("support_agent_id", true)
	a.MSTeamsChannelID = pf.str("msteams_channel_id", true)
	email := pf.str("email", false)
	if !pf.ok {
		return nil, nil
	}
	if email != "" {
		pa, valid := addr.Lenient(p, email)
		if !valid {
			bad = append(bad, email)
			if a.UserID == 0 {
				return nil, bad
			}
		} else {
			a.Email = pa.Email
			if a.Name == "" {
				a.Name = pa.Name
			}
		}
	}
	if !hasTarget(a) {
		if len(bad) == 0 {
			bad = append(bad, rawText(raw))
		}
		return nil, bad
	}
	return []sources.Address{a}, bad
}

// hasParticipantKey reports whether obj has any participant property
// that is not null.
func hasParticipantKey(obj map[string]json.RawMessage) bool {
	for _, k := range participantKeys {
		if v, ok := obj[k]; ok && !isNull(v) {
			return true
		}
	}
	return false
}

// hasTarget reports whether a names someone the API can address.
func hasTarget(a sources.Address) bool {
	return a.Email != "" || a.UserID != 0 || a.SlackWorkspaceID != "" || a.SlackChannelID != "" ||
		a.SupportGroupID != "" || a.SupportAgentID != "" || a.MSTeamsChannelID != ""
}

// participantFields reads the properties of one participant object; a
// property of the wrong type is reported and clears ok.
type participantFields struct {
	b           *recordBuilder
	field, elem string
	obj         map[string]json.RawMessage
	ok          bool
}

// str reads property k as a trimmed string, or as a number's text when
// numOK; "" when it is absent or null.
func (pf *participantFields) str(k string, numOK bool) string {
	v := pf.obj[k]
	switch {
	case isNull(v):
		return ""
	case v[0] == '"':
		var s string
		json.Unmarshal(v, &s)
		return strings.TrimSpace(s)
	case numOK && (v[0] == '-' || v[0] >= '0' && v[0] <= '9'):
		return string(v)
	}
	want := "a string"
	if numOK {
		want = "a string or a number"
	}
	pf.b.wrongType(pf.field, fmt.Sprintf("%sproperty %q is a JSON %s", pf.elem, k, rawType(v)), want)
	pf.ok = false
	return ""
}

// userID reads the user_id property, a positive integer (string or number).
func (pf *participantFields) userID() int64 {
	uid := pf.str("user_id", true)
	if uid == "" {
		return 0
	}
	n, err := strconv.ParseInt(uid, 10, 64)
	if err != nil || n < 0 {
		pf.b.wrongType(pf.field, fmt.Sprintf("%sproperty \"user_id\" is %q", pf.elem, clipString(uid, 40)), "a positive integer")
		pf.ok = false
	}
	return n
}

// attachments reads the attachment paths: a list of strings (or one).
func (b *recordBuilder) attachments() {
	raw := b.get(sources.FieldAttachments)
	if raw == nil {
		return
	}
	var paths []string
	switch raw[0] {
	case '"':
		var s string
		json.Unmarshal(raw, &s)
		paths = []string{s}
	case '[':
		var list []json.RawMessage
		json.Unmarshal(raw, &list)
		for i, el := range list {
			switch {
			case isNull(el):
			case el[0] == '"':
				var s string
				json.Unmarshal(el, &s)
				paths = append(paths, s)
			default:
				b.wrongType(sources.FieldAttachments, fmt.Sprintf("element %d is a JSON %s", i+1, rawType(el)), "a file path string")
			}
		}
	default:
		b.wrongType(sources.FieldAttachments, "is a JSON "+rawType(raw), "a list of file paths")
		return
	}
	for _, p := range paths {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !filepath.IsLocal(filepath.FromSlash(p)) {
			b.rec.Issues = append(b.rec.Issues, sources.Issue{Severity: sources.SeverityError, Rule: string(RuleAttachmentPath),
				Reason: fmt.Sprintf("attachment %q is not inside the folder of the source file", clipString(p, 60))})
			continue
		}
		b.rec.Attachments = append(b.rec.Attachments, p)
	}
}

// rawText is a value as written for the content key: a string's value,
// or the compacted JSON text of anything else.
func rawText(raw json.RawMessage) string {
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) == nil {
		return buf.String()
	}
	return string(raw)
}

func addrString(a sources.Address) string {
	switch {
	case a.Email != "":
		return a.Email
	case a.UserID != 0:
		return "user " + strconv.FormatInt(a.UserID, 10)
	}
	return rawText(mustJSON(a))
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
