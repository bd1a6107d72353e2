package zendesk

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"
)

// ErrTimeout is wrapped by a *RequestError when the per-request timeout
// (Options.Timeout) expired before the response was read. The request may
// have been processed: see OutcomeUnknown.
var ErrTimeout = errors.New("zendesk: request timed out")

// maxExcerpt is the longest response body kept in APIError.Body.
const maxExcerpt = 512

// APIError is a response with a non-2xx status.
type APIError struct {
	Method      string // HTTP method
	Path        string // URL path, without host, credentials or query
	Status      int    // HTTP status code
	RequestID   string // X-Zendesk-Request-Id
	APIWarn     string // X-Zendesk-API-Warn
	Code        string // the body's "error" (e.g. RecordInvalid), when it has one
	Description string // the body's "description", or a short text taken from a non-JSON body
	Details     json.RawMessage
	Body        string // excerpt of the body, redacted, then cut to about 512 bytes
	// Location is where a redirect (3xx) pointed, resolved, without user
	// info or query. The client never follows a redirect.
	Location string
}

// Error reads like
// "POST /api/v2/tickets/12/side_conversations/import: 422 RecordInvalid: Record validation errors [events[0].message.to: can't be blank] (request id abc)".
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d", e.Method, e.Path, e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	} else if t := http.StatusText(e.Status); t != "" {
		b.WriteString(" " + t)
	}
	if e.Description != "" && e.Description != e.Code {
		b.WriteString(": " + e.Description)
	}
	if d := detailsSummary(e.Details); d != "" {
		b.WriteString(" [" + d + "]")
	}
	if e.Location != "" {
		b.WriteString(" (redirected to " + e.Location + ", not followed)")
	}
	if e.RequestID != "" {
		b.WriteString(" (request id " + e.RequestID + ")")
	}
	return b.String()
}

// RateLimitError is a 429, or a 503 that carried Retry-After. The client
// has already closed its Gate for RetryAfter, so every caller waits.
type RateLimitError struct {
	APIError
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("%s (retry after %s)", e.APIError.Error(), e.RetryAfter)
}

// Unwrap lets errors.As find the embedded *APIError.
func (e *RateLimitError) Unwrap() error { return &e.APIError }

// RequestError is a request that got no usable response: the connection
// could not be made or broke, the per-request timeout expired (ErrTimeout),
// the caller's context ended, or a 2xx body could not be read.
type RequestError struct {
	Method string
	Path   string
	// Sent is true when the request (at least its headers) went out: the
	// server may have acted on it.
	Sent bool
	// Status is the status of a response whose body could not be read,
	// else 0.
	Status int
	Err    error

	callerDone bool // the caller's ctx ended: not retryable
}

func (e *RequestError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("%s %s: %d response: %v", e.Method, e.Path, e.Status, e.Err)
	}
	return fmt.Sprintf("%s %s: %v", e.Method, e.Path, e.Err)
}

func (e *RequestError) Unwrap() error { return e.Err }

// IsStatus reports whether err is (or wraps) an *APIError with the status code.
func IsStatus(err error, code int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == code
}

