package zendesk

import (
	"io"
	"net/url"
	"regexp"
	"strings"
)

// Redaction of response text (issue 11, item 9).
//
// Error bodies are kept as excerpts (APIError.Body, Description, Details)
// that end up in failures, failures.jsonl and the checkpoint. Text is
// redacted whole, before anything is cut: cutting first left the start of
// a credential that straddled the cut ("token=s3cr3t-TOK", "Basic cnRA…"),
// which no later redaction could recognise. Three things are removed:
//   - the secrets the client knows (token, Basic credential, OAuth tokens,
//     client secret), as written and in the forms a server may echo them
//     (JSON-escaped, URL-encoded), and any piece of one of at least
//     minSecretPiece bytes at either end of the text (the text was cut by
//     a read limit before it reached us);
//   - anything shaped like a credential the client does not know: a
//     Basic/Bearer credential, "token=…", `"password": "…"`,
//     "email/token:…";
//   - at a cut made here, a run of credential characters of at least
//     minSecretPiece bytes that the cut splits: it may be the start of a
//     secret nobody could recognise.

// redacted replaces what is removed.
const redacted = "[REDACTED]"

// minSecretPiece is the shortest piece of a secret worth removing: shorter
// pieces carry too little of it to matter, and would match ordinary text.
const minSecretPiece = 8

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// Credential shapes, each matched where one of its words starts (see
// redactShapes): "Basic xxx" / "Bearer xxx"; "token=xxx", "api_token:
// xxx", `"password":"xxx"` (also inside a JSON string, its quotes
// escaped); and the user part of API-token auth, "email/token:xxx".
var (
	schemeWords = []string{"basic", "bearer", "digest", "token"}
	schemeCred  = regexp.MustCompile(`^(?i:basic|bearer|digest|token)\s+([A-Za-z0-9+/=._~-]{8,})`)
	keyWords    = []string{"token", "secret", "password", "passwd", "pwd", "apikey", "api_key", "authorization"}
	keyCred     = regexp.MustCompile(`^(?i:token|secret|password|passwd|pwd|apikey|api_key|authorization)(?:\\?["'])?\s*[:=]\s*(?:\\?["'])?([^\s"'\\&,;<>{}\[\]]{4,})`)
	userWords   = []string{"/token:"}
	userCred    = regexp.MustCompile(`^(?i:/token:)([^\s"'\\&,;<>{}\[\]]+)`)
)

// matchWindow bounds how far a shape is matched from its word.
const matchWindow = 1024

// secretForms returns each secret with the forms a server may echo it in.
func secretForms(secrets []string) []string {
	var out []string
	for _, s := range secrets {
		if s == "" {
			continue
		}
		out = append(out, s)
		for _, f := range []string{strings.ReplaceAll(s, "/", `\/`), url.QueryEscape(s), url.PathEscape(s)} {
			if f != s {
				out = append(out, f)
			}
		}
	}
	return out
}

// redactText removes every credential from s: the known secrets, pieces
// of them at either end of s, and credential-shaped text.
func redactText(s string, secrets []string) string {
	forms := secretForms(secrets)
	for _, f := range forms {
		s = strings.ReplaceAll(s, f, redacted)
	}
	s = redactShapes(s, schemeWords, schemeCred, credentialLike)
	s = redactShapes(s, keyWords, keyCred, nil)
	s = redactShapes(s, userWords, userCred, nil)
	for _, f := range forms {
		s = redactEnds(s, f)
	}
	return s
}

// redactShapes replaces group 1 of re wherever re matches at the start
// of one of words (any case), when keep is nil or says so. The words are
// found with a plain search and re runs only there: a case-insensitive
// pattern that starts with alternatives is slow on a long body.
func redactShapes(s string, words []string, re *regexp.Regexp, keep func(string) bool) string {
	lower := asciiLower(s) // same byte offsets as s
	var b strings.Builder
	done := 0 // s[:done] is written or replaced
	for i := 0; i < len(s); {
		at := -1
		for _, w := range words {
			if j := strings.Index(lower[i:], w); j >= 0 && (at < 0 || i+j < at) {
				at = i + j
			}
		}
		if at < 0 {
			break
		}
		m := re.FindStringSubmatchIndex(s[at:min(len(s), at+matchWindow)])
		if m == nil || at < done || (keep != nil && !keep(s[at+m[2]:at+m[3]])) {
			i = at + 1
			continue
		}
		b.WriteString(s[done : at+m[2]])
		b.WriteString(redacted)
		done = at + m[3]
		i = done
	}
	if done == 0 {
		return s
	}
	b.WriteString(s[done:])
	return b.String()
}

// asciiLower lowers ASCII letters only, so that offsets stay those of s.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// redactEnds removes a piece of secret of at least minSecretPiece bytes
// that s ends with (its start: s was cut after it) or begins with (its
// end: s was cut before it).
func redactEnds(s, secret string) string {
	for k := len(secret) - 1; k >= minSecretPiece; k-- {
		if strings.HasSuffix(s, secret[:k]) {
			s = s[:len(s)-k] + redacted
			break
		}
	}
	for k := len(secret) - 1; k >= minSecretPiece; k-- {
		if strings.HasPrefix(s, secret[len(secret)-k:]) {
			s = redacted + s[k:]
			break
		}
	}
	return s
}

// credentialLike reports whether a word looks like a credential rather
// than an ordinary word: it has a digit, a capital after its first letter,
// or a character of base64 or a token.
func credentialLike(w string) bool {
	for i, r := range w {
		switch {
		case r >= '0' && r <= '9', r == '+', r == '/', r == '=', r == '.', r == '_', r == '~', r == '-':
			return true
		case i > 0 && r >= 'A' && r <= 'Z':
			return true
		}
	}
	return false
}

// readErrorBody reads at most maxErrorBody bytes of an error response and
// redacts them. A body longer than that is cut, and a run of credential
// characters split by that cut is removed too.
func readErrorBody(r io.Reader, secrets []string) []byte {
	body, _ := io.ReadAll(io.LimitReader(r, maxErrorBody+1))
	s := string(body)
	if len(s) > maxErrorBody {
		s = dropSplitRun(truncateUTF8(s, maxErrorBody))
	}
	return []byte(redactText(s, secrets))
}

// cutExcerpt cuts redacted text to at most about n bytes on a UTF-8
// boundary. The cut never leaves part of a redaction marker, nor a run of
// credential characters of minSecretPiece bytes or more that it splits.
// It adds nothing when s is short enough.
func cutExcerpt(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := truncateUTF8(s, n)
	// A marker split by the cut: keep it whole.
	if i := strings.LastIndexByte(cut, '['); i >= 0 && strings.HasPrefix(s[i:], redacted) && i+len(redacted) > len(cut) {
		return cut[:i] + redacted
	}
	if isCredChar(s[len(cut)]) {
		cut = dropSplitRun(cut)
	}
	return cut
}

// dropSplitRun replaces a trailing run of credential characters of at
// least minSecretPiece bytes, which a cut split, with the marker.
func dropSplitRun(s string) string {
	i := len(s)
	for i > 0 && isCredChar(s[i-1]) {
		i--
	}
	if len(s)-i >= minSecretPiece {
		return s[:i] + redacted
	}
	return s
}

func isCredChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' ||
		c == '+' || c == '/' || c == '=' || c == '.' || c == '_' || c == '~' || c == '-'
}
