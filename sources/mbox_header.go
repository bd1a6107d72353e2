package sources

import (
	"bufio"
	"bytes"
	"fmt"
	"hash"
	"io"
	"net/mail"
	"net/textproto"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// headerBlock is what readHeaderBlock found.
type headerBlock struct {
	block     []byte // header lines, LF line ends, without the ending blank line; capped
	truncated bool   // lines were left out of block because of the cap
	n         int64  // bytes consumed, the ending blank line included
	atEOF     bool   // the block ended at end of input instead of a blank line
	// lost names the fields left out of block because of the cap, in
	// order, each once (at most maxLostNames).
	lost []string
}

const maxLostNames = 24

// addLost records that a field named name was left out of the block.
func (hb *headerBlock) addLost(name string) {
	if name == "" || len(hb.lost) >= maxLostNames {
		return
	}
	for _, n := range hb.lost {
		if n == name {
			return
		}
	}
	hb.lost = append(hb.lost, name)
}

// lineFieldName is the canonical name of the field a header line starts,
// or "" for a continuation or a line that is not a field.
func lineFieldName(line []byte) string {
	if !isHeaderField(line) {
		return ""
	}
	i := bytes.IndexByte(line, ':')
	return textproto.CanonicalMIMEHeaderKey(string(line[:i]))
}

// tooLargeReason says what a header block over the cap lost: the fields
// left out, and what losing them does (issue 12, item 17).
func tooLargeReason(lost []string) string {
	r := fmt.Sprintf("header block is over %d bytes; the fields after that were skipped", maxHeaderBytes)
	if len(lost) == 0 {
		return r
	}
	names := make([]string, len(lost))
	for i, n := range lost {
		names[i] = n
		if n == "Message-Id" {
			names[i] = "Message-ID"
		}
	}
	r += ": " + strings.Join(names, ", ")
	if len(lost) == maxLostNames {
		r += ", ..."
	}
	var effects []string
	for _, n := range lost {
		switch n {
		case "Message-Id":
			effects = append(effects, "without its Message-ID the message key is its content hash and replies cannot find it")
		case "References", "In-Reply-To":
			effects = append(effects, "without "+n+" it is not threaded with the messages it answers")
		case "From":
			effects = append(effects, "without From it has no sender")
		case "To", "Cc":
			effects = append(effects, "without "+n+" its recipients there are lost")
		case "Date":
			effects = append(effects, "without Date another date is used")
		case "Subject":
			effects = append(effects, "without Subject the thread's subject is used")
		case "Content-Type", "Content-Transfer-Encoding", "Mime-Version":
			effects = append(effects, "without "+n+" its body is read as plain text")
		}
	}
	if len(effects) > 0 {
		r += " (" + strings.Join(dedupe(effects), "; ") + ")"
	}
	return r
}

// readHeaderBlock consumes header lines up to and including the blank line
// that ends them (or end of input). Every header line is written to h (when
// not nil) with CRLF turned into LF: that is the content key of contract §4.
// At most max bytes are kept in block.
func readHeaderBlock(br *bufio.Reader, h hash.Hash, max int) (headerBlock, error) {
	var hb headerBlock
	for {
		first := true
		pendingCR := false
		lineLen := 0
		lineStart := len(hb.block)
		keep := !hb.truncated
		name := "" // of a line that may be left out
		for {
			chunk, err := br.ReadSlice('\n')
			hb.n += int64(len(chunk))
			lineLen += len(chunk)
			full := err != bufio.ErrBufferFull
			if first && (hb.truncated || len(hb.block)+len(chunk) > max || !full) {
				name = lineFieldName(chunk)
			}
			if first && full && isBlankLine(chunk) {
				if len(chunk) == 0 && err == io.EOF {
					hb.atEOF = true
					return hb, nil
				}
				if err == io.EOF { // a lone "\r" at end of file
					hb.atEOF = true
				}
				if err != nil && err != io.EOF {
					return hb, err
				}
				return hb, nil
			}
			first = false
			if err != nil && err != bufio.ErrBufferFull && err != io.EOF {
				return hb, err
			}
			// CRLF to LF, also across a chunk boundary.
			out := chunk
			if pendingCR {
				if len(out) > 0 && out[0] == '\n' {
					// "\r" + "\n": the "\r" is dropped
				} else {
					write(h, &hb, keep, max, []byte{'\r'})
				}
				pendingCR = false
			}
			if bytes.HasSuffix(out, []byte("\r\n")) {
				write(h, &hb, keep, max, out[:len(out)-2])
				write(h, &hb, keep, max, []byte{'\n'})
			} else if !full && len(out) > 0 && out[len(out)-1] == '\r' {
				write(h, &hb, keep, max, out[:len(out)-1])
				pendingCR = true
			} else {
				write(h, &hb, keep, max, out)
			}
			if full {
				if pendingCR {
					write(h, &hb, keep, max, []byte{'\r'})
				}
				if hb.truncated && keep {
					// this line did not fit: leave it out whole
					hb.block = hb.block[:lineStart]
				}
				if hb.truncated {
					hb.addLost(name)
				}
				if err == io.EOF {
					if len(hb.block) > 0 && hb.block[len(hb.block)-1] != '\n' && !hb.truncated {
						hb.block = append(hb.block, '\n')
					}
					hb.atEOF = true
					return hb, nil
				}
				break
			}
		}
	}
}

// write adds b to the hash and, while there is room, to the kept block.
func write(h hash.Hash, hb *headerBlock, keep bool, max int, b []byte) {
	if h != nil {
		h.Write(b)
	}
	if !keep || hb.truncated {
		return
	}
	if len(hb.block)+len(b) > max {
		hb.truncated = true
		return
	}
	hb.block = append(hb.block, b...)
}

// rawField is one header field as written: Value keeps folding ("\n" +
// white space) and raw bytes.
type rawField struct {
	Key   string // canonical
	Value []byte
}

// parseHeaderBlock splits a header block (LF line ends) into fields; see
// parseHeaderBlockRepair.
func parseHeaderBlock(block []byte) ([]rawField, []Issue) {
	fields, issues, _ := parseHeaderBlockRepair(block)
	return fields, issues
}

// headerRepair says where the text of header lines that are not fields
// went (issue 12, item 9: no text is dropped).
type headerRepair struct {
	// body is the part of the block that is body text: the header ends at
	// a line that is not a field, as Python's email package reads it. The
	// body is this, the blank line, then the rest of the record.
	body []byte
	// text holds lines that are not fields but were followed by fields
	// that matter (a line that lost its indentation, junk before the
	// sender): they are kept as the first lines of the body, and the
	// fields after them stay fields.
	text []string
}

// parseHeaderBlockRepair splits a header block (LF line ends) into
// fields. A line that is neither a field nor a continuation ends the
// header there, the line and what follows it being body text, as Python
// reads it; but when a field that matters follows it in the block (the
// sender, the recipients, the date, the ids, the MIME structure, or any
// hyphenated name such as X-Mailer), reading those as body would lose
// the message, so the line is kept as body text and the fields after it
// stay fields. Either way a "header-no-colon" warning says what was done.
// When no line parses as a field it returns an error Issue "no-header"
// instead.
func parseHeaderBlockRepair(block []byte) ([]rawField, []Issue, headerRepair) {
	var fields []rawField
	var rep headerRepair
	var issues []Issue
	lineNo := 0
	multipart := false
	for len(block) > 0 {
		lineNo++
		rest := block
		var line []byte
		if i := bytes.IndexByte(block, '\n'); i >= 0 {
			line, block = block[:i], block[i+1:]
		} else {
			line, block = block, nil
		}
		line = bytes.TrimRight(line, "\r")
		cont := len(line) > 0 && (line[0] == ' ' || line[0] == '\t')
		if cont && len(fields) > 0 {
			f := &fields[len(fields)-1]
			f.Value = append(append(f.Value, '\n'), line...)
			continue
		}
		if i := bytes.IndexByte(line, ':'); !cont && i >= 0 && validKey(bytes.TrimRight(line[:i], " \t")) {
			key := textproto.CanonicalMIMEHeaderKey(string(bytes.TrimRight(line[:i], " \t")))
			if v := bytes.TrimSpace(line[i+1:]); key == "Content-Type" && len(v) >= 10 && bytes.EqualFold(v[:10], []byte("multipart/")) {
				multipart = true
			}
			fields = append(fields, rawField{Key: key, Value: append([]byte(nil), line[i+1:]...)})
			continue
		}
		why := "has no valid field name"
		switch {
		case cont:
			why = "continues no field"
		case bytes.IndexByte(line, ':') < 0:
			why = "has no colon"
		}
		if fieldThatMattersIn(block) || multipart {
			// The fields after it hold the message (or a multipart's
			// preamble would swallow the text): keep it as body text.
			rep.text = append(rep.text, string(line))
			issues = append(issues, Issue{SeverityWarning, "header-no-colon",
				fmt.Sprintf("header line %d %q %s; kept as body text, the header fields after it as fields", lineNo, clip(line, 60), why)})
			continue
		}
		rep.body = rest
		n := bytes.Count(rest, []byte("\n"))
		if len(rest) > 0 && rest[len(rest)-1] != '\n' {
			n++
		}
		issues = append(issues, Issue{SeverityWarning, "header-no-colon",
			fmt.Sprintf("header line %d %q %s: the header ends there; it and the %d line(s) after it up to the blank line were kept as the start of the body", lineNo, clip(line, 60), why, n-1)})
		break
	}
	if len(fields) == 0 {
		reason := "no header block: the message has no \"Name: value\" header line"
		if lineNo > 0 {
			n := lineNo - 1 + bytes.Count(rep.body, []byte("\n"))
			if len(rep.body) == 0 || rep.body[len(rep.body)-1] != '\n' {
				n++
			}
			reason = fmt.Sprintf("no header block: none of the %d lines before the first blank line is a \"Name: value\" header", n)
		}
		return nil, []Issue{{SeverityError, "no-header", reason}}, headerRepair{}
	}
	return fields, issues, rep
}

// fieldThatMattersIn reports whether the rest of a header block holds a
// field that decides what is posted or how it is threaded, or any field
// with a hyphenated name (X-Mailer, Reply-To, ...): text lines of a body
// that lost its blank line ("Note: ...", "http://...") rarely look so.
func fieldThatMattersIn(block []byte) bool {
	for len(block) > 0 {
		line := block
		if i := bytes.IndexByte(block, '\n'); i >= 0 {
			line, block = block[:i], block[i+1:]
		} else {
			block = nil
		}
		i := bytes.IndexByte(line, ':')
		if i < 0 {
			continue
		}
		k := bytes.TrimRight(line[:i], " \t")
		if !validKey(k) {
			continue
		}
		if bytes.IndexByte(k, '-') >= 0 {
			return true
		}
		switch strings.ToLower(string(k)) {
		case "from", "to", "cc", "bcc", "date", "subject", "received", "references", "sender":
			return true
		}
	}
	return false
}

func validKey(k []byte) bool {
	if len(k) == 0 {
		return false
	}
	for _, c := range k {
		if c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}

func clip(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
		// do not cut a UTF-8 sequence in the middle
		for len(b) > 0 && !utf8.Valid(b) && len(b) > n-4 {
			b = b[:len(b)-1]
		}
		return string(b) + "..."
	}
	return string(b)
}

// unfold joins folded lines the way go-message does: each line trimmed,
// joined with one space.
func unfold(v []byte) string {
	if bytes.IndexByte(v, '\n') < 0 {
		return string(bytes.Trim(v, " \t\r"))
	}
	var b strings.Builder
	for _, l := range bytes.Split(v, []byte("\n")) {
		l = bytes.Trim(l, " \t\r")
		if len(l) == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.Write(l)
	}
	return b.String()
}

// fieldText returns the unfolded value with raw 8-bit bytes made UTF-8
// (kept when valid UTF-8, else read as windows-1252); repaired reports the
// windows-1252 case.
func fieldText(v []byte) (s string, repaired bool) {
	s = unfold(v)
	if isASCII(s) || utf8.ValidString(s) {
		return s, false
	}
	return fixUTF8([]byte(s)), true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// fillEnvelope derives the envelope's ids, subject and date from the
// header fields, and records issues.
func fillEnvelope(env *Envelope, fields []rawField, issues []Issue, fromLine []byte, opts Options) {
	if env.Size > opts.MaxMessageBytes {
		issues = append(issues, Issue{SeverityError, "too-large",
			fmt.Sprintf("message is %d bytes, over max_message_bytes %d", env.Size, opts.MaxMessageBytes)})
	}
	if fields == nil { // no-header already reported
		env.Issues = issues
		return
	}
	var eightBit []string
	get := func(key string) (string, bool) {
		for _, f := range fields {
			if f.Key == key {
				s, rep := fieldText(f.Value)
				if rep {
					eightBit = append(eightBit, key)
				}
				return s, true
			}
		}
		return "", false
	}

	mid, _ := get("Message-Id")
	env.MessageID = normalizeID(mid)
	markCorrection(env, get) // a failures file's copy (failures.go)
	if env.MessageID == "" {
		issues = append(issues, Issue{SeverityWarning, "no-message-id",
			"no Message-ID header: the message key is the content hash " + env.ContentKey})
	}

	refs, _ := get("References")
	irt, _ := get("In-Reply-To")
	env.References = references(refs, irt, env.MessageID)

	if subj, ok := get("Subject"); ok {
		dec, unknown := decodeWords(subj)
		env.Subject = dec
		for _, cs := range unknown {
			issues = append(issues, Issue{SeverityWarning, "charset",
				fmt.Sprintf("unknown charset %s in Subject header; valid UTF-8 kept, other bytes read as windows-1252", cs)})
		}
	}

	// Date: the Date header, then the last Received header, then the From line.
	var date time.Time
	var why []string
	dateHdr, hasDate := get("Date")
	var weakDate time.Time // a Date whose zone is unknown: the last resort
	var weakNote string
	if hasDate {
		t, note, weak, err := parseDateNote(dateHdr)
		switch {
		case err != nil:
			why = append(why, fmt.Sprintf("Date header %q does not parse", clip([]byte(dateHdr), 80)))
		case t.Unix() == 0:
			why = append(why, "Date header is the Unix epoch")
		case weak:
			why = append(why, fmt.Sprintf("Date header %q has an unknown zone", clip([]byte(dateHdr), 80)))
			weakDate, weakNote = t, note
		default:
			date = t
			if note != "" {
				issues = append(issues, Issue{SeverityWarning, "date-repaired",
					fmt.Sprintf("Date header %q is malformed (%s); read as %s", clip([]byte(dateHdr), 80), note, t.Format(time.RFC3339))})
			}
		}
	} else {
		why = append(why, "no Date header")
	}
	if date.IsZero() {
		var last []byte
		for _, f := range fields {
			if f.Key == "Received" {
				last = f.Value
			}
		}
		if last != nil {
			recv, _ := fieldText(last)
			i := strings.LastIndexByte(recv, ';')
			t, err := parseDate(recv[i+1:])
			switch {
			case i < 0:
				why = append(why, "the last Received header has no date")
			case err != nil:
				why = append(why, fmt.Sprintf("the last Received header's date %q does not parse", clip([]byte(strings.TrimSpace(recv[i+1:])), 80)))
			case t.Unix() == 0:
				why = append(why, "the last Received header's date is the Unix epoch")
			default:
				date = t
				issues = append(issues, Issue{SeverityWarning, "date-fallback",
					strings.Join(why, "; ") + ": used the last Received header's date " + t.Format(time.RFC3339)})
			}
		} else {
			why = append(why, "no Received header")
		}
	}
	if date.IsZero() {
		if len(fromLine) > 0 {
			t, ok := fromLineDate(fromLine)
			switch {
			case !ok:
				why = append(why, fmt.Sprintf("the From line %q has no date", clip(fromLine, 80)))
			case t.Unix() == 0:
				why = append(why, "the From line's date is the Unix epoch")
			default:
				date = t
				issues = append(issues, Issue{SeverityWarning, "date-fallback",
					strings.Join(why, "; ") + ": used the From line's date " + t.Format(time.RFC3339) + " (UTC)"})
			}
		} else {
			why = append(why, "no From line")
		}
	}
	if date.IsZero() && !weakDate.IsZero() {
		date = weakDate
		issues = append(issues, Issue{SeverityWarning, "date-repaired",
			fmt.Sprintf("%s: Date header %q is malformed (%s); read as %s", strings.Join(why[1:], "; "), clip([]byte(dateHdr), 80), weakNote, date.Format(time.RFC3339))})
	}
	if date.IsZero() {
		issues = append(issues, Issue{SeverityError, "no-date", "no usable date: " + strings.Join(why, "; ")})
	} else {
		now := opts.Now()
		if date.Before(time.Unix(0, 0)) {
			issues = append(issues, Issue{SeverityError, "date-out-of-range",
				fmt.Sprintf("date %s is before 1970", date.Format(time.RFC3339))})
		} else if date.After(now.Add(24 * time.Hour)) {
			issues = append(issues, Issue{SeverityError, "date-out-of-range",
				fmt.Sprintf("date %s is more than a day after now (%s)", date.Format(time.RFC3339), now.UTC().Format(time.RFC3339))})
		}
		env.Date = date
	}

	// 8-bit bytes in any field (not only the ones read above).
	seen := map[string]bool{}
	for _, k := range eightBit {
		seen[k] = true
	}
	for _, f := range fields {
		if !seen[f.Key] && !isASCII(string(f.Value)) && !utf8.Valid(f.Value) {
			seen[f.Key] = true
			eightBit = append(eightBit, f.Key)
		}
	}
	if len(eightBit) > 0 {
		issues = append(issues, Issue{SeverityWarning, "8bit-header",
			fmt.Sprintf("raw 8-bit bytes that are not UTF-8 in the %s header(s), read as windows-1252", strings.Join(dedupe(eightBit), ", "))})
	}
	env.Issues = issues
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

// extra layouts tried after net/mail.ParseDate, on a cleaned-up value.
var dateLayouts = []string{
	"Mon, 2 Jan 2006 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04 -0700",
	"2 Jan 2006 15:04:05 -0700",
	"2 Jan 2006 15:04 -0700",
	"Mon, 2 Jan 2006 15:04:05",
	"2 Jan 2006 15:04:05",
	"Mon, 2 Jan 06 15:04:05 -0700",
	"2 Jan 06 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04:05 -0700 -0700",
	"Mon, Jan 2 2006 15:04:05 -0700",
	"Mon, Jan 2, 2006 15:04:05 -0700",
	"Mon Jan 2 15:04:05 2006",
	"Mon Jan 2 15:04:05 -0700 2006",
	"Mon Jan 2 15:04:05 2006 -0700",
	"2006-01-02 15:04:05 -0700",
	"2006-01-02 15:04:05",
	"2006-01-02T15:04:05Z07:00",
	"Monday, January 2, 2006 3:04 PM",
	"Monday, January 2, 2006 15:04:05 -0700",
	"2 January 2006 15:04:05 -0700",
	"Mon, 2 Jan 2006 3:04:05 PM -0700",
	"01/02/2006 15:04:05",
	"Mon, 02-Jan-2006 15:04:05 -0700",
	"2-Jan-2006 15:04:05 -0700",
}

// zoneNames maps the zone names RFC 822 knows and a few common ones to
// numeric offsets (time.Parse gives unknown abbreviations offset 0).
var zoneNames = map[string]string{
	"UT": "+0000", "UTC": "+0000", "GMT": "+0000", "Z": "+0000", "WET": "+0000",
	"EST": "-0500", "EDT": "-0400", "CST": "-0600", "CDT": "-0500",
	"MST": "-0700", "MDT": "-0600", "PST": "-0800", "PDT": "-0700",
	"AST": "-0400", "ADT": "-0300", "HST": "-1000", "AKST": "-0900", "AKDT": "-0800",
	"BST": "+0100", "IST": "+0530", "CET": "+0100", "CEST": "+0200", "MET": "+0100",
	"MEST": "+0200", "MEZ": "+0100", "MESZ": "+0200", "EET": "+0200", "EEST": "+0300",
	"WEST": "+0100", "JST": "+0900", "KST": "+0900", "HKT": "+0800", "SGT": "+0800",
	"AEST": "+1000", "AEDT": "+1100", "ACST": "+0930", "AWST": "+0800", "NZST": "+1200", "NZDT": "+1300",
	"MSK": "+0300",
}

// parseDate parses an RFC 5322 date leniently: net/mail first, then the
// value with comments removed, zone names made numeric, and extra layouts.
func parseDate(v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, fmt.Errorf("empty date")
	}
	// The canonical form first: it is what nearly every archive holds, and
	// net/mail reaches it only after 24 failed layouts (a third of the
	// scan's CPU on small messages). When it parses, cleanDate would not
	// have changed v and net/mail would have used this very layout.
	if t, err := time.Parse(canonicalDate, v); err == nil {
		return t, nil
	}
	t, _, weak, err := parseDateNote(v)
	if weak {
		return time.Time{}, fmt.Errorf("unknown zone in date %q", v)
	}
	return t, err
}

const canonicalDate = "Mon, 2 Jan 2006 15:04:05 -0700"

// parseDateLenient is parseDate without the canonical fast path.
func parseDateLenient(v string) (time.Time, error) {
	// Zone names first (net/mail gives "EST" offset 0), comments out.
	c := cleanDate(v)
	if t, err := mail.ParseDate(c); err == nil {
		return t, nil
	}
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, c); err == nil {
			return t, nil
		}
	}
	if t, err := mail.ParseDate(v); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("unrecognized date %q", v)
}

