package sources

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Location says where a record starts in its source file. Mbox records are
// located by the byte offset of their "From " line (FILE@OFFSET), csv and
// json records by the line on which they start (FILE:LINE).
type Location struct {
	File   string
	Offset int64 // byte offset of the record's first byte; used when Line is 0; WholeFile for a file that is one record
	Line   int   // 1-based line where the record starts; 0 for byte-located records
}

// WholeFile is the Offset of a record that is a whole file of its own (a
// maildir message, an .eml file): its Location prints as FILE alone.
const WholeFile = -1

// String formats the location as contract §9 specifies: FILE:LINE,
// FILE@OFFSET, or FILE for a record that is a whole file (WholeFile).
func (l Location) String() string {
	if l.File == "" {
		return ""
	}
	if l.Line <= 0 && l.Offset == WholeFile {
		return l.File
	}
	if l.Line > 0 {
		return l.File + ":" + strconv.Itoa(l.Line)
	}
	return l.File + "@" + strconv.FormatInt(l.Offset, 10)
}

// Address is one participant of a message. Email participants use Name and
// Email (or UserID for agents); the other fields carry the API's other
// participant types (Slack, child ticket, Teams) for csv/json sources.
type Address struct {
	Name             string `json:"name,omitempty"`
	Email            string `json:"email,omitempty"`
	UserID           int64  `json:"user_id,omitempty"`
	SlackWorkspaceID string `json:"slack_workspace_id,omitempty"`
	SlackChannelID   string `json:"slack_channel_id,omitempty"`
	SupportGroupID   string `json:"support_group_id,omitempty"`
	SupportAgentID   string `json:"support_agent_id,omitempty"`
	MSTeamsChannelID string `json:"msteams_channel_id,omitempty"`
}

// Severity sorts an Issue into the two classes of contract §9.
type Severity string

const (
	// SeverityError means the record is rejected: it is not posted.
	SeverityError Severity = "error"
	// SeverityWarning means the record was repaired and is still imported.
	SeverityWarning Severity = "warning"
)

// Issue is one problem found in a record. Rule is a short stable name
// (e.g. "charset", "no-date"); Reason says specifically what was wrong and,
// for warnings, what was repaired.
type Issue struct {
	Severity Severity
	Rule     string
	Reason   string
}

func (i Issue) String() string { return fmt.Sprintf("%s %s: %s", i.Severity, i.Rule, i.Reason) }

// Envelope is the light part of a record, held for the whole archive while
// threading. It must stay small: no bodies, no full headers.
type Envelope struct {
	Loc  Location
	Size int64 // raw size of the record in bytes (mbox: from the "From " line to the next separator)
	Seq  int   // position of the record in its source, for stable ordering of ties

	// MessageID is the normalized Message-ID (angle brackets and white space
	// dropped, case kept), or "" when the record has none.
	MessageID string
	// References lists the normalized ids of the record's ancestors, oldest
	// first: the References header, then In-Reply-To when it is not already
	// the last entry.
	References []string
	// ContentKey is "sha256:" + hex of the record's header block (mbox) or
	// of its identifying fields (csv/json): the message key when MessageID
	// is empty.
	ContentKey string
	// ThreadID is the explicit thread id of csv/json records; "" for mbox.
	ThreadID string

	Subject string    // decoded subject
	Date    time.Time // zero when the record has no usable date

	// Corrects is set on a record of a failures file, a copy of a record
	// that was not imported, fixed by the user and read back as a source:
	// the location of the record it replaces (the X-Threadlift-Source
	// header, the threadlift_source field). "" on any other record.
	Corrects string

	// Issues found while scanning (a rejection here means Load is not needed).
	Issues []Issue
}

// Key is the message key of contract §4.
func (e *Envelope) Key() string {
	if e.MessageID != "" {
		return e.MessageID
	}
	return e.ContentKey
}

// Rejected reports whether any issue of the envelope is an error.
func (e *Envelope) Rejected() bool { return hasError(e.Issues) }

// Attachment describes one non-inline part (or an inline part referenced by
// cid:) of a message. Its content is not held in memory.
type Attachment struct {
	// Path is the file of an attachment given by path (csv/json), resolved
	// against the source file's folder; "" for MIME parts.
	Path        string
	Name        string
	ContentType string
	Size        int64
	Inline      bool
	ContentID   string
	// Part locates a MIME attachment in its message for OpenAttachment: the
	// part's section number as IMAP numbers them (RFC 3501 §6.4.5), "2.1"
	// = first part of the second part; "1" for the body of a message that
	// is not multipart. "" for attachments given by path.
	Part string
}

