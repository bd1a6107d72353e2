package header

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/internal/charset"
	"github.com/threadlift/threadlift/sources/internal/dates"
)

// FillEnvelope derives the envelope's ids, subject and date from the
// header fields, and records issues.
func FillEnvelope(env *sources.Envelope, fields []RawField, issues []sources.Issue, fromLine []byte, opts sources.Options) {
	if env.Size > opts.MaxMessageBytes {
		issues = append(issues, sources.Issue{Severity: sources.SeverityError, Rule: "too-large",
			Reason: fmt.Sprintf("message is %d bytes, over max_message_bytes %d", env.Size, opts.MaxMessageBytes)})
	}
	if fields == nil { // no-header already reported
		env.Issues = issues
		return
	}
	// The fields are read in this order, which is also the order the
	// 8bit-header issue names them in.
	h := &fieldReader{fields: fields}
	issues = fillIDs(env, h, issues)
	issues = fillSubject(env, h, issues)
	issues = fillDate(env, h, fromLine, opts, issues)
	if is := h.eightBitIssue(); is != nil {
		issues = append(issues, *is)
	}
	env.Issues = issues
}

// fieldReader reads header fields by name, noting the ones read whose
// bytes are not UTF-8.
type fieldReader struct {
	fields   []RawField
	eightBit []string
}

// get returns the text of the first field named key.
func (h *fieldReader) get(key string) (string, bool) {
	for _, f := range h.fields {
		if f.Key == key {
			s, rep := fieldText(f.Value)
			if rep {
				h.eightBit = append(h.eightBit, key)
			}
			return s, true
		}
	}
	return "", false
}

// eightBitIssue reports raw 8-bit bytes in any field (not only the ones
// read with get), or nil when there are none.
func (h *fieldReader) eightBitIssue() *sources.Issue {
	eightBit := h.eightBit
	seen := map[string]bool{}
	for _, k := range eightBit {
		seen[k] = true
	}
	for _, f := range h.fields {
		if !seen[f.Key] && !isASCII(string(f.Value)) && !utf8.Valid(f.Value) {
			seen[f.Key] = true
			eightBit = append(eightBit, f.Key)
		}
	}
	if len(eightBit) == 0 {
		return nil
	}
	return &sources.Issue{Severity: sources.SeverityWarning, Rule: "8bit-header",
		Reason: fmt.Sprintf("raw 8-bit bytes that are not UTF-8 in the %s header(s), read as windows-1252", strings.Join(dedupe(eightBit), ", "))}
}

// fillIDs sets the envelope's Message-ID, correction mark and references.
func fillIDs(env *sources.Envelope, h *fieldReader, issues []sources.Issue) []sources.Issue {
	mid, _ := h.get("Message-Id")
	env.MessageID = normalizeID(mid)
	markCorrection(env, h.get) // a failures file's copy (sources.FailureWriter)
	if env.MessageID == "" {
		issues = append(issues, sources.Issue{Severity: sources.SeverityWarning, Rule: "no-message-id",
			Reason: "no Message-ID header: the message key is the content hash " + env.ContentKey})
	}
	refs, _ := h.get("References")
	irt, _ := h.get("In-Reply-To")
	env.References = references(refs, irt, env.MessageID)
	return issues
}

// fillSubject sets the envelope's decoded subject.
func fillSubject(env *sources.Envelope, h *fieldReader, issues []sources.Issue) []sources.Issue {
	subj, ok := h.get("Subject")
	if !ok {
		return issues
	}
	dec, unknown := charset.DecodeWords(subj)
	env.Subject = dec
	for _, cs := range unknown {
		issues = append(issues, sources.Issue{Severity: sources.SeverityWarning, Rule: "charset",
			Reason: fmt.Sprintf("unknown charset %s in Subject header; valid UTF-8 kept, other bytes read as windows-1252", cs)})
	}
	return issues
}

// fillDate sets the envelope's date: the Date header, then the last
// Received header, then the From line, then a Date whose zone is unknown.
func fillDate(env *sources.Envelope, h *fieldReader, fromLine []byte, opts sources.Options, issues []sources.Issue) []sources.Issue {
	ds := &dateSearch{issues: issues}
	date := ds.fromHeader(h)
	if date.IsZero() {
		date = ds.fromReceived(h.fields)
	}
	if date.IsZero() {
		date = ds.fromLine(fromLine)
	}
	if date.IsZero() && !ds.weakDate.IsZero() {
		date = ds.weakDate
		ds.issue(sources.SeverityWarning, "date-repaired",
			fmt.Sprintf("%s: Date header %q is malformed (%s); read as %s", strings.Join(ds.why[1:], "; "), Clip([]byte(ds.dateHdr), 80), ds.weakNote, date.Format(time.RFC3339)))
	}
	if date.IsZero() {
		ds.issue(sources.SeverityError, "no-date", "no usable date: "+strings.Join(ds.why, "; "))
		return ds.issues
	}
	now := opts.Now()
	if date.Before(time.Unix(0, 0)) {
		ds.issue(sources.SeverityError, "date-out-of-range",
			fmt.Sprintf("date %s is before 1970", date.Format(time.RFC3339)))
	} else if date.After(now.Add(24 * time.Hour)) {
		ds.issue(sources.SeverityError, "date-out-of-range",
			fmt.Sprintf("date %s is more than a day after now (%s)", date.Format(time.RFC3339), now.UTC().Format(time.RFC3339)))
	}
	env.Date = date
	return ds.issues
}

// dateSearch tries the date sources in turn; why says why each one tried
// was not used, for the issue that names the one that was.
type dateSearch struct {
	why      []string
	issues   []sources.Issue
	dateHdr  string
	weakDate time.Time // a Date whose zone is unknown: the last resort
	weakNote string
}

