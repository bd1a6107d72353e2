package header

import (
	"bufio"
	"bytes"
	"fmt"
	"hash"
	"io"
	"net/textproto"
	"strings"
	"unicode/utf8"

	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/internal/charset"
)

// Block is what ReadBlock found.
type Block struct {
	Lines     []byte // header lines, LF line ends, without the ending blank line; capped
	Truncated bool   // lines were left out of Lines because of the cap
	N         int64  // bytes consumed, the ending blank line included
	AtEOF     bool   // the block ended at end of input instead of a blank line
	// Lost names the fields left out of Lines because of the cap, in
	// order, each once (at most maxLostNames).
	Lost []string
}

const maxLostNames = 24

// addLost records that a field named name was left out of the block.
func (hb *Block) addLost(name string) {
	if name == "" || len(hb.Lost) >= maxLostNames {
		return
	}
	for _, n := range hb.Lost {
		if n == name {
			return
		}
	}
	hb.Lost = append(hb.Lost, name)
}

// lineFieldName is the canonical name of the field a header line starts,
// or "" for a continuation or a line that is not a field.
func lineFieldName(line []byte) string {
	if !IsField(line) {
		return ""
	}
	i := bytes.IndexByte(line, ':')
	return textproto.CanonicalMIMEHeaderKey(string(line[:i]))
}

