package sources

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/threadlift/threadlift/sources/internal/dates"
	"github.com/threadlift/threadlift/sources/internal/htmltext"
)

// Default field names of csv and json records (contract §3); Options.Fields
// maps each to the name used in the file.
const (
	FieldThreadID    = "thread_id"
	FieldMessageID   = "message_id"
	FieldTicketID    = "ticket_id"
	FieldCreatedAt   = "created_at"
	FieldFrom        = "from"
	FieldTo          = "to"
	FieldCc          = "cc"
	FieldSubject     = "subject"
	FieldBody        = "body"
	FieldHTMLBody    = "html_body"
	FieldAttachments = "attachments"
)

// RuleEmptySource is the warning for a source file that holds no record
// at all (0 bytes, blank lines, a csv header alone, an empty json array):
// reported with the file, never fatal (issue 11). The caller raises it:
// a reader just ends at once.
const RuleEmptySource Rule = "empty-source"

// FieldName returns the name a default field (FieldThreadID, ...) has in
// the file: its Fields entry, or itself.
func (o Options) FieldName(field string) string {
	if n, ok := o.Fields[field]; ok && n != "" {
		return n
	}
	return field
}

// Record is one csv row or json message with its fields resolved to the
// default names, before validation: the record rules csv and json share.
// Each reader fills one per record; Envelope and Message turn it into what
// the reader returns, so that both formats follow the same rules.
type Record struct {
	Loc Location
	// Raw values as written in the source, for the content key.
	ThreadID, MessageID, TicketRef, CreatedAt, Subject, Body, HTMLBody string
	// FromRaw is the sender as written (the content key uses it).
	FromRaw     string
	From        []Address // 0 or 1 parsed sender
	To, Cc      []Address
	Attachments []string
	// Corrects and Key are the marks of a failures file's record
	// (failures.go): the location of the record it corrects, and that
	// record's message key, which the copy keeps whatever is fixed.
	Corrects, Key string
	// Issues found while reading the record (bad addresses, wrong types).
	Issues []Issue
	// Missing lists required fields that are absent or empty.
	Missing []string
}

