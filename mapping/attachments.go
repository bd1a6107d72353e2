package mapping

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/threadlift/threadlift/sources"
)

// Attachment names (contract §9, issue 11).
//
// A name is uploaded without the characters that have no business in a
// file name and that the API refuses or that disguise it: control
// characters (C0, DEL, C1: a NUL made the upload fail with 400 and the
// whole thread with it) and invisible format characters, among them the
// bidi overrides that show "invoice\u202efdp.exe" as "invoiceexe.pdf".
// Invalid UTF-8 becomes U+FFFD. A name left empty becomes
// "attachment-N.ext". Each repair is a warning on its message.
//
// The allow and deny lists match the extension of the name as Windows
// would open it: the cleaned name in NFKC (full-width "ｅｘｅ" is "exe"),
// without trailing dots and spaces (Windows drops them: "evil.exe." opens
// as evil.exe), in lower case.

// cleanAttachmentNames returns the attachments with clean names (a copy
// when any changed: the message's own list must keep the names its
// reader matches parts by) and a warning per repaired name.
func cleanAttachmentNames(atts []sources.Attachment) ([]sources.Attachment, []sources.Issue) {
	var out []sources.Attachment
	var issues []sources.Issue
	for i, a := range atts {
		name, removed := cleanName(a.Name)
		if removed == 0 && name == a.Name {
			continue
		}
		if name == "" {
			name = fallbackName(i+1, a.ContentType)
		}
		if out == nil {
			out = slices.Clone(atts)
		}
		out[i].Name = name
		issues = append(issues, sources.Issue{Severity: sources.SeverityWarning, Rule: RuleAttachmentNameRepaired,
			Reason: fmt.Sprintf("attachment name %s: removed %d control or invisible character(s); uploaded as %q", quoteName(a.Name), removed, name)})
	}
	if out == nil {
		return atts, nil
	}
	return out, issues
}

// cleanName removes control and invisible format characters from a file
// name and makes it valid UTF-8; removed counts what was dropped.
func cleanName(name string) (clean string, removed int) {
	if !utf8.ValidString(name) {
		name = strings.ToValidUTF8(name, "\uFFFD")
		removed++
	}
	clean = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || isInvisible(r) {
			removed++
			return -1
		}
		return r
	}, name)
	return clean, removed
}

// isInvisible reports characters outside Cf that render as nothing and
// can pad a name: Hangul fillers and the braille blank.
func isInvisible(r rune) bool {
	switch r {
	case '\u115F', '\u1160', '\u3164', '\uFFA0', '\u2800':
		return true
	}
	return false
}

// fallbackName names an attachment whose name was nothing but removed
// characters, as sources names one without a name.
func fallbackName(n int, contentType string) string {
	ext := ".bin"
	switch {
	case contentType == "message/rfc822":
		ext = ".eml"
	case strings.HasPrefix(contentType, "text/"):
		ext = ".txt"
	}
	return "attachment-" + strconv.Itoa(n) + ext
}

// quoteName quotes a name for a reason: every character that is not
// printable is escaped, so that no report or terminal shows it raw.
func quoteName(s string) string {
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	}
	return strconv.QuoteToASCII(s)
}

// extension is the lower-case extension a name has for the allow and
// deny lists (see the top of this file), without the dot.
func extension(name string) string {
	n, _ := cleanName(name)
	n = strings.TrimRight(norm.NFKC.String(n), ". ")
	return strings.ToLower(strings.TrimPrefix(filepath.Ext(n), "."))
}

// normExtensions normalizes a configured list as names are.
func normExtensions(list []string) []string {
	out := make([]string, 0, len(list))
	for _, e := range list {
		e = strings.TrimPrefix(strings.TrimSpace(e), ".")
		out = append(out, strings.ToLower(norm.NFKC.String(e)))
	}
	return out
}

// refused says why an attachment may not be uploaded, or "".
func (ap AttachmentPolicy) refused(a sources.Attachment) string {
	ext := extension(a.Name)
	switch {
	case ap.MaxBytes > 0 && a.Size > ap.MaxBytes:
		return fmt.Sprintf("%d bytes, over the %d-byte limit", a.Size, ap.MaxBytes)
	case slices.Contains(normExtensions(ap.Deny), ext):
		return fmt.Sprintf("extension .%s is denied", ext)
	case len(ap.Allow) > 0 && !slices.Contains(normExtensions(ap.Allow), ext):
		return fmt.Sprintf("extension %q is not in allow_extensions", ext)
	}
	return ""
}