// cleanDate removes comments, stray punctuation and replaces zone names by
// numeric offsets.
func cleanDate(v string) string {
	var b strings.Builder
	depth := 0
	for _, r := range v {
		switch {
		case r == '(':
			depth++
		case r == ')':
			if depth > 0 {
				depth--
			}
		case depth > 0:
		default:
			b.WriteRune(r)
		}
	}
	f := strings.Fields(b.String())
	hasNum := false
	for _, w := range f {
		if (strings.HasPrefix(w, "+") || strings.HasPrefix(w, "-")) && len(w) == 5 {
			hasNum = true
		}
	}
	out := f[:0]
	for _, w := range f {
		w = strings.TrimSuffix(w, ".")
		u := strings.ToUpper(w)
		if off, ok := zoneNames[u]; ok {
			if hasNum {
				continue
			}
			w = off
			hasNum = true
		} else if strings.HasPrefix(u, "GMT") || strings.HasPrefix(u, "UTC") {
			rest := u[3:]
			if len(rest) == 5 && (rest[0] == '+' || rest[0] == '-') {
				w = rest
			}
		} else if len(w) == 5 && (w[0] == '+' || w[0] == '-') && !strings.Contains(w[1:], ":") {
			// numeric zone, fine
		} else if len(w) == 6 && (w[0] == '+' || w[0] == '-') && w[3] == ':' {
			w = w[:3] + w[4:]
		}
		// "Mon," "Monday," and "Mon" stay; a lone trailing comma after a date part goes.
		if len(w) > 1 && strings.HasSuffix(w, ",") && !isWeekday(strings.TrimSuffix(w, ",")) {
			w = strings.TrimSuffix(w, ",")
		}
		out = append(out, w)
	}
	return strings.Join(out, " ")
}