// TooLargeReason says what a header block over the cap lost: the fields
// left out, and what losing them does (issue 12, item 17).
func TooLargeReason(lost []string) string {
	r := fmt.Sprintf("header block is over %d bytes; the fields after that were skipped", MaxBytes)
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

// ReadBlock consumes header lines up to and including the blank line
// that ends them (or end of input). Every header line is written to h (when
// not nil) with CRLF turned into LF: that is the content key of contract §4.
// At most max bytes are kept in block.
func ReadBlock(br *bufio.Reader, h hash.Hash, max int) (Block, error) {
	var hb Block
	for {
		first := true
		pendingCR := false
		lineLen := 0
		lineStart := len(hb.Lines)
		keep := !hb.Truncated
		name := "" // of a line that may be left out
		for {
			chunk, err := br.ReadSlice('\n')
			hb.N += int64(len(chunk))
			lineLen += len(chunk)
			full := err != bufio.ErrBufferFull
			if first && (hb.Truncated || len(hb.Lines)+len(chunk) > max || !full) {
				name = lineFieldName(chunk)
			}
			if first && full && IsBlankLine(chunk) {
				if len(chunk) == 0 && err == io.EOF {
					hb.AtEOF = true
					return hb, nil
				}
				if err == io.EOF { // a lone "\r" at end of file
					hb.AtEOF = true
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
				if hb.Truncated && keep {
					// this line did not fit: leave it out whole
					hb.Lines = hb.Lines[:lineStart]
				}
				if hb.Truncated {
					hb.addLost(name)
				}
				if err == io.EOF {
					if len(hb.Lines) > 0 && hb.Lines[len(hb.Lines)-1] != '\n' && !hb.Truncated {
						hb.Lines = append(hb.Lines, '\n')
					}
					hb.AtEOF = true
					return hb, nil
				}
				break
			}
		}
	}
}

// write adds b to the hash and, while there is room, to the kept block.
func write(h hash.Hash, hb *Block, keep bool, max int, b []byte) {
	if h != nil {
		h.Write(b)
	}
	if !keep || hb.Truncated {
		return
	}
	if len(hb.Lines)+len(b) > max {
		hb.Truncated = true
		return
	}
	hb.Lines = append(hb.Lines, b...)
}

// RawField is one header field as written: Value keeps folding ("\n" +
// white space) and raw bytes.
type RawField struct {
	Key   string // canonical
	Value []byte
}

// Parse splits a header block (LF line ends) into fields; see
// ParseRepair.
func Parse(block []byte) ([]RawField, []sources.Issue) {
	fields, issues, _ := ParseRepair(block)
	return fields, issues
}

// Repair says where the text of header lines that are not fields
// went (issue 12, item 9: no text is dropped).
type Repair struct {
	// body is the part of the block that is body text: the header ends at
	// a line that is not a field, as Python's email package reads it. The
	// body is this, the blank line, then the rest of the record.
	Body []byte
	// text holds lines that are not fields but were followed by fields
	// that matter (a line that lost its indentation, junk before the
	// sender): they are kept as the first lines of the body, and the
	// fields after them stay fields.
	Text []string
}

// ParseRepair splits a header block (LF line ends) into
// fields. A line that is neither a field nor a continuation ends the
// header there, the line and what follows it being body text, as Python
// reads it; but when a field that matters follows it in the block (the
// sender, the recipients, the date, the ids, the MIME structure, or any
// hyphenated name such as X-Mailer), reading those as body would lose
// the message, so the line is kept as body text and the fields after it
// stay fields. Either way a "header-no-colon" warning says what was done.
// When no line parses as a field it returns an error Issue "no-header"
// instead.
func ParseRepair(block []byte) ([]RawField, []sources.Issue, Repair) {
	var fields []RawField
	var rep Repair
	var issues []sources.Issue
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
			fields = append(fields, RawField{Key: key, Value: append([]byte(nil), line[i+1:]...)})
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
			rep.Text = append(rep.Text, string(line))
			issues = append(issues, sources.Issue{Severity: sources.SeverityWarning, Rule: "header-no-colon",
				Reason: fmt.Sprintf("header line %d %q %s; kept as body text, the header fields after it as fields", lineNo, Clip(line, 60), why)})
			continue
		}
		rep.Body = rest
		n := bytes.Count(rest, []byte("\n"))
		if len(rest) > 0 && rest[len(rest)-1] != '\n' {
			n++
		}
		issues = append(issues, sources.Issue{Severity: sources.SeverityWarning, Rule: "header-no-colon",
			Reason: fmt.Sprintf("header line %d %q %s: the header ends there; it and the %d line(s) after it up to the blank line were kept as the start of the body", lineNo, Clip(line, 60), why, n-1)})
		break
	}
	if len(fields) == 0 {
		reason := "no header block: the message has no \"Name: value\" header line"
		if lineNo > 0 {
			n := lineNo - 1 + bytes.Count(rep.Body, []byte("\n"))
			if len(rep.Body) == 0 || rep.Body[len(rep.Body)-1] != '\n' {
				n++
			}
			reason = fmt.Sprintf("no header block: none of the %d lines before the first blank line is a \"Name: value\" header", n)
		}
		return nil, []sources.Issue{{Severity: sources.SeverityError, Rule: "no-header", Reason: reason}}, Repair{}
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

func Clip(b []byte, n int) string {
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

// Unfold joins folded lines the way go-message does: each line trimmed,
// joined with one space.
func Unfold(v []byte) string {
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
	s = Unfold(v)
	if isASCII(s) || utf8.ValidString(s) {
		return s, false
	}
	return charset.FixUTF8([]byte(s)), true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// MaxBytes is how many bytes of a header block are kept per message: the
// fields after that are skipped (TooLargeReason), though ReadBlock still
// hashes them.
const MaxBytes = 256 << 10

// IsBlankLine reports whether a whole line (with its line end) is empty:
// "" or "\r" once the "\n" is removed.
func IsBlankLine(l []byte) bool {
	switch string(l) {
	case "\n", "\r\n", "\r", "":
		return true
	}
	return false
}

// MaxFieldNameBytes is how far IsField looks for the colon: a header
// field's name is found within this many bytes.
const MaxFieldNameBytes = 256

// IsField reports whether b starts with a header field: a name of
// printable ASCII other than ':' directly followed by ':'.
func IsField(b []byte) bool {
	for i, c := range b {
		if i >= MaxFieldNameBytes {
			return false
		}
		if c == ':' {
			return i > 0
		}
		if c < 33 || c > 126 {
			return false
		}
	}
	return false
}