// contentKey is the message key of a record without message_id:
// "sha256:" + hex of thread_id NUL created_at NUL from NUL body, as
// written in the source (contract §4), the source's thread_key_prefix
// before thread_id.
func (r *Record) contentKey(prefix string) string {
	h := sha256.New()
	for i, s := range []string{prefix + r.ThreadID, r.CreatedAt, r.FromRaw, r.Body} {
		if i > 0 {
			h.Write([]byte{0})
		}
		h.Write([]byte(s))
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// Envelope validates the record and returns its envelope, with an issue
// per rule it breaks. size is the record's size in bytes in the source.
func (r *Record) Envelope(size int64, opts Options) *Envelope {
	env := &Envelope{
		Loc:       r.Loc,
		Size:      size,
		MessageID: withPrefix(opts.ThreadKeyPrefix, r.MessageID),
		ThreadID:  withPrefix(opts.ThreadKeyPrefix, r.ThreadID),
		Subject:   strings.TrimSpace(r.Subject),
	}
	env.ContentKey = r.contentKey(opts.ThreadKeyPrefix)
	if env.Corrects = strings.TrimSpace(r.Corrects); env.Corrects != "" {
		if k := strings.TrimSpace(r.Key); k != "" {
			// The key of the record it corrects, thread_key_prefix
			// included: the copy is that message, not a new one.
			env.MessageID = k
		}
	}
	issues := append([]Issue(nil), r.Issues...)
	missing := r.Missing
	if opts.DefaultRecipient {
		// The mapping posts a message without recipient to the default
		// one (with a warning): no recipient is no reason to reject it here.
		missing = slices.DeleteFunc(slices.Clone(missing), func(f string) bool { return f == FieldTo })
	}
	for _, f := range missing {
		issues = append(issues, Issue{SeverityError, "missing-field",
			fmt.Sprintf("required field %q (%s in the file) is missing or empty", f, fileName(opts.FieldName(f)))})
	}
	if size > opts.MaxMessageBytes {
		issues = append(issues, Issue{SeverityError, "too-large",
			fmt.Sprintf("record is %d bytes, over max_message_bytes %d", size, opts.MaxMessageBytes)})
	}
	if strings.TrimSpace(r.CreatedAt) != "" {
		t, err := ParseTimestamp(r.CreatedAt)
		switch {
		case err != nil:
			issues = append(issues, Issue{SeverityError, "no-date", fmt.Sprintf("created_at %q: %v", clipString(r.CreatedAt, 60), err)})
		case t.Equal(time.Unix(0, 0)):
			issues = append(issues, Issue{SeverityError, "no-date", "created_at is the Unix epoch exactly, which counts as no date"})
		default:
			if is := DateIssue(t, opts.Now()); is != nil {
				issues = append(issues, *is)
			}
			env.Date = t
		}
	}
	if len(r.From) == 0 && strings.TrimSpace(r.FromRaw) != "" {
		issues = append(issues, Issue{SeverityError, "no-sender", fmt.Sprintf("no valid sender in from %q", clipString(r.FromRaw, 60))})
	}
	if len(r.To) == 0 && len(r.Cc) == 0 && !contains(r.Missing, FieldTo) && !opts.DefaultRecipient {
		issues = append(issues, Issue{SeverityError, "no-recipient", "no valid recipient in to or cc"})
	}
	if env.MessageID == "" {
		issues = append(issues, Issue{SeverityWarning, "no-message-id", "no message_id: the message key is the content hash " + env.ContentKey})
	}
	env.Issues = issues
	return env
}

// Message builds the decoded message of a record whose envelope is env:
// a record with only html_body gets a plain Body derived from it, as an
// mbox message does.
func (r *Record) Message(env *Envelope) *Message {
	m := &Message{
		Envelope:  env,
		To:        r.To,
		Cc:        r.Cc,
		Body:      r.Body,
		HTMLBody:  r.HTMLBody,
		Issues:    env.Issues,
		TicketRef: strings.TrimSpace(r.TicketRef),
	}
	if strings.TrimSpace(m.Body) == "" && strings.TrimSpace(m.HTMLBody) != "" {
		// html_body alone: a plain body derived from it, as for mbox.
		text, err := htmltext.Render(m.HTMLBody)
		if err != nil {
			m.Issues = append(m.Issues[:len(m.Issues):len(m.Issues)], Issue{SeverityWarning, "html",
				fmt.Sprintf("html_body could not be turned into text (%v); the plain body is empty", err)})
		}
		m.Body = text
	}
	if len(r.From) > 0 {
		m.From, m.HasFrom = r.From[0], true
	}
	for _, a := range r.Attachments {
		if a = strings.TrimSpace(a); a != "" {
			m.Attachments = append(m.Attachments, Attachment{Name: a})
		}
	}
	return m
}

// withPrefix returns an id trimmed, with the source's thread_key_prefix
// before it; "" stays "" (a missing id is not made up by the prefix).
func withPrefix(prefix, id string) string {
	if id = strings.TrimSpace(id); id == "" {
		return ""
	}
	return prefix + id
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func clipString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// DateIssue returns the rejection for a date before 1970 or more than a
// day after now (contract §9), or nil.
func DateIssue(t, now time.Time) *Issue {
	switch {
	case t.Before(time.Unix(0, 0)):
		return &Issue{SeverityError, "date-out-of-range", fmt.Sprintf("date %s is before 1970", t.UTC().Format(time.RFC3339))}
	case t.After(now.Add(24 * time.Hour)):
		return &Issue{SeverityError, "date-out-of-range",
			fmt.Sprintf("date %s is more than a day after now (%s)", t.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))}
	}
	return nil
}

// ParseTimestamp parses a created_at value (contract §3): RFC 3339, an RFC
// 5322 date (obsolete forms included), "YYYY-MM-DD HH:MM:SS" (UTC), or
// epoch seconds.
func ParseTimestamp(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, fmt.Errorf("empty date")
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, l := range []string{"2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04:05.999999999", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
			return t, nil
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 || n > 1<<40 {
			return time.Time{}, fmt.Errorf("epoch seconds %d out of range", n)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	if t, err := dates.Parse(s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("unrecognized date: want RFC 3339, an RFC 5322 date, YYYY-MM-DD HH:MM:SS (UTC) or epoch seconds")
}

// fileName quotes a field's name in the file for a reason; a name that
// starts with a NUL byte is one the config left unread (another field
// was renamed to it).
func fileName(n string) string {
	if strings.HasPrefix(n, "\x00") {
		return "not read: another field is renamed to its name"
	}
	return strconv.Quote(n)
}