// Retryable tells the caller's retry loop whether err is worth another
// attempt and how long the server asked to wait (0: the caller's own
// backoff). A write that failed with OutcomeUnknown(err) must be reconciled
// before it is sent again.
//
//   - 429: yes, after RetryAfter; 503: yes (RetryAfter or 0);
//   - 408, 409, 500, 502, 504: yes;
//   - network errors, resets, EOF before a response, ErrTimeout: yes;
//   - context.Canceled, the caller's deadline, TLS certificate errors,
//     an unknown host: no;
//   - a *PauseError (a wait longer than MaxRetryAfter): no;
//   - a 2xx body over its cap (ErrResponseTooLarge): yes for a write
//     (after reconciling: OutcomeUnknown), no for a read;
//   - every other status (3xx, 400, 401, 403, 404, 413, 422, ...): no.
func Retryable(err error) (retry bool, wait time.Duration) {
	if err == nil {
		return false, 0
	}
	if errors.Is(err, ErrPauseTooLong) {
		return false, 0
	}
	var rl *RateLimitError
	if errors.As(err, &rl) {
		return true, rl.RetryAfter
	}
	var ae *APIError
	if errors.As(err, &ae) {
		switch ae.Status {
		case http.StatusTooManyRequests, http.StatusServiceUnavailable,
			http.StatusRequestTimeout, http.StatusConflict,
			http.StatusInternalServerError, http.StatusBadGateway, http.StatusGatewayTimeout:
			return true, 0
		}
		return false, 0
	}
	var re *RequestError
	if errors.As(err, &re) {
		if re.callerDone || errors.Is(re.Err, context.Canceled) || permanentNetError(re.Err) {
			return false, 0
		}
		if errors.Is(re.Err, ErrResponseTooLarge) && re.Method == http.MethodGet {
			return false, 0
		}
		return true, 0
	}
	return false, 0
}

// OutcomeUnknown reports whether the request behind err may have been
// processed although it failed: 500, 502, 503, 504, a redirect answering
// a write (a 303 may follow processing), a 2xx whose body could not be
// read, a timeout, a reset or EOF after the request was sent, or a
// cancellation after it was sent. A
// write that fails this way must be looked up (by its external ids) before
// it is sent again. A request that never left (connection refused, a
// client-side rate-limit wait that was cancelled) is not unknown.
//
// 503 is counted as unknown although it usually means "not processed":
// Zendesk's 503s include database timeouts, and a needless lookup costs one
// GET while a wrong guess costs a duplicate.
func OutcomeUnknown(err error) bool {
	if err == nil {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		switch ae.Status {
		case http.StatusInternalServerError, http.StatusBadGateway,
			http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		// A write answered 302 or 303 may have been carried out before the
		// redirect (post/redirect/get); 301, 307 and 308 say the request
		// belongs elsewhere: it was not carried out here.
		return (ae.Status == http.StatusFound || ae.Status == http.StatusSeeOther) &&
			ae.Method != http.MethodGet && ae.Method != http.MethodHead
	}
	var re *RequestError
	if errors.As(err, &re) {
		return re.Sent
	}
	return false
}

// AnswerPending reports whether err says a request was sent and Zendesk
// may still be working on it: the client stopped waiting (its timeout, or
// the caller gave up), or a gateway did (504). Such a write can land after
// the error; a lookup made at once could miss it. A response, even a 500,
// 502 or 503, or a connection the other side closed, says the server is
// done with the request, whatever it did.
func AnswerPending(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status == http.StatusGatewayTimeout
	}
	var re *RequestError
	return errors.As(err, &re) && re.Sent && re.Status == 0 && (errors.Is(re.Err, ErrTimeout) || re.callerDone)
}

func permanentNetError(err error) bool {
	var (
		cv   *tls.CertificateVerificationError
		ua   x509.UnknownAuthorityError
		he   x509.HostnameError
		ci   x509.CertificateInvalidError
		dnse *net.DNSError
	)
	switch {
	case errors.As(err, &cv), errors.As(err, &ua), errors.As(err, &he), errors.As(err, &ci):
		return true
	case errors.As(err, &dnse):
		return dnse.IsNotFound
	}
	return false
}

