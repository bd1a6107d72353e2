package mime

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/internal/charset"
)

// Attachments.
//
// Which MIME parts are attachments (decided in decode.go, entity and
// finish):
//   - every part with Content-Disposition: attachment, and every non-text
//     part (message/rfc822 included) that is not inline;
//   - an inline part (Content-Disposition: inline) of a multipart/related
//     only when a text/html part of the message references its Content-ID
//     with a "cid:" URL. Unreferenced inline parts of a multipart/related
//     in a message with HTML stay out: RFC 2387 shows them only through
//     the root's references (a client never displays them);
//   - other inline parts are kept (Inline = true): in a multipart/mixed a
//     client shows them in sequence with the text (Apple Mail's pictures
//     between text parts), and in a message with no text/html part nothing
//     could reference them. Dropping them would lose what the reader saw;
//   - any part referenced by "cid:" gets Inline = true and its ContentID,
//     whatever its disposition;
//   - a part cut by the end of a truncated file is left out (a "truncated"
//     warning says so); one that only lacks its closing boundary in the
//     middle of an archive is kept.
//
// Names come from Content-Disposition's filename, else Content-Type's
// name, RFC 2231 (any charset, continuations) and RFC 2047 encodings
// decoded; a part without a name gets "attachment-N.ext" (N its position
// in Message.Attachments). Size is the decoded size, counted by streaming
// the part (a base64 part is counted from its characters, as decoding
// them would, without decoding them); content is never held.
//
// OpenAttachment (mbox) finds the part again by Attachment.Part: it reads
// the record back (ReaderAt), checks its header block still hashes to
// Envelope.ContentKey, walks the MIME tree with Load's decoder up to that
// part and returns a reader over its transfer-decoded bytes, streamed from
// the file. The reader returns exactly Attachment.Size bytes, or
// ErrAttachmentChanged.

// partFinder is the decoder's OpenAttachment mode: the walk stops at the
// part whose locator is part.
type partFinder struct {
	part     string
	want     sources.Attachment
	stop     bool
	found    io.Reader // the part's transfer-decoded content, unread
	mismatch string    // why the part found is not the attachment
}

func (f *partFinder) match(h partHeader, ct, filename string, dec io.Reader) {
	f.stop = true
	switch {
	case ct != f.want.ContentType:
		f.mismatch = fmt.Sprintf("part %s is %s now, was %s", f.part, ct, f.want.ContentType)
	case contentID(h) != f.want.ContentID:
		f.mismatch = fmt.Sprintf("part %s has Content-ID %q now, had %q", f.part, contentID(h), f.want.ContentID)
	case filename != "" && filename != f.want.Name:
		f.mismatch = fmt.Sprintf("part %s is named %q now", f.part, filename)
	default:
		f.found = dec
	}
}

// partLocator formats a part path as an IMAP section number.
func partLocator(path []int) string {
	if len(path) == 0 {
		return "1"
	}
	s := make([]string, len(path))
	for i, p := range path {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ".")
}

func contentID(h partHeader) string {
	return strings.Trim(strings.TrimSpace(h.Get("Content-Id")), "<>")
}

// inlineParts applies the inline rules (see the top of this file) to the
// attachments the walk found and names the unnamed ones.
func (d *decoder) inlineParts() {
	m := d.msg
	kept := m.Attachments[:0]
	var unnamed []bool
	for i, a := range m.Attachments {
		ref := a.ContentID != "" && d.cids[strings.ToLower(a.ContentID)]
		if a.Inline && !ref && d.hasHTML && d.related[i] {
			continue // inline in a multipart/related, and the HTML does not show it
		}
		if ref {
			a.Inline = true
		}
		kept = append(kept, a)
		unnamed = append(unnamed, d.unnamed[i])
	}
	for i := range kept {
		if unnamed[i] {
			kept[i].Name = defaultName(i+1, kept[i].ContentType)
		}
	}
	if len(kept) == 0 {
		kept = nil
	}
	m.Attachments = kept
}

func defaultName(n int, ct string) string {
	ext := ".bin"
	switch {
	case ct == "message/rfc822":
		ext = ".eml"
	case strings.HasPrefix(ct, "text/"):
		ext = ".txt"
	}
	return "attachment-" + strconv.Itoa(n) + ext
}

// cidRefs adds to refs the lower-cased ids of the "cid:" URLs in html
// (RFC 2392: URL-escaped; in attributes or CSS url()).
func cidRefs(html string, refs map[string]bool) {
	for i := 0; i+4 <= len(html); i++ {
		if html[i]|0x20 != 'c' || html[i+1]|0x20 != 'i' || html[i+2]|0x20 != 'd' || html[i+3] != ':' {
			continue
		}
		start := i + 4
		end := start
		for end < len(html) && !strings.ContainsRune("\"'<> \t\r\n)", rune(html[end])) {
			end++
		}
		if ref := strings.Trim(percentDecode(html[start:end]), "<>"); ref != "" {
			refs[strings.ToLower(ref)] = true
		}
		i = end - 1
	}
}

// percentDecode decodes %XX escapes; a '%' without two hex digits is kept.
func percentDecode(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			h, ok1 := unhex(s[i+1])
			l, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				b = append(b, h<<4|l)
				i += 2
				continue
			}
		}
		b = append(b, s[i])
	}
	return string(b)
}

// rfc2231Param decodes parameter key of a Content-Type or
// Content-Disposition value written with RFC 2231 (key*=charset'lang'value,
// key*0*=..., key*1=...) in any charset charset.Decode knows:
// mime.ParseMediaType only decodes UTF-8 and US-ASCII ones. It returns ""
// when there is no such parameter.
func rfc2231Param(v, key string) string {
	if !strings.Contains(v, "*") {
		return ""
	}
	type seg struct {
		val string
		enc bool
	}
	segs := map[int]seg{}
	prefix := key + "*"
	for i, p := range splitParams(v) {
		k, val, ok := strings.Cut(p, "=")
		if i == 0 || !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		val = strings.TrimSpace(val)
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			val = strings.ReplaceAll(val[1:len(val)-1], `\"`, `"`)
		}
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		if rest == "" { // key*=charset'lang'value
			segs[0] = seg{val, true}
			continue
		}
		enc := strings.HasSuffix(rest, "*")
		n, err := strconv.Atoi(strings.TrimSuffix(rest, "*"))
		if err != nil || n < 0 || n > 999 {
			continue
		}
		segs[n] = seg{val, enc}
	}
	var b strings.Builder
	label := ""
	for n := 0; ; n++ {
		sg, ok := segs[n]
		if !ok {
			break
		}
		val := sg.val
		if sg.enc {
			if n == 0 {
				if parts := strings.SplitN(val, "'", 3); len(parts) == 3 {
					label, val = parts[0], parts[2]
				}
			}
			val = percentDecode(val)
		}
		b.WriteString(val)
	}
	if b.Len() == 0 {
		return ""
	}
	s, _ := charset.Decode(label, []byte(b.String()))
	return s
}

// splitParams splits a header value on ';' outside double quotes.
func splitParams(v string) []string {
	var out []string
	quote := false
	start := 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case quote && c == '\\':
			i++
		case c == '"':
			quote = !quote
		case c == ';' && !quote:
			out = append(out, v[start:i])
			start = i + 1
		}
	}
	return append(out, v[start:])
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
