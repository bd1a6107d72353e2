package mapping

import (
	"encoding/csv"
	"errors"
	"fmt"
	"html"
	"io"
	"net/mail"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/zendesk"
)

// API limits that payloads are validated against (api-notes.md).
const (
	MaxRecipients         = 100
	MaxNonAgentRecipients = 48
)

// Rules for issues raised here; sources raise their own.
const (
	RuleUnmapped          = "unmapped"
	RuleNoSubject         = "no-subject"
	RuleEmptyBody         = "empty-body"
	RuleTooManyRecipients = "too-many-recipients"
	RuleMixedParticipants = "mixed-participants"
	RuleDuplicate         = "duplicate"
	RuleDuplicateID       = "duplicate-id-different-content"
	RuleNoImportable      = "no-importable-message"
	RuleStrict            = "strict"
	RuleDateOutOfRange    = "date-out-of-range"
	RuleDateClamped       = "date-in-future-clamped"
	RuleNoRecipient       = "no-recipient"
	RuleAttachmentLeftOut = "attachment-left-out"
	RuleAttachmentRefused = "attachment-refused"
	// RuleAttachmentNameRepaired: control or bidi characters were removed
	// from an attachment's file name (contract §9).
	RuleAttachmentNameRepaired = "attachment-name-repaired"
	// RuleRecipientsTruncated: a message with more recipients than the API
	// takes is posted to the first ones within the limits; the others are
	// listed at the end of its body (a warning).
	RuleRecipientsTruncated = "recipients-truncated"
	// RuleDefaultRecipient: a message with no valid recipient is posted to
	// mapping.default_recipient (a warning).
	RuleDefaultRecipient = "default-recipient"
	// RuleInvalidParticipant: a participant the API would refuse.
	RuleInvalidParticipant = "invalid-participant"
)

// EmptyBody is the body posted for a message without text: the API
// refuses a blank body.
const EmptyBody = "(empty message)"

// TicketRules say how a thread finds its parent ticket (contract §2).
type TicketRules struct {
	Header       string
	SubjectRegex *regexp.Regexp
	// Lookup maps an extracted reference to a ticket id; nil when no
	// lookup_csv is configured, in which case references must be numbers.
	Lookup          map[string]int64
	DefaultTicketID int64
}

// Options configure a Mapper. The zero value maps nothing to a ticket
// (every thread unmapped) and otherwise uses the contract's defaults.
type Options struct {
	Ticket              TicketRules
	State               string           // "open" | "closed"; "" means closed
	Agents              map[string]int64 // lower-cased email → agent user id
	MaxEventsPerRequest int              // 0 means 50
	Strict              bool
	Attachments         AttachmentPolicy
	Now                 func() time.Time
	// DefaultRecipient, when not nil, is the recipient of a message that
	// has no valid one (a list archive whose To was stripped); without it
	// such a message is rejected.
	DefaultRecipient *sources.Address
}

// AttachmentPolicy says which attachments are uploaded.
type AttachmentPolicy struct {
	MaxBytes int64 // larger attachments are refused; 0: no limit
	// Allow, when not empty, lists the only extensions uploaded; Deny
	// lists extensions never uploaded. Lower case, without the dot.
	Allow, Deny []string
	// RejectThread rejects a thread with a refused attachment instead of
	// importing the message without it.
	RejectThread bool
}

// Mapper builds Plans. It is safe for concurrent use.
type Mapper struct {
	opts Options
}