// parseErrorBody fills Code, Description, Details and Body from a body
// that may be JSON (in any of Zendesk's error shapes), HTML or plain text.
// body has been redacted whole (readErrorBody); every text decoded from it
// is redacted again (JSON and HTML escapes could hide a secret from the
// first pass), and always before it is cut.
func (e *APIError) parseErrorBody(body []byte, secrets []string) {
	e.Body = cutExcerpt(string(body), maxExcerpt)
	defer func() {
		e.Code = redactText(e.Code, secrets)
		if len(e.Details) > 0 {
			e.Details = json.RawMessage(redactText(string(e.Details), secrets))
		}
	}()
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return
	}
	if body[0] == '{' {
		var w struct {
			Error       json.RawMessage `json:"error"`
			Description string          `json:"description"`
			Details     json.RawMessage `json:"details"`
			Errors      []struct {
				Code   string `json:"code"`
				Title  string `json:"title"`
				Detail string `json:"detail"`
			} `json:"errors"`
		}
		if json.Unmarshal(body, &w) == nil {
			e.Description = cutDescription(redactText(w.Description, secrets), maxDescription)
			if len(w.Details) > 0 && string(w.Details) != "null" {
				e.Details = canonicalJSON(w.Details)
			}
			var s string
			var obj struct{ Title, Message string }
			switch {
			case json.Unmarshal(w.Error, &s) == nil:
				e.Code = s
			case json.Unmarshal(w.Error, &obj) == nil:
				e.Code = obj.Title
				if e.Description == "" {
					e.Description = obj.Message
				}
			}
			if e.Code == "" && len(w.Errors) > 0 {
				e.Code = w.Errors[0].Code
				if e.Code == "" {
					e.Code = w.Errors[0].Title
				}
				if e.Description == "" {
					e.Description = w.Errors[0].Detail
				}
			}
			return
		}
	}
	e.Description = textExcerpt(body, secrets)
}

// canonicalJSON re-encodes raw JSON so that its strings carry no escapes
// but those encoding/json writes: redaction then sees a secret as the
// text that detailsSummary will show.
func canonicalJSON(raw json.RawMessage) json.RawMessage {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return raw
	}
	b, err := json.Marshal(v)
	if err != nil {
		return raw
	}
	return b
}

// Lengths of the texts kept from an error body, in bytes.
const (
	maxDescription = 200
	maxDetails     = 300
)

// cutDescription cuts redacted text to about n bytes, with an ellipsis.
func cutDescription(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return cutExcerpt(s, n) + "…"
}

var (
	titleRE = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)
	tagRE   = regexp.MustCompile(`(?s)<[^>]*>`)
)

// textExcerpt makes a one-line description of a text or HTML body,
// redacted before it is cut.
func textExcerpt(body []byte, secrets []string) string {
	s := string(body)
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(s)), "<") {
		if m := titleRE.FindStringSubmatch(s); m != nil {
			s = m[1]
		} else {
			s = tagRE.ReplaceAllString(s, " ")
		}
		s = redactText(html.UnescapeString(s), secrets)
	}
	// A description shows the start of the text: a few times its length
	// is enough to fill it even where white space is collapsed.
	if len(s) > 16*maxDescription {
		s = truncateUTF8(s, 16*maxDescription)
	}
	return cutDescription(strings.Join(strings.Fields(s), " "), maxDescription)
}

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// detailsSummary renders {"field":[{"description":"..."}]} as
// "field: ...; other: ...", sorted by field.
func detailsSummary(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		var items []struct {
			Description string `json:"description"`
			Error       string `json:"error"`
		}
		var descs []string
		if json.Unmarshal(m[k], &items) == nil {
			for _, it := range items {
				switch {
				case it.Description != "":
					descs = append(descs, it.Description)
				case it.Error != "":
					descs = append(descs, it.Error)
				}
			}
		}
		if len(descs) == 0 {
			parts = append(parts, k)
			continue
		}
		parts = append(parts, k+": "+strings.Join(descs, "; "))
	}
	// Details were redacted whole when they were read (parseErrorBody).
	return cutDescription(strings.Join(parts, "; "), maxDetails)
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP date.
// ok is false when the value is missing or unreadable.
func parseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	var secs float64
	if _, err := fmt.Sscanf(v, "%g", &secs); err == nil && isNumeric(v) {
		if secs < 0 {
			secs = 0
		}
		return time.Duration(secs * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}

func isNumeric(s string) bool {
	for _, r := range s {
		if (r < '0' || r > '9') && r != '.' && r != '-' {
			return false
		}
	}
	return true
}
