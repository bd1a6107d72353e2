package addr

import (
	"fmt"
	"net/mail"
	"strconv"
	"strings"

	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/internal/charset"
)

// ParseField parses a comma-separated address list as written in
// a csv cell or a json string. Invalid addresses are returned separately.
func ParseField(v string) (out []sources.Address, bad []string) {
	return ParseList(&mail.AddressParser{WordDecoder: charset.WordDecoder(new([]string))}, v)
}

// ParseList parses one address list with p: net/mail's list parser
// when the whole list is valid, else each comma-separated part leniently,
// so that one bad address does not lose the others.
func ParseList(p *mail.AddressParser, v string) (out []sources.Address, bad []string) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	if list, err := p.ParseList(v); err == nil {
		for _, a := range list {
			out = append(out, sources.Address{Name: quotedWords(p, a.Name), Email: a.Address})
		}
		return out, nil
	}
	for _, part := range splitAddressList(v) {
		if strings.TrimSpace(part) == "" {
			continue
		}
		if a, ok := Lenient(p, part); ok {
			a.Name = quotedWords(p, a.Name)
			out = append(out, a)
		} else {
			bad = append(bad, strings.TrimSpace(part))
		}
	}
	return out, bad
}

// FieldIssue reports invalid addresses dropped from field; nil when none.
func FieldIssue(field string, bad []string) *sources.Issue {
	if len(bad) == 0 {
		return nil
	}
	q := make([]string, len(bad))
	for i, b := range bad {
		q[i] = strconv.Quote(clip(b, 60))
	}
	return &sources.Issue{Severity: sources.SeverityWarning, Rule: "invalid-address", Reason: fmt.Sprintf("dropped invalid address(es) %s from %s", strings.Join(q, ", "), field)}
}

// SpaceSeparated reads s as two or more bare addresses separated by white
// space only, or returns nil.
func SpaceSeparated(s string) []sources.Address {
	words := strings.Fields(s)
	if len(words) < 2 {
		return nil
	}
	out := make([]sources.Address, 0, len(words))
	for _, w := range words {
		w = strings.Trim(w, `<>"'(),;`)
		if !validAddrSpec(w) {
			return nil
		}
		out = append(out, sources.Address{Email: w})
	}
	return out
}

// Lenient parses one address: net/mail, then "<addr>" with the
// text before it as name, then a bare word with an '@'.
func Lenient(p *mail.AddressParser, s string) (sources.Address, bool) {
	s = strings.TrimSpace(s)
	if a, err := p.Parse(s); err == nil {
		return sources.Address{Name: a.Name, Email: a.Address}, true
	}
	if i := strings.LastIndexByte(s, '<'); i >= 0 {
		if j := strings.IndexByte(s[i:], '>'); j > 0 {
			addr := strings.TrimSpace(s[i+1 : i+j])
			if validAddrSpec(addr) {
				name := strings.Trim(strings.TrimSpace(s[:i]), `"' `)
				name, _ = charset.DecodeWords(name)
				return sources.Address{Name: name, Email: addr}, true
			}
		}
	}
	// "user at example.com" (pipermail) and bare addresses with junk
	if t := strings.Replace(s, " at ", "@", 1); strings.Count(t, "@") == 1 {
		w := strings.Fields(t)
		for _, x := range w {
			x = strings.Trim(x, `<>"'(),;`)
			if validAddrSpec(x) {
				return sources.Address{Email: x}, true
			}
		}
	}
	return sources.Address{}, false
}

func validAddrSpec(s string) bool {
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || strings.ContainsAny(s, " \t<>,;\"()[]\\") {
		return false
	}
	_, err := mail.ParseAddress("<" + s + ">")
	return err == nil
}

// splitAddressList splits an address list on commas outside quotes,
// comments and angle brackets.
func splitAddressList(v string) []string {
	var out []string
	depth, angle := 0, false
	quote := false
	start := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case quote:
			if c == '\\' {
				i++
			} else if c == '"' {
				quote = false
			}
		case c == '"':
			quote = true
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case c == '<':
			angle = true
		case c == '>':
			angle = false
		case (c == ',' || c == ';') && depth == 0 && !angle:
			out = append(out, v[start:i])
			start = i + 1
		}
	}
	return append(out, v[start:])
}

// quotedWords decodes the RFC 2047 encoded words left in a display name:
// net/mail leaves those inside a quoted string ("=?utf-8?B?...?=" <a@b>)
// as they are, as RFC 2047 asks, but mailers write them so and Python
// decodes them (issue 12, item 11).
func quotedWords(p *mail.AddressParser, name string) string {
	if !strings.Contains(name, "=?") || !strings.Contains(name, "?=") || p.WordDecoder == nil {
		return name
	}
	if out, err := p.WordDecoder.DecodeHeader(name); err == nil {
		return out
	}
	return name
}

// clip shortens s to n bytes for a reason.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
