package zendesk

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// DefaultMaxRetryAfter is Options.MaxRetryAfter when 0: Zendesk's
// per-minute limits ask for seconds, and the side-conversation write
// bucket counts per 10 minutes, so a genuine wait stays under it.
const DefaultMaxRetryAfter = 15 * time.Minute

// Caps on a 2xx body, by endpoint kind (Options.MaxResponseBytes replaces
// them all). A body over its cap is not read further: a server that
// streams without end must not grow the process without end.
const (
	// maxWriteBody is the floor for import and events/import, whose
	// documented answer is one side conversation and one event: the cap
	// is this or twice the request, whichever is larger, since an answer
	// may echo what was sent.
	maxWriteBody = 16 << 20
	// maxListBody bounds one page of side conversations with their events
	// (include=events, 100 per page), and a side conversation shown alone.
	maxListBody = 64 << 20
	// maxTicketBody bounds a ticket or a page of tickets.
	maxTicketBody = 16 << 20
	// maxUploadBody bounds an upload's answer, the attachment's metadata.
	maxUploadBody = 1 << 20
)

// ErrResponseTooLarge is wrapped by the *RequestError of a 2xx whose body
// is larger than its cap. For a write the outcome is unknown (it was
// answered 2xx, so it probably landed): OutcomeUnknown is true and the
// write is looked up before anything is sent again. A read is not retried:
// the same read would bring the same body.
var ErrResponseTooLarge = errors.New("zendesk: response body larger than its cap")

// bodyCap is the cap on a 2xx body of kind; reqLen is the request body's
// size when known.
func (c *Client) bodyCap(kind string, reqLen int) int64 {
	if c.maxResponse > 0 {
		return c.maxResponse
	}
	switch kind {
	case KindImport, KindEventsImport:
		return max(maxWriteBody, 2*int64(reqLen))
	case KindList, KindShow:
		return maxListBody
	case KindUpload:
		return maxUploadBody
	}
	return maxTicketBody
}

// cappedReader reads at most n bytes of r; reading past them fails with
// ErrResponseTooLarge.
type cappedReader struct {
	r    io.Reader
	n    int64
	over bool
}

func (cr *cappedReader) Read(p []byte) (int, error) {
	if cr.n <= 0 {
		cr.over = true
		return 0, ErrResponseTooLarge
	}
	if int64(len(p)) > cr.n {
		p = p[:cr.n]
	}
	n, err := cr.r.Read(p)
	cr.n -= int64(n)
	return n, err
}

// ErrPauseTooLong is wrapped by a *PauseError.
var ErrPauseTooLong = errors.New("zendesk: the server asked to pause longer than the longest wait allowed")

// PauseError means the server asked every client to wait (Retry-After on
// a 429 or 503) longer than Options.MaxRetryAfter. The client's gate stays
// closed until Until, and every request until then fails at once with a
// *PauseError instead of waiting: the caller should stop and come back
// after Until. It is not retryable; the 429 behind it was not processed
// (a 503 may have been: OutcomeUnknown says so).
type PauseError struct {
	Until      time.Time     // when the server accepts requests again
	RetryAfter time.Duration // the wait announced; 0 when a request found the gate closed
	Max        time.Duration // Options.MaxRetryAfter
	// Err is the *RateLimitError that announced the pause; nil for a
	// request that found the gate closed and was never sent.
	Err error
}

func (e *PauseError) Error() string {
	msg := fmt.Sprintf("Zendesk asked to pause until %s, longer than zendesk.max_retry_after (%s)",
		e.Until.Local().Format("2006-01-02 15:04:05 MST"), e.Max)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap lets errors.Is find ErrPauseTooLong and errors.As the
// *RateLimitError (and its *APIError) when there is one.
func (e *PauseError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrPauseTooLong}
	}
	return []error{ErrPauseTooLong, e.Err}
}

// checkPause returns a *PauseError when the gate is closed for longer than
// the longest wait allowed.
func (c *Client) checkPause() error {
	until := c.gate.Until()
	if time.Until(until) > c.maxRetryAfter {
		return &PauseError{Until: until, Max: c.maxRetryAfter}
	}
	return nil
}

// Misconfigured reports whether err shows that the account or zendesk.url
// is wrong for every request, not that one thread failed, and says what
// to check: a redirect (3xx) on any request, which the client never
// follows (it would resend a write, or the credentials, elsewhere), or a
// 403 on a write (no permission to import side conversations, or side
// conversations not available on the account). A run should stop at the
// first one rather than fail thread by thread.
func Misconfigured(err error) (hint string, ok bool) {
	var ae *APIError
	if !errors.As(err, &ae) {
		return "", false
	}
	switch {
	case ae.Status >= 300 && ae.Status < 400:
		to := "elsewhere (no Location given)"
		if ae.Location != "" {
			to = "to " + ae.Location
		}
		return fmt.Sprintf("Zendesk redirected %s %s %s: zendesk.url is probably not the account's own address "+
			"(a wrong or renamed subdomain, a host alias, http:// for https://); set zendesk.url to the account's URL, "+
			"e.g. https://SUBDOMAIN.zendesk.com (threadlift never follows a redirect: it would send the import or the credentials elsewhere)",
			ae.Method, ae.Path, to), true
	case ae.Status == http.StatusForbidden && ae.Method != http.MethodGet && ae.Method != http.MethodHead:
		return "Zendesk refused a write (403): the user of zendesk.email (or the OAuth token) may not import side conversations here. " +
			"Check that it is an admin, or an agent whose role may manage side conversations on these tickets, " +
			"that side conversations are turned on for the account (the Collaboration add-on, or a plan that includes it), " +
			"and that the token has write access; 'threadlift check' tests all of this", true
	}
	return "", false
}

// location resolves a redirect's Location against the request's URL and
// drops what must not be shown (user info, query, fragment).
func location(reqURL *url.URL, raw string) string {
	if raw == "" {
		return ""
	}
	ref, err := url.Parse(raw)
	if err != nil {
		return "(unreadable Location)"
	}
	u := reqURL.ResolveReference(ref)
	u.User, u.RawQuery, u.Fragment, u.RawFragment = nil, "", "", ""
	return u.String()
}