// Message is a fully decoded record.
type Message struct {
	*Envelope

	From     Address
	HasFrom  bool
	To       []Address
	Cc       []Address
	Header   map[string][]string // decoded header fields by canonical key (textproto.CanonicalMIMEHeaderKey)
	Body     string              // plain text, UTF-8
	HTMLBody string              // HTML, UTF-8, when the message has no text/plain part
	// TicketRef is the record's ticket_id field (csv/json): a ticket id,
	// or a reference for lookup_csv. "" for mbox, whose header rule reads
	// Header.
	TicketRef   string
	Attachments []Attachment

	// Issues holds the envelope's issues plus those found while decoding.
	Issues []Issue
}

// Rejected reports whether any issue of the message is an error.
func (m *Message) Rejected() bool { return hasError(m.Issues) }

func hasError(is []Issue) bool {
	for _, i := range is {
		if i.Severity == SeverityError {
			return true
		}
	}
	return false
}

// Rule names a check a record failed, or a repair made: a short, stable
// name that reports, the checkpoint and failures listings show as it is
// ("bad-quote", "invalid-json"). A Rule is also an error value, so that a
// caller tells a *RecordError by its rule:
//
//	if errors.Is(err, csv.RuleBadQuote) { ... }
//
// Each format declares the rules of its own record errors (csv.Rule...,
// json.Rule..., mbox.Rule...); those of more than one format are declared
// here. Issue.Rule holds a rule's name as a string.
type Rule string

// Error returns the rule's name.
func (r Rule) Error() string { return string(r) }

// RuleTooLarge is a record over Options.MaxMessageBytes: an error Issue
// (mbox, json), or a RecordError for a csv row too large to be read.
const RuleTooLarge Rule = "too-large"

// RecordError is returned by Reader.Next for a record that cannot be read
// at all (for instance a csv row with the wrong column count). The reader
// can still be used: the caller reports the error and calls Next again.
// errors.Is(err, rule) is true for its Rule.
type RecordError struct {
	Loc  Location
	Rule Rule
	Err  error
	// Size is the record's length in bytes from Loc.Offset, what a
	// failures file copies; 0 when it is not known.
	Size int64
}

func (e *RecordError) Error() string { return fmt.Sprintf("%s: %s", e.Loc, e.Err) }
func (e *RecordError) Unwrap() error { return e.Err }

// Is reports whether target is e's Rule.
func (e *RecordError) Is(target error) bool {
	r, ok := target.(Rule)
	return ok && r == e.Rule
}

// As sets *target to e's Rule when target is a *Rule, so that
// errors.As(err, &rule) finds the rule of the record error in err's chain.
func (e *RecordError) As(target any) bool {
	if r, ok := target.(*Rule); ok {
		*r = e.Rule
		return true
	}
	return false
}

// Reader is a pull iterator over one source file.
//
// Next returns the next record's envelope, io.EOF at the end, or a
// *RecordError for a record that cannot be read (the caller reports it and
// calls Next again); any other error is fatal for this file.
//
// Load decodes the record of env fully. It may be called concurrently with
// other Load calls, after or during the Next walk.
type Reader interface {
	Next() (*Envelope, error)
	Load(env *Envelope) (*Message, error)
	Close() error
}

// RawReader is implemented by readers that can return a record's original
// bytes, so that failed records can be written back out (the failures
// mailbox) exactly as they were in the archive.
type RawReader interface {
	// Raw returns the bytes of env's record as they are in the file
	// (mbox: from its "From " line, mboxrd escaping included).
	Raw(env *Envelope) (io.Reader, error)
}

// AttachmentReader is implemented by readers whose messages carry attachments.
type AttachmentReader interface {
	// OpenAttachment streams the decoded content of the i-th attachment of
	// msg (msg.Attachments[i]), as it was when Load returned msg.
	OpenAttachment(msg *Message, i int) (io.ReadCloser, error)
}

// ErrAttachmentChanged is returned (wrapped) by OpenAttachment, or by
// reads from the reader it returns, when the attachment is no longer what
// Load found: the source file changed since.
var ErrAttachmentChanged = errors.New("sources: attachment changed since the message was loaded")