func (ds *dateSearch) issue(sev sources.Severity, rule, reason string) {
	ds.issues = append(ds.issues, sources.Issue{Severity: sev, Rule: rule, Reason: reason})
}

// fromHeader reads the Date header; zero when it is absent, unusable or
// has an unknown zone (then kept as weakDate).
func (ds *dateSearch) fromHeader(h *fieldReader) time.Time {
	dateHdr, ok := h.get("Date")
	if !ok {
		ds.why = append(ds.why, "no Date header")
		return time.Time{}
	}
	ds.dateHdr = dateHdr
	t, note, weak, err := dates.ParseNote(dateHdr)
	switch {
	case err != nil:
		ds.why = append(ds.why, fmt.Sprintf("Date header %q does not parse", Clip([]byte(dateHdr), 80)))
	case t.Unix() == 0:
		ds.why = append(ds.why, "Date header is the Unix epoch")
	case weak:
		ds.why = append(ds.why, fmt.Sprintf("Date header %q has an unknown zone", Clip([]byte(dateHdr), 80)))
		ds.weakDate, ds.weakNote = t, note
	default:
		if note != "" {
			ds.issue(sources.SeverityWarning, "date-repaired",
				fmt.Sprintf("Date header %q is malformed (%s); read as %s", Clip([]byte(dateHdr), 80), note, t.Format(time.RFC3339)))
		}
		return t
	}
	return time.Time{}
}

// fromReceived reads the date after the last ';' of the last Received
// header, the one the first relay added.
func (ds *dateSearch) fromReceived(fields []RawField) time.Time {
	var last []byte
	for _, f := range fields {
		if f.Key == "Received" {
			last = f.Value
		}
	}
	if last == nil {
		ds.why = append(ds.why, "no Received header")
		return time.Time{}
	}
	recv, _ := fieldText(last)
	i := strings.LastIndexByte(recv, ';')
	t, err := dates.Parse(recv[i+1:])
	switch {
	case i < 0:
		ds.why = append(ds.why, "the last Received header has no date")
	case err != nil:
		ds.why = append(ds.why, fmt.Sprintf("the last Received header's date %q does not parse", Clip([]byte(strings.TrimSpace(recv[i+1:])), 80)))
	case t.Unix() == 0:
		ds.why = append(ds.why, "the last Received header's date is the Unix epoch")
	default:
		ds.issue(sources.SeverityWarning, "date-fallback",
			strings.Join(ds.why, "; ")+": used the last Received header's date "+t.Format(time.RFC3339))
		return t
	}
	return time.Time{}
}

// fromLine reads the date of the mbox From line.
func (ds *dateSearch) fromLine(fromLine []byte) time.Time {
	if len(fromLine) == 0 {
		ds.why = append(ds.why, "no From line")
		return time.Time{}
	}
	t, ok := dates.FromLine(fromLine)
	switch {
	case !ok:
		ds.why = append(ds.why, fmt.Sprintf("the From line %q has no date", Clip(fromLine, 80)))
	case t.Unix() == 0:
		ds.why = append(ds.why, "the From line's date is the Unix epoch")
	default:
		ds.issue(sources.SeverityWarning, "date-fallback",
			strings.Join(ds.why, "; ")+": used the From line's date "+t.Format(time.RFC3339)+" (UTC)")
		return t
	}
	return time.Time{}
}

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

// normalizeID takes the first <...> of v if there is one, else v; angle
// brackets and surrounding white space are dropped, case is kept.
func normalizeID(v string) string {
	if i := strings.IndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i+1:], '>'); j >= 0 {
			return strings.TrimSpace(v[i+1 : i+1+j])
		}
	}
	return strings.Trim(strings.TrimSpace(v), "<> \t")
}

// msgIDs returns the <...> ids of v, or, when v has no angle brackets at
// all, its white-space separated words that look like ids (contain '@').
func msgIDs(v string) []string {
	var ids []string
	if !strings.Contains(v, "<") {
		for _, w := range strings.Fields(v) {
			if strings.Contains(w, "@") {
				ids = append(ids, strings.Trim(w, "<>,;\"'()"))
			}
		}
		return ids
	}
	for {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			return ids
		}
		j := strings.IndexByte(v[i+1:], '>')
		if j < 0 {
			return ids
		}
		id := strings.TrimSpace(v[i+1 : i+1+j])
		v = v[i+1+j+1:]
		if id == "" || strings.ContainsAny(id, " \t<") {
			continue // junk
		}
		ids = append(ids, id)
	}
}

// references builds Envelope.References: References ids, then In-Reply-To's
// first id when it is not already last; no self-references, no repeats.
func references(refs, inReplyTo, self string) []string {
	var out []string
	seen := map[string]bool{}
	add := func(id string) {
		if id == "" || id == self || seen[id] {
			return
		}
		seen[id] = true
		out = append(out, id)
	}
	for _, id := range msgIDs(refs) {
		add(id)
	}
	if irt := msgIDs(inReplyTo); len(irt) > 0 {
		id := irt[0]
		if id != self && (len(out) == 0 || out[len(out)-1] != id) {
			if seen[id] { // move it to the end: it is the direct parent
				for i, o := range out {
					if o == id {
						out = append(out[:i], out[i+1:]...)
						break
					}
				}
				delete(seen, id)
			}
			add(id)
		}
	}
	return out
}

// markCorrection sets env.Corrects from an mbox message's mark header,
// given as get returns it.
func markCorrection(env *sources.Envelope, get func(string) (string, bool)) {
	if v, ok := get(sources.MarkSourceHeader); ok {
		env.Corrects = strings.TrimSpace(v)
	}
}