func isWeekday(s string) bool {
	if len(s) < 3 {
		return false
	}
	switch strings.ToLower(s[:3]) {
	case "mon", "tue", "wed", "thu", "fri", "sat", "sun":
		return true
	}
	return false
}

// fromLineDate reads the asctime date of a "From " line ("From sender Mon
// Sep 17 00:00:00 2001", "From sender Wed Feb  9 22:02 MET 2000"). The
// date has no zone: it is UTC (contract §10); a zone name or offset on the
// line is ignored.
func fromLineDate(line []byte) (time.Time, bool) {
	f := strings.Fields(string(line))
	// find the weekday followed by a month name
	for i := 1; i+1 < len(f); i++ {
		if !isWeekday(f[i]) || !isMonth(f[i+1]) {
			continue
		}
		var parts []string
		for _, w := range f[i:] {
			if w == "" || w[0] == '+' || w[0] == '-' || isAlphaZone(w) && len(parts) >= 3 {
				continue // zone
			}
			parts = append(parts, w)
		}
		if len(parts) < 5 {
			return time.Time{}, false
		}
		s := strings.Join(parts[:5], " ")
		for _, l := range []string{"Mon Jan 2 15:04:05 2006", "Mon Jan 2 15:04 2006"} {
			if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
				return t, true
			}
		}
		return time.Time{}, false
	}
	return time.Time{}, false
}