// New returns a Mapper.
func New(opts Options) *Mapper {
	if opts.State == "" {
		opts.State = "closed"
	}
	if opts.MaxEventsPerRequest <= 0 {
		opts.MaxEventsPerRequest = 50
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Mapper{opts: opts}
}

// Issue is a problem found in a thread, with where it came from.
type Issue struct {
	sources.Issue
	ThreadKey  string
	MessageKey string
	Source     sources.Location
}

// Event is one message to post, with its key and origin.
type Event struct {
	Key    string
	Source sources.Location
	Event  zendesk.ImportEvent
	// Message is the decoded message the event was built from.
	Message *sources.Message
	// Attachments are all of the message's attachments, their names
	// cleaned of control characters (attachments.go); Upload holds the
	// indexes of those the policy lets through. Uploading them is the
	// pipeline's job, just before the request that references them.
	Attachments []sources.Attachment
	Upload      []int
}

// Rejected is a message of the thread that will not be posted.
type Rejected struct {
	Key    string
	Source sources.Location
	Rule   string
	Reason string
	// Duplicate is true when the message is a repeat of one that is posted.
	Duplicate bool
}

// Plan is everything that will be posted for one thread.
type Plan struct {
	ThreadKey string
	TicketID  int64 // 0 when unmapped
	Source    sources.Location
	// SideConversation is the side_conversation object of the import request.
	SideConversation zendesk.ImportSideConversation
	// Events to post, chronological (ties: source order).
	Events   []Event
	Rejected []Rejected
	Issues   []Issue
	// Reason is why the whole thread is rejected; "" when Valid.
	Rule, Reason string
}

// Valid reports whether the thread can be posted.
func (p *Plan) Valid() bool { return p.Reason == "" }

// Chunks splits events into requests of at most n events: the first goes
// with the import request, the rest with events/import.
func Chunks(events []Event, n int) [][]Event {
	var out [][]Event
	for len(events) > 0 {
		var chunk []Event
		chunk, events = Chunk(events, n)
		out = append(out, chunk)
	}
	return out
}

// Chunk splits off the events of the next request: the first n (at
// least 1), and the rest. The chunk's capacity ends with it.
func Chunk(events []Event, n int) (chunk, rest []Event) {
	k := min(max(n, 1), len(events))
	return events[:k:k], events[k:]
}

// ImportRequest builds the import request for the given events.
func (p *Plan) ImportRequest(events []Event) *zendesk.ImportRequest {
	req := &zendesk.ImportRequest{SideConversation: p.SideConversation}
	for _, e := range events {
		req.Events = append(req.Events, e.Event)
	}
	return req
}

// EventsRequest builds an events/import request for the given events.
func EventsRequest(events []Event) *zendesk.EventsImportRequest {
	req := &zendesk.EventsImportRequest{}
	for _, e := range events {
		req.Events = append(req.Events, e.Event)
	}
	return req
}

// Options returns the options the Mapper was built with (defaults applied).
func (m *Mapper) Options() Options { return m.opts }

// MaxEventsPerRequest is the configured chunk size.
func (m *Mapper) MaxEventsPerRequest() int { return m.opts.MaxEventsPerRequest }

// Map builds the plan of one thread. msgs are the thread's messages in
// chronological order (ties: source order), duplicates already removed by
// threading; dups are the duplicates, reported but not posted.
func (m *Mapper) Map(key string, msgs []*sources.Message, dups []*sources.Message) *Plan {
	p := &Plan{ThreadKey: key}
	if len(msgs) > 0 {
		p.Source = msgs[0].Loc
	}
	p.rejectDuplicates(msgs, dups)
	first, refusedAttachment := m.addEvents(p, msgs)
	m.setSubject(p, first, msgs)
	m.decide(p, msgs, dups, refusedAttachment)
	return p
}

// issue adds a problem of msg (of the whole thread when msg is nil).
func (p *Plan) issue(msg *sources.Message, is sources.Issue) {
	i := Issue{Issue: is, ThreadKey: p.ThreadKey}
	if msg != nil {
		i.MessageKey = msg.Key()
		i.Source = msg.Loc
	} else {
		i.Source = p.Source
	}
	p.Issues = append(p.Issues, i)
}

// rejectDuplicate lists msg as a repeat of an earlier message of the
// thread: a warning, imported once.
func (p *Plan) rejectDuplicate(msg *sources.Message) {
	reason := fmt.Sprintf("message %s repeats an earlier message of the thread; imported once", msg.Key())
	p.issue(msg, sources.Issue{Severity: sources.SeverityWarning, Rule: RuleDuplicate, Reason: reason})
	p.Rejected = append(p.Rejected, Rejected{Key: msg.Key(), Source: msg.Loc, Rule: RuleDuplicate, Reason: reason, Duplicate: true})
}

// rejectDuplicates lists the duplicates threading found: copies as
// warnings, another message under the same id as an error.
func (p *Plan) rejectDuplicates(msgs, dups []*sources.Message) {
	for _, d := range dups {
		orig := original(msgs, d)
		if orig == nil || !differs(orig, d) {
			p.rejectDuplicate(d)
			continue
		}
		// Another message reusing the id (a broken mailer): not
		// imported, but listed by failures and copied to the failures
		// mailbox under its content key, so it is not lost.
		reason := fmt.Sprintf("message at %s has the Message-ID %s of the message at %s but different content (subject %q, date %s); only the first is imported",
			d.Loc, d.Key(), orig.Loc, d.Subject, d.Date.UTC().Format(time.RFC3339))
		i := Issue{Issue: sources.Issue{Severity: sources.SeverityError, Rule: RuleDuplicateID, Reason: reason}, ThreadKey: p.ThreadKey, MessageKey: d.ContentKey, Source: d.Loc}
		p.Issues = append(p.Issues, i)
		p.Rejected = append(p.Rejected, Rejected{Key: d.ContentKey, Source: d.Loc, Rule: RuleDuplicateID, Reason: reason})
	}
}

// addEvents turns each message that can be posted into an event. It
// returns the first such message, and why the thread is rejected for a
// refused attachment ("" when it is not).
func (m *Mapper) addEvents(p *Plan, msgs []*sources.Message) (first *sources.Message, refusedAttachment string) {
	seen := make(map[string]bool, len(msgs))
	for _, msg := range msgs {
		if seen[msg.Key()] {
			p.rejectDuplicate(msg)
			continue
		}
		seen[msg.Key()] = true
		e, ok := m.messageEvent(p, msg)
		if !ok {
			continue
		}
		if first == nil {
			first = msg
		}
		if refused := m.attachmentPolicy(p, msg, &e); refused != "" {
			refusedAttachment = refused
		}
		p.Events = append(p.Events, e)
	}
	return first, refusedAttachment
}

// messageEvent builds msg's event and adds its issues (errors, in strict
// mode warnings too); ok is false when one of them rejects msg.
func (m *Mapper) messageEvent(p *Plan, msg *sources.Message) (e Event, ok bool) {
	ev, issues := m.event(msg)
	atts, nameIssues := cleanAttachmentNames(msg.Attachments)
	issues = append(issues, nameIssues...)
	var reject *sources.Issue
	for _, is := range issues {
		if m.opts.Strict && is.Severity == sources.SeverityWarning {
			is.Severity = sources.SeverityError
			is.Reason += " (strict: warnings reject)"
		}
		p.issue(msg, is)
		if is.Severity == sources.SeverityError && reject == nil {
			reject = &is
		}
	}
	if reject != nil {
		p.Rejected = append(p.Rejected, Rejected{Key: msg.Key(), Source: msg.Loc, Rule: reject.Rule, Reason: reject.Reason})
		return Event{}, false
	}
	return Event{Key: msg.Key(), Source: msg.Loc, Event: ev, Message: msg, Attachments: atts}, true
}

// attachmentPolicy picks the attachments of e to upload; each one left
// out is a warning and a line at the end of the body. It returns why the
// thread is rejected when a refused attachment rejects it (the last one
// refused), else "".
func (m *Mapper) attachmentPolicy(p *Plan, msg *sources.Message, e *Event) (refusedAttachment string) {
	var left []string
	for i, a := range e.Attachments {
		why := m.opts.Attachments.refused(a)
		if why == "" {
			e.Upload = append(e.Upload, i)
			continue
		}
		if m.opts.Attachments.RejectThread {
			refusedAttachment = fmt.Sprintf("attachment %q of the message at %s is refused (%s) and on_refused is reject", a.Name, msg.Loc, why)
		}
		p.issue(msg, sources.Issue{Severity: sources.SeverityWarning, Rule: RuleAttachmentLeftOut,
			Reason: fmt.Sprintf("attachment %q (%s, %d bytes) left out: %s", a.Name, a.ContentType, a.Size, why)})
		left = append(left, fmt.Sprintf("[threadlift: attachment %q (%d bytes) was left out: %s]", a.Name, a.Size, why))
	}
	if len(left) > 0 {
		e.Event.Message.Body = strings.TrimRight(e.Event.Message.Body, "\n") + "\n\n" + strings.Join(left, "\n")
	}
	return refusedAttachment
}

// setSubject gives the side conversation the subject of the first posted
// message, else the first subject of the thread, else "(no subject)"
// (a warning); events without a subject take it.
func (m *Mapper) setSubject(p *Plan, first *sources.Message, msgs []*sources.Message) {
	subject := ""
	if first != nil {
		subject = strings.TrimSpace(first.Subject)
	}
	if subject == "" {
		for _, msg := range msgs {
			if s := strings.TrimSpace(msg.Subject); s != "" {
				subject = s
				break
			}
		}
	}
	if subject == "" {
		subject = "(no subject)"
		p.issue(first, sources.Issue{Severity: sources.SeverityWarning, Rule: RuleNoSubject,
			Reason: `thread has no subject; side conversation subject set to "(no subject)"`})
	}
	for i := range p.Events {
		if p.Events[i].Event.Message.Subject == "" {
			p.Events[i].Event.Message.Subject = subject
		}
	}
	p.SideConversation = zendesk.ImportSideConversation{
		Subject:     subject,
		State:       m.opts.State,
		ExternalIDs: map[string]string{zendesk.ThreadKeyField: p.ThreadKey},
	}
}

// decide finds the thread's ticket and whether the whole thread is
// rejected: no ticket, a refused attachment under on_refused: reject, or
// no message that can be posted.
func (m *Mapper) decide(p *Plan, msgs, dups []*sources.Message, refusedAttachment string) {
	id, rule, reason := m.ticket(msgs)
	p.TicketID = id
	switch {
	case id == 0:
		p.Rule, p.Reason = rule, reason
	case refusedAttachment != "":
		p.Rule, p.Reason = RuleAttachmentRefused, refusedAttachment
	case len(p.Events) == 0:
		p.Rule = RuleNoImportable
		p.Reason = fmt.Sprintf("none of the thread's %d messages can be imported", len(msgs)+len(dups))
	}
	if p.Reason != "" {
		p.Issues = append(p.Issues, Issue{
			Issue:     sources.Issue{Severity: sources.SeverityError, Rule: p.Rule, Reason: p.Reason},
			ThreadKey: p.ThreadKey, Source: p.Source,
		})
	}
}

// original returns the message of the thread whose key d repeats.
func original(msgs []*sources.Message, d *sources.Message) *sources.Message {
	for _, m := range msgs {
		if m.Key() == d.Key() {
			return m
		}
	}
	return nil
}

// differs reports whether a duplicate is another message under the same
// id rather than a copy. Csv/json records compare their content keys
// exactly; mail copies often differ in Received lines, so mbox messages
// compare what a person would: subject and date.
func differs(a, b *sources.Message) bool {
	if a.ThreadID != "" || b.ThreadID != "" {
		return a.ContentKey != b.ContentKey
	}
	return a.Subject != b.Subject || !a.Date.Equal(b.Date)
}

// event builds the import event of one message and the issues that
// validation finds in it.
func (m *Mapper) event(msg *sources.Message) (zendesk.ImportEvent, []sources.Issue) {
	issues := m.recipientIssues(msg)
	if hasError(issues) {
		// Already rejected by its source (and perhaps never decoded): the
		// source's reason is the one that matters.
		return zendesk.ImportEvent{}, issues
	}
	ev := zendesk.ImportEvent{
		CreatedAt: msg.Date.UTC(),
		Message: zendesk.Message{
			Subject:     strings.TrimSpace(msg.Subject),
			Body:        msg.Body,
			HTMLBody:    msg.HTMLBody,
			ExternalIDs: map[string]string{zendesk.MessageKeyField: msg.Key()},
		},
	}
	// One rule for every source: a blank body is refused by the API, so
	// it becomes EmptyBody. Only a message with no text at all is worth a
	// warning; one whose text is HTML keeps its html_body (validate, which
	// does not render HTML, sees the same issues as import).
	if strings.TrimSpace(ev.Message.Body) == "" {
		ev.Message.Body = EmptyBody
		if strings.TrimSpace(ev.Message.HTMLBody) == "" {
			issues = append(issues, sources.Issue{Severity: sources.SeverityWarning, Rule: RuleEmptyBody,
				Reason: `message has no text; body set to "` + EmptyBody + `"`})
		}
	}
	if msg.HasFrom {
		from := m.participant(msg.From)
		ev.Message.From = &from
	}
	seen := make(map[string]bool)
	for _, a := range append(append([]sources.Address(nil), msg.To...), msg.Cc...) {
		p := m.participant(a)
		k := participantKey(p)
		if seen[k] {
			continue
		}
		seen[k] = true
		ev.Message.To = append(ev.Message.To, p)
	}
	if len(ev.Message.To) == 0 && m.opts.DefaultRecipient != nil {
		ev.Message.To = []zendesk.Participant{m.participant(*m.opts.DefaultRecipient)}
		if !hasRule(issues, RuleDefaultRecipient) {
			issues = append(issues, sources.Issue{Severity: sources.SeverityWarning, Rule: RuleDefaultRecipient,
				Reason: "message has no recipient; posted to mapping.default_recipient " + describeAddress(*m.opts.DefaultRecipient)})
		}
	}
	// Dates (contract §9): before 1970 or more than a day ahead is
	// refused; up to a day ahead (sender clock skew) is posted as the time
	// of the request, with a warning, rather than fail its whole thread.
	// The clock is read once per message: the checks below see one time.
	now := m.opts.Now()
	if !msg.Date.IsZero() && !hasRule(issues, RuleDateOutOfRange) {
		if msg.Date.Before(time.Unix(0, 0)) || msg.Date.After(now.Add(24*time.Hour)) {
			return ev, append(issues, sources.Issue{Severity: sources.SeverityError, Rule: RuleDateOutOfRange,
				Reason: fmt.Sprintf("date %s is before 1970 or more than a day in the future", msg.Date.UTC().Format(time.RFC3339))})
		}
		if c, ok := clampDate(msg.Date, now); ok {
			ev.CreatedAt = c
			issues = append(issues, sources.Issue{Severity: sources.SeverityWarning, Rule: RuleDateClamped,
				Reason: fmt.Sprintf("date %s is %s after the run (sender clock skew?) and Zendesk refuses dates in the future: posted as %s, the time of the request",
					msg.Date.UTC().Format(time.RFC3339), msg.Date.Sub(now).Round(time.Second), c.Format(time.RFC3339))})
		}
	}
	if is := truncateRecipients(&ev.Message); is != nil {
		issues = append(issues, *is)
	}
	// The payload as the API checks it (contract §4): what validate
	// refuses is exactly what the API (zendesktest's model of it) refuses.
	// issues holds no error yet: a rejected message returned above.
	return ev, append(issues, CheckEvent(ev, now)...)
}

// recipientIssues returns a copy of a message's issues with its source's
// "no-recipient" rejection turned into a default-recipient warning when
// mapping.default_recipient is set, or with the hint to set it otherwise.
// A rejection found while scanning (a csv/json record, whose to is
// required) is not lifted: such a record was never loaded.
func (m *Mapper) recipientIssues(msg *sources.Message) []sources.Issue {
	out := append([]sources.Issue(nil), msg.Issues...)
	for i, is := range out {
		if is.Rule != RuleNoRecipient || is.Severity != sources.SeverityError {
			continue
		}
		if m.opts.DefaultRecipient != nil && (msg.Envelope == nil || !slices.Contains(msg.Envelope.Issues, is)) {
			out[i] = sources.Issue{Severity: sources.SeverityWarning, Rule: RuleDefaultRecipient,
				Reason: is.Reason + "; posted to mapping.default_recipient " + describeAddress(*m.opts.DefaultRecipient)}
			continue
		}
		out[i].Reason = is.Reason + noRecipientHint
	}
	return out
}

// noRecipientHint ends the reason of a message rejected for having no
// recipient.
const noRecipientHint = "; set mapping.default_recipient to import such messages (mailing-list archives often strip To)"

func describeAddress(a sources.Address) string {
	switch {
	case a.UserID != 0:
		return fmt.Sprintf("{user_id: %d}", a.UserID)
	case a.Name != "":
		return fmt.Sprintf("%s <%s>", a.Name, a.Email)
	}
	return a.Email
}

func hasError(is []sources.Issue) bool {
	for _, i := range is {
		if i.Severity == sources.SeverityError {
			return true
		}
	}
	return false
}

// truncateRecipients keeps a message's recipients within the API's limits
// (MaxRecipients, of which MaxNonAgentRecipients not agents): every agent
// (the first MaxRecipients), then the other recipients in order (To
// before Cc) while there is room. The others are listed at the end of
// the body, where an agent sees who else the mail went to: external_ids
// would hide them, and their sizes are undocumented. nil when nothing
// was left out.
func truncateRecipients(msg *zendesk.Message) *sources.Issue {
	to := msg.To
	agents, others := 0, 0
	for _, p := range to {
		if isNonAgent(p) {
			others++
		} else {
			agents++
		}
	}
	if len(to) <= MaxRecipients && others <= MaxNonAgentRecipients {
		return nil
	}
	keepAgents := min(agents, MaxRecipients)
	keepOthers := min(others, MaxNonAgentRecipients, MaxRecipients-keepAgents)
	var kept []zendesk.Participant
	var left []string
	ka, ko := 0, 0
	for _, p := range to {
		switch {
		case !isNonAgent(p) && ka < keepAgents:
			ka++
		case isNonAgent(p) && ko < keepOthers:
			ko++
		default:
			left = append(left, describeParticipant(p))
			continue
		}
		kept = append(kept, p)
	}
	msg.To = kept
	more := "recipients"
	if len(left) == 1 {
		more = "recipient"
	}
	note := fmt.Sprintf("[threadlift: also sent to %d more %s: %s]", len(left), more, strings.Join(left, ", "))
	msg.Body = strings.TrimRight(msg.Body, "\n") + "\n\n" + note
	if msg.HTMLBody != "" {
		msg.HTMLBody += "\n<p>" + html.EscapeString(note) + "</p>"
	}
	return &sources.Issue{Severity: sources.SeverityWarning, Rule: RuleRecipientsTruncated,
		Reason: fmt.Sprintf("message has %d recipients, %d of them not agents; the API takes at most %d, at most %d not agents: posted to %d agents and the first %d other recipients (To before Cc); the other %d are listed at the end of the body",
			len(to), others, MaxRecipients, MaxNonAgentRecipients, ka, ko, len(left))}
}

// isNonAgent says whether p counts against MaxNonAgentRecipients: an
// email participant that is not a Zendesk user.
func isNonAgent(p zendesk.Participant) bool {
	return ParticipantType(p) == "email" && p.UserID == 0
}

func describeParticipant(p zendesk.Participant) string {
	switch {
	case p.Email != "" && p.Name != "":
		return fmt.Sprintf("%s <%s>", p.Name, p.Email)
	case p.Email != "":
		return p.Email
	case p.UserID != 0:
		return fmt.Sprintf("user %d", p.UserID)
	}
	return participantKey(p)
}

// CheckEvent validates one event's payload against the API's rules
// (contract §4; zendesktest refuses the same): a non-blank body, at least
// one recipient, at most MaxRecipients of which MaxNonAgentRecipients not
// agents, one participant type, valid participants, created_at from 1970
// to now. Every problem is an error issue.
func CheckEvent(ev zendesk.ImportEvent, now time.Time) []sources.Issue {
	var issues []sources.Issue
	fail := func(rule, format string, args ...any) {
		issues = append(issues, sources.Issue{Severity: sources.SeverityError, Rule: rule, Reason: fmt.Sprintf(format, args...)})
	}
	msg := ev.Message
	if strings.TrimSpace(msg.Body) == "" {
		fail(RuleEmptyBody, "message body is blank; the API refuses it")
	}
	if len(msg.To) == 0 {
		fail(RuleNoRecipient, "message has no recipient (to and cc are empty)%s", noRecipientHint)
	}
	switch {
	case ev.CreatedAt.IsZero(), ev.CreatedAt.Before(time.Unix(0, 0)):
		fail(RuleDateOutOfRange, "date %s is before 1970", ev.CreatedAt.UTC().Format(time.RFC3339))
	case ev.CreatedAt.After(now):
		fail(RuleDateOutOfRange, "date %s is in the future (now %s); the API refuses it", ev.CreatedAt.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if n := len(msg.To); n > MaxRecipients {
		fail(RuleTooManyRecipients, "message has %d recipients; the API allows at most %d", n, MaxRecipients)
	} else if n := nonAgents(msg.To); n > MaxNonAgentRecipients {
		fail(RuleTooManyRecipients, "message has %d non-agent recipients; the API allows at most %d", n, MaxNonAgentRecipients)
	}
	if t, ok := mixedTypes(msg); !ok {
		fail(RuleMixedParticipants, "message mixes participant types (%s); the API allows one type per message", t)
	}
	if msg.From != nil {
		if why := invalidParticipant(*msg.From); why != "" {
			fail(RuleInvalidParticipant, "sender: %s", why)
		}
	}
	for _, p := range msg.To {
		if why := invalidParticipant(p); why != "" {
			fail(RuleInvalidParticipant, "%s", why)
		}
	}
	return issues
}

// plainAddress reports whether s is an address net/mail takes as it is:
// a dot-atom local part and domain of letters, digits and the usual
// symbols. Every address of an archive is checked, and net/mail's parser
// is costly; the rare other ones go through it.
func plainAddress(s string) bool {
	at := strings.IndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || strings.IndexByte(s[at+1:], '@') >= 0 {
		return false
	}
	for _, part := range [2]string{s[:at], s[at+1:]} {
		if part[0] == '.' || part[len(part)-1] == '.' || strings.Contains(part, "..") {
			return false
		}
		for i := 0; i < len(part); i++ {
			c := part[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(".-_+=", c) >= 0) {
				return false
			}
		}
	}
	return true
}

// invalidParticipant says why the API would refuse p, or "".
func invalidParticipant(p zendesk.Participant) string {
	switch ParticipantType(p) {
	case "":
		return "a participant has no user_id, email, Slack, child-ticket or Teams property"
	case "email":
		if p.UserID < 0 {
			return fmt.Sprintf("participant user_id %d is not positive", p.UserID)
		}
		if p.UserID == 0 && !plainAddress(p.Email) {
			a, err := mail.ParseAddress(p.Email)
			if err != nil || a.Address != p.Email {
				return fmt.Sprintf("participant %q is not a valid email address", p.Email)
			}
		}
	case "slack":
		if p.SlackWorkspaceID == "" || p.SlackChannelID == "" {
			return "a Slack participant needs slack_workspace_id and slack_channel_id"
		}
	case "child_ticket":
		if p.SupportGroupID == "" {
			return "a child-ticket participant needs support_group_id"
		}
	}
	return ""
}

func hasRule(is []sources.Issue, rule string) bool {
	for _, i := range is {
		if i.Rule == rule {
			return true
		}
	}
	return false
}

func (m *Mapper) participant(a sources.Address) zendesk.Participant {
	if a.Email != "" && a.UserID == 0 {
		if id, ok := m.opts.Agents[strings.ToLower(a.Email)]; ok {
			return zendesk.Participant{UserID: id}
		}
	}
	p := zendesk.Participant{
		UserID: a.UserID, Name: a.Name, Email: a.Email,
		SlackWorkspaceID: a.SlackWorkspaceID, SlackChannelID: a.SlackChannelID,
		SupportGroupID: a.SupportGroupID, SupportAgentID: a.SupportAgentID,
		MSTeamsChannelID: a.MSTeamsChannelID,
	}
	if p.UserID != 0 {
		p.Email, p.Name = "", ""
	}
	return p
}

func participantKey(p zendesk.Participant) string {
	if p.Email != "" {
		return "e:" + strings.ToLower(p.Email)
	}
	return fmt.Sprintf("%d|%s|%s|%s|%s|%s", p.UserID, p.SlackWorkspaceID, p.SlackChannelID, p.SupportGroupID, p.SupportAgentID, p.MSTeamsChannelID)
}

func nonAgents(ps []zendesk.Participant) int {
	n := 0
	for _, p := range ps {
		if isNonAgent(p) {
			n++
		}
	}
	return n
}

// ParticipantType names the side-conversation type a participant belongs
// to: "email", "slack", "child_ticket", "msteams", or "" when it has none.
func ParticipantType(p zendesk.Participant) string {
	switch {
	case p.SlackWorkspaceID != "" || p.SlackChannelID != "":
		return "slack"
	case p.SupportGroupID != "" || p.SupportAgentID != "":
		return "child_ticket"
	case p.MSTeamsChannelID != "":
		return "msteams"
	case p.UserID != 0 || p.Email != "":
		return "email"
	}
	return ""
}

func mixedTypes(msg zendesk.Message) (string, bool) {
	types := map[string]bool{}
	var order []string
	add := func(p zendesk.Participant) {
		t := ParticipantType(p)
		if !types[t] {
			types[t] = true
			order = append(order, t)
		}
	}
	if msg.From != nil {
		add(*msg.From)
	}
	for _, p := range msg.To {
		add(p)
	}
	return strings.Join(order, ", "), len(types) <= 1
}

func headerKey(h string) string {
	// textproto.CanonicalMIMEHeaderKey without importing net/textproto's
	// reader machinery: the sources store keys in this form.
	b := []byte(strings.ToLower(strings.TrimSpace(h)))
	upper := true
	for i, c := range b {
		if upper && 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
		upper = c == '-'
	}
	return string(b)
}

// LoadLookupCSV reads a lookup_csv file: a header row with the columns
// reference and ticket_id.
func LoadLookupCSV(path string) (map[string]int64, error) {
	return loadPairs(path, "reference", "ticket_id", func(s string) string { return strings.TrimSpace(s) })
}

// LoadAgentsCSV reads an agents_csv file: a header row with the columns
// email and user_id.
func LoadAgentsCSV(path string) (map[string]int64, error) {
	return loadPairs(path, "email", "user_id", func(s string) string {
		s = strings.TrimSpace(s)
		if a, err := mail.ParseAddress(s); err == nil {
			s = a.Address
		}
		return strings.ToLower(s)
	})
}

var errColumns = errors.New("missing column")

func loadPairs(path, keyCol, idCol string, norm func(string) string) (map[string]int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	head, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("read header of %s: %w", path, err)
	}
	ki, ii := -1, -1
	for i, h := range head {
		switch strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))) {
		case keyCol:
			ki = i
		case idCol:
			ii = i
		}
	}
	if ki < 0 || ii < 0 {
		return nil, fmt.Errorf("%s: header must name columns %q and %q: %w", path, keyCol, idCol, errColumns)
	}
	out := make(map[string]int64)
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		if ki >= len(rec) || ii >= len(rec) {
			line, _ := r.FieldPos(0)
			return nil, fmt.Errorf("%s:%d: too few columns", path, line)
		}
		id, err := strconv.ParseInt(strings.TrimSpace(rec[ii]), 10, 64)
		if err != nil || id <= 0 {
			line, _ := r.FieldPos(ii)
			return nil, fmt.Errorf("%s:%d: %s %q is not a positive number", path, line, idCol, rec[ii])
		}
		out[norm(rec[ki])] = id
	}
}
