package mbox

import (
	"maps"
	"strings"

	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/internal/charset"
	"github.com/threadlift/threadlift/sources/internal/header"
)

// Gmail Takeout (issue 16).
//
// Takeout writes one mbox per export whose messages carry Gmail's own
// conversation id (X-GM-THRID, a decimal number) and the labels the
// message had (X-Gmail-Labels, comma-separated: "Inbox,Important,Spam").
//
// thread_by: gmail gives each message the explicit thread id
// "gmail:" + X-GM-THRID (Envelope.ThreadID): such a message takes no part
// in JWZ linking and its thread key is that id, which gives Gmail's exact
// conversations even where References are missing or were rewritten by a
// list. A later run that finds a new message of the same conversation
// (a backfill) gives it the same key, so it is appended to the side
// conversation already imported. A message without X-GM-THRID is
// threaded by JWZ as usual, with a warning. It is never automatic: thread
// keys are what make a run safe to repeat, and an archive already
// imported with JWZ keys must keep them (see README).
//
// skip_labels leaves out, in the envelope pass, every message that has
// one of the labels (case-insensitive). A skipped message is no record:
// it is not threaded, loaded nor counted in messages, but the reader
// counts it by label (sources.Skipper) and the run reports the counts.

// Header fields of Gmail Takeout, canonical.
const (
	gmailThreadHeader = "X-Gm-Thrid"
	gmailLabelsHeader = "X-Gmail-Labels"
	gmailKeyPrefix    = "gmail:"
)

// RuleNoGmailThread is the warning on a message without X-GM-THRID in a
// source threaded by Gmail's ids: it is threaded by JWZ instead.
const RuleNoGmailThread sources.Rule = "no-gmail-thread-id"

// gmail applies thread_by: gmail to env, whose header fields are fields.
func (r *reader) gmail(env *sources.Envelope, fields []header.RawField) {
	if r.opts.Format.ThreadBy != sources.ThreadByGmail || fields == nil {
		return
	}
	if id := strings.TrimSpace(fieldValue(fields, gmailThreadHeader)); id != "" {
		env.ThreadID = gmailKeyPrefix + id
		return
	}
	env.Issues = append(env.Issues, sources.Issue{Severity: sources.SeverityWarning, Rule: string(RuleNoGmailThread),
		Reason: "thread_by is gmail but the message has no X-GM-THRID header: threaded by Message-ID and References instead"})
}

// skip reports whether the message just scanned is left out by
// skip_labels (scanMessage noted its label in r.skipLabel), and counts it.
func (r *reader) skip(env *sources.Envelope) bool {
	label := r.skipLabel
	r.skipLabel = ""
	if label == "" || env.Rejected() {
		return false // a message rejected for what it is is reported, never skipped unseen
	}
	if r.skipped == nil {
		r.skipped = make(map[string]int)
	}
	r.skipped["label "+label]++
	return true
}

// skippedLabel returns the first label of the X-Gmail-Labels field that
// skip_labels names, as skip_labels spells it; "" when none.
func (r *reader) skippedLabel(fields []header.RawField) string {
	if len(r.opts.Format.SkipLabels) == 0 {
		return ""
	}
	v := fieldValue(fields, gmailLabelsHeader)
	if v == "" {
		return ""
	}
	labels, _ := charset.DecodeWords(v)
	for l := range strings.SplitSeq(labels, ",") {
		l = strings.Trim(strings.TrimSpace(l), `"`)
		for _, s := range r.opts.Format.SkipLabels {
			if strings.EqualFold(l, strings.TrimSpace(s)) {
				return s
			}
		}
	}
	return ""
}

// Skipped returns how many messages skip_labels left out, by reason
// ("label Spam"); nil when none.
func (r *reader) Skipped() map[string]int { return maps.Clone(r.skipped) }

var _ sources.Skipper = (*reader)(nil)

// fieldValue returns the unfolded value of the first field named key.
func fieldValue(fields []header.RawField, key string) string {
	for _, f := range fields {
		if f.Key == key {
			return header.Unfold(f.Value)
		}
	}
	return ""
}