func isMonth(s string) bool {
	if len(s) < 3 {
		return false
	}
	switch strings.ToLower(s[:3]) {
	case "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec":
		return true
	}
	return false
}

func isAlphaZone(s string) bool {
	for _, c := range s {
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}

// parseDateNote is parseDate saying, in note, what it had to read
// leniently where the meaning is still clear: a zone of one to three
// digits (-600 = -0600, -6 = -0600), an unknown zone name (read as UTC),
// a two-digit year (95 = 1995, 05 = 2005, as Python reads them). note is
// "" for a date written as RFC 5322 asks. weak says the zone was not
// known: the time may be off by hours, and a date from elsewhere (a
// Received header, the From line) is better when there is one.
func parseDateNote(v string) (t time.Time, note string, weak bool, err error) {
	v = strings.TrimSpace(v)
	if t, err := time.Parse(canonicalDate, v); err == nil {
		return t, "", false, nil
	}
	if t, err := parseDateLenient(v); err == nil {
		// It parses; say so when its year has two digits.
		if lt, note, weak, ok := parseDateLoose(v); ok && !weak && lt.Equal(t) {
			return t, note, false, nil
		}
		return t, "", false, nil
	}
	if t, note, weak, ok := parseDateLoose(v); ok {
		return t, note, weak, nil
	}
	return time.Time{}, "", false, fmt.Errorf("unrecognized date %q", v)
}

// parseDateLoose reads a date the way Python's email.utils.parsedate_tz
// does (the referee of real archives): "[weekday,] day month year time
// [zone]" with day and month in either order, year and time swapped, a
// dot for a colon, two-digit years, numeric zones of any length. It also
// reads 12-hour clocks ("06:09:22 PM"), which Python misreads as a zone.
func parseDateLoose(v string) (t time.Time, note string, weak, ok bool) {
	// Comments out first: "(PDT)".
	var b strings.Builder
	depth := 0
	for _, r := range v {
		switch {
		case r == '(':
			depth++
		case r == ')':
			if depth > 0 {
				depth--
			}
		case depth > 0:
		default:
			b.WriteRune(r)
		}
	}
	data := strings.Fields(b.String())
	if len(data) == 0 {
		return time.Time{}, "", false, false
	}
	if strings.HasSuffix(data[0], ",") || isWeekdayName(data[0]) {
		data = data[1:]
	} else if i := strings.LastIndexByte(data[0], ','); i >= 0 {
		data[0] = data[0][i+1:]
	}
	if len(data) == 3 { // RFC 850: dd-mon-yy
		if stuff := strings.Split(data[0], "-"); len(stuff) == 3 {
			data = append(stuff, data[1:]...)
		}
	}
	// A 12-hour clock: the AM/PM word after the time.
	pm, am := false, false
	for i := 1; i < len(data); i++ {
		switch strings.ToUpper(strings.TrimSuffix(data[i], ",")) {
		case "PM", "P.M.":
			pm = strings.Contains(data[i-1], ":")
		case "AM", "A.M.":
			am = strings.Contains(data[i-1], ":")
		default:
			continue
		}
		if pm || am {
			data = append(data[:i:i], data[i+1:]...)
			break
		}
	}
	if len(data) == 4 {
		s := data[3]
		i := strings.IndexByte(s, '+')
		if i < 0 {
			i = strings.IndexByte(s, '-')
		}
		if i > 0 {
			data = append(data[:3:3], s[:i], s[i:])
		} else {
			data = append(data, "")
		}
	}
	if len(data) < 5 {
		return time.Time{}, "", false, false
	}
	dd, mm, yy, tm, tz := data[0], strings.ToLower(data[1]), data[2], data[3], data[4]
	if dd == "" || mm == "" || yy == "" {
		return time.Time{}, "", false, false
	}
	month := monthNumber(mm)
	if month == 0 {
		dd, mm = mm, strings.ToLower(dd)
		if month = monthNumber(mm); month == 0 {
			return time.Time{}, "", false, false
		}
	}
	dd = strings.TrimSuffix(dd, ",")
	if i := strings.IndexByte(yy, ':'); i > 0 {
		yy, tm = tm, yy
	}
	yy = strings.TrimSuffix(yy, ",")
	if yy == "" || yy[0] < '0' || yy[0] > '9' {
		yy, tz = tz, yy
	}
	tm = strings.TrimSuffix(tm, ",")
	parts := strings.Split(tm, ":")
	if len(parts) == 1 && strings.Contains(tm, ".") {
		parts = strings.Split(tm, ".")
	}
	if len(parts) == 2 {
		parts = append(parts, "0")
	}
	if len(parts) != 3 {
		return time.Time{}, "", false, false
	}
	nums := make([]int, 0, 5)
	for _, s := range append([]string{yy, dd}, parts...) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return time.Time{}, "", false, false
		}
		nums = append(nums, n)
	}
	year, day, hh, mi, ss := nums[0], nums[1], nums[2], nums[3], nums[4]
	var notes []string
	if year < 100 {
		y := year + 2000
		if year > 68 {
			y = year + 1900
		}
		notes = append(notes, fmt.Sprintf("two-digit year %s read as %d", yy, y))
		year = y
	}
	switch {
	case pm && hh >= 1 && hh <= 11:
		hh += 12
	case am && hh == 12:
		hh = 0
	case (pm || am) && (hh == 0 || hh > 12):
		return time.Time{}, "", false, false
	}
	if ss == 60 {
		ss = 59 // a leap second
	}
	offset := 0
	utz := strings.ToUpper(tz)
	if off, ok := zoneNames[utz]; ok {
		offset = zoneSeconds(off)
	} else if len(tz) > 1 && (tz[0] == '+' || tz[0] == '-') && isDigits(tz[1:]) && len(tz) <= 5 {
		n, _ := strconv.Atoi(tz[1:])
		digits := len(tz) - 1
		switch {
		case digits <= 2: // hours
			offset = n * 3600
		default: // hhmm, the hours' leading zero missing when 3 digits
			offset = n/100*3600 + n%100*60
		}
		if tz[0] == '-' {
			offset = -offset
		}
		if digits != 4 {
			notes = append(notes, fmt.Sprintf("zone %s read as %s", tz, formatOffset(offset)))
		}
	} else if tz != "" {
		notes = append(notes, fmt.Sprintf("unknown zone %q read as UTC", clip([]byte(tz), 20)))
		weak = true
	}
	if month < 1 || day < 1 || day > 31 || hh > 23 || mi > 59 || ss > 59 || offset <= -24*3600 || offset >= 24*3600 {
		return time.Time{}, "", false, false
	}
	t = time.Date(year, time.Month(month), day, hh, mi, ss, 0, time.FixedZone("", offset))
	if t.Day() != day { // 31 April
		return time.Time{}, "", false, false
	}
	return t, strings.Join(notes, ", "), weak, true
}

func isWeekdayName(s string) bool {
	switch strings.ToLower(s) {
	case "mon", "tue", "wed", "thu", "fri", "sat", "sun":
		return true
	}
	return false
}

func monthNumber(s string) int {
	for i, m := range []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
		"january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"} {
		if s == m {
			return i%12 + 1
		}
	}
	return 0
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// zoneSeconds turns "+0530" into seconds east of UTC.
func zoneSeconds(z string) int {
	n, _ := strconv.Atoi(z[1:])
	s := n/100*3600 + n%100*60
	if z[0] == '-' {
		return -s
	}
	return s
}

func formatOffset(sec int) string {
	sign := '+'
	if sec < 0 {
		sign, sec = '-', -sec
	}
	return fmt.Sprintf("%c%02d%02d", sign, sec/3600, sec%3600/60)
}
