package zendesk

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
)

// DefaultTimeout is the per-request timeout when Options.Timeout is 0.
const DefaultTimeout = 30 * time.Second

// Default Retry-After waits when the header is missing or unreadable.
const (
	DefaultRetryAfter429 = 60 * time.Second
	DefaultRetryAfter503 = 30 * time.Second
)

// Endpoint kinds, the keys of Stats.Requests.
const (
	KindImport       = "import"
	KindEventsImport = "events_import"
	KindList         = "list"
	KindShow         = "show"
	KindUpload       = "upload"
	KindTicket       = "ticket"
	KindTicketSearch = "ticket_search"
	// Read-only endpoints of verify and check (users.go, tickets.go).
	KindUser           = "user"
	KindTicketShowMany = "ticket_show_many"
)

var allKinds = []string{KindImport, KindEventsImport, KindList, KindShow, KindUpload, KindTicket, KindTicketSearch,
	KindUser, KindTicketShowMany}

// Options configures a Client. The zero value of every field but BaseURL
// and the credentials means a default.
type Options struct {
	// BaseURL is the account's URL, e.g. https://acme.zendesk.com. http://
	// is refused unless the host is loopback (127.0.0.0/8, ::1, localhost).
	BaseURL string
	// Email and Token are API-token credentials: Basic
	// base64("{email}/token:{token}").
	Email, Token string
	// OAuthToken is an OAuth access token (Bearer), instead of Email/Token.
	OAuthToken string
	// OAuthRefresh, with OAuthToken, lets the client renew the access
	// token once when a request gets 401, and send that request again.
	// Concurrent 401s share one refresh. If the refresh fails, or the new
	// token is refused too, the 401 *APIError is returned and no refresh
	// is tried again.
	OAuthRefresh *OAuthRefresh
	// OnTokenRefresh, if set, is called after each successful refresh with
	// the new tokens, e.g. to persist them. It runs on the goroutine of the
	// request that refreshed; it must not log the tokens.
	OnTokenRefresh func(accessToken, refreshToken string)
	// RequestsPerMinute caps every request (the account-wide limit);
	// 0 = unlimited. The client adapts below it: a 429 halves its own rate
	// (to at least 5% of it, and one request per 10 s), and every 30 s
	// without a 429 adds 5% back. An unlimited client that gets a 429
	// adopts 90% of the response's X-Rate-Limit as its ceiling.
	RequestsPerMinute int
	// WriteRequestsPer10Minutes caps writes (import, events/import,
	// attachment upload) in a second bucket; 0 = none.
	WriteRequestsPer10Minutes int
	// Timeout bounds each request from sending to reading the whole
	// response (not the wait for the limiters); 0 = 30s.
	Timeout time.Duration
	// HTTPClient is used if set (copied; its redirects are not followed).
	HTTPClient *http.Client
	// Logger receives failures (with request id and API warning) at debug
	// or warn. The zero Logger logs nothing.
	Logger zerolog.Logger
	// UserAgent is sent as User-Agent; default "threadlift".
	UserAgent string
	// Gate is shared with other clients if set; by default each Client
	// has its own.
	Gate *Gate
	// Now is the clock of the adaptive rate (when a 429 arrived, how long
	// since); default time.Now. The limiters' waits use the real clock.
	Now func() time.Time
	// MaxRetryAfter is the longest Retry-After the client waits for; 0 =
	// DefaultMaxRetryAfter. A longer one fails the request with a
	// *PauseError, and so does every request while the gate is closed for
	// longer than this.
	MaxRetryAfter time.Duration
	// MaxResponseBytes caps every 2xx body; 0 = a cap per endpoint kind
	// (64 MiB for a page of side conversations, 16 MiB or twice the
	// request for an import, 1 MiB for an upload's answer). A body over it
	// fails with ErrResponseTooLarge.
	MaxResponseBytes int64
}

// String describes the options without secrets.
func (o Options) String() string {
	auth := "none"
	switch {
	case o.OAuthToken != "" && o.OAuthRefresh != nil:
		auth = "oauth+refresh(" + o.OAuthRefresh.String() + ")"
	case o.OAuthToken != "":
		auth = "oauth"
	case o.Token != "":
		auth = "token(" + o.Email + ")"
	}
	return fmt.Sprintf("zendesk.Options{BaseURL:%s Auth:%s RequestsPerMinute:%d WriteRequestsPer10Minutes:%d Timeout:%s MaxRetryAfter:%s}",
		redactURL(o.BaseURL), auth, o.RequestsPerMinute, o.WriteRequestsPer10Minutes, o.Timeout, o.MaxRetryAfter)
}

// GoString is String, so that %#v does not print the token either.
func (o Options) GoString() string { return o.String() }

// Client talks to the Zendesk Support API. Each method makes exactly one
// attempt (paginated lists one per page); the caller retries, consulting
// Retryable and OutcomeUnknown. A Client is safe for concurrent use.
type Client struct {
	base          string // scheme://host[/prefix], no trailing slash
	baseURL       *url.URL
	httpc         *http.Client
	authz         authState
	onRefresh     func(accessToken, refreshToken string)
	now           func() time.Time
	acctRate      *adaptiveRate
	writeLimiter  *rate.Limiter // nil: none
	gate          *Gate
	timeout       time.Duration
	maxRetryAfter time.Duration
	maxResponse   int64 // Options.MaxResponseBytes; 0: per kind (bodyCap)
	log           zerolog.Logger
	userAgent     string
	stats         counters
	rateSeen      rateHeaders // the latest X-Rate-Limit (ratelimit.go)
}

// New checks opts and returns a Client.
func New(opts Options) (*Client, error) {
	base, err := parseBaseURL(opts.BaseURL)
	if err != nil {
		return nil, err
	}
	c := &Client{
		base:      strings.TrimSuffix(base.String(), "/"),
		baseURL:   base,
		gate:      opts.Gate,
		timeout:   opts.Timeout,
		log:       opts.Logger,
		userAgent: opts.UserAgent,
		onRefresh: opts.OnTokenRefresh,
		now:       opts.Now,

		maxRetryAfter: opts.MaxRetryAfter,
		maxResponse:   opts.MaxResponseBytes,
	}
	if c.maxRetryAfter <= 0 {
		c.maxRetryAfter = DefaultMaxRetryAfter
	}
	if c.now == nil {
		c.now = time.Now
	}
	if err := c.authz.set(opts, c.base); err != nil {
		return nil, err
	}
	if opts.RequestsPerMinute < 0 || opts.WriteRequestsPer10Minutes < 0 {
		return nil, errors.New("zendesk: negative rate limit")
	}
	c.acctRate = newAdaptiveRate(opts.RequestsPerMinute, c.now, c.log)
	if opts.WriteRequestsPer10Minutes > 0 {
		c.writeLimiter = rate.NewLimiter(rate.Limit(float64(opts.WriteRequestsPer10Minutes)/600), 1)
	}
	if c.gate == nil {
		c.gate = new(Gate)
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.userAgent == "" {
		c.userAgent = "threadlift"
	}
	if opts.HTTPClient != nil {
		hc := *opts.HTTPClient
		c.httpc = &hc
	} else {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		c.httpc = &http.Client{Transport: tr}
	}
	// A redirect would resend the request elsewhere (a POST as a GET):
	// report it as an error instead.
	c.httpc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.stats.init()
	return c, nil
}

// set takes the credentials of opts: an OAuth token (with what a
// refresh needs, if any: its token URL defaults to base's), or an API
// token with its email.
func (a *authState) set(opts Options, base string) error {
	switch {
	case opts.OAuthToken != "" && opts.Token != "":
		return errors.New("zendesk: both Token and OAuthToken are set; use one")
	case opts.OAuthRefresh != nil && opts.OAuthToken == "":
		return errors.New("zendesk: OAuthRefresh is set but OAuthToken is empty")
	case opts.OAuthToken != "":
		if !headerSafe(opts.OAuthToken) {
			return errors.New("zendesk: OAuthToken contains white space or control characters")
		}
		a.header = "Bearer " + opts.OAuthToken
		a.secrets = []string{opts.OAuthToken}
		if opts.OAuthRefresh != nil {
			return a.setRefresh(*opts.OAuthRefresh, base)
		}
	case opts.Token != "":
		if opts.Email == "" {
			return errors.New("zendesk: Token is set but Email is empty")
		}
		if !headerSafe(opts.Token) {
			return errors.New("zendesk: Token contains white space or control characters")
		}
		cred := base64.StdEncoding.EncodeToString([]byte(opts.Email + "/token:" + opts.Token))
		a.header = "Basic " + cred
		a.secrets = []string{opts.Token, cred}
	default:
		return errors.New("zendesk: no credentials: set Email and Token, or OAuthToken")
	}
	return nil
}

// setRefresh takes what an OAuth refresh needs (r, a copy).
func (a *authState) setRefresh(r OAuthRefresh, base string) error {
	switch {
	case r.RefreshToken == "":
		return errors.New("zendesk: OAuthRefresh.RefreshToken is empty")
	case r.ClientID == "":
		return errors.New("zendesk: OAuthRefresh.ClientID is empty")
	}
	raw := r.TokenURL
	if raw == "" {
		raw = base + "/oauth/tokens"
	}
	tu, err := parseTokenURL(raw)
	if err != nil {
		return err
	}
	a.refresh = &r
	a.tokenURL = tu
	a.secrets = append(a.secrets, r.RefreshToken, r.ClientSecret)
	return nil
}

// String describes the client without secrets.
func (c *Client) String() string { return "zendesk.Client{" + c.base + "}" }

// GoString is String.
func (c *Client) GoString() string { return c.String() }

// Gate returns the gate every request waits on; a Retry-After closes it.
func (c *Client) Gate() *Gate { return c.gate }

func parseBaseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("zendesk: BaseURL is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("zendesk: BaseURL %s is not a URL", redactURL(raw))
	}
	if u.User != nil {
		return nil, fmt.Errorf("zendesk: BaseURL %s must not contain credentials", u.Redacted())
	}
	u.Scheme = strings.ToLower(u.Scheme)
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return nil, fmt.Errorf("zendesk: BaseURL %s: http:// is only allowed for a loopback host; use https://", u)
		}
	default:
		return nil, fmt.Errorf("zendesk: BaseURL %s: want https://SUBDOMAIN.zendesk.com", u)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("zendesk: BaseURL %s has no host", u)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("zendesk: BaseURL %s must not have a query or fragment", u)
	}
	p := strings.TrimRight(u.Path, "/")
	p = strings.TrimSuffix(p, "/api/v2")
	u.Path, u.RawPath = p, ""
	return u, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redactURL returns raw with any user info masked, for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.LastIndex(raw, "@"); i >= 0 {
			return "[redacted]" + raw[i:]
		}
		return raw
	}
	return u.Redacted()
}

func headerSafe(s string) bool {
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

// redact removes every secret from s, and anything shaped like one
// (redact.go).
func (c *Client) redact(s string) string {
	return redactText(s, c.authz.secretList())
}

// call is one API request.
type call struct {
	kind        string
	method      string
	u           *url.URL
	write       bool
	body        io.Reader
	rebody      func() io.Reader // a fresh copy of body; nil: body cannot be re-sent
	contentType string
	bodyLen     int // the request body's size, when known (for bodyCap)
}

// url builds an absolute URL for an API path (already escaped) and query.
func (c *Client) url(path string, q url.Values) *url.URL {
	u := *c.baseURL
	u.Path = c.baseURL.Path + path
	u.RawPath = ""
	if q != nil {
		u.RawQuery = q.Encode()
	}
	return &u
}

// wait blocks on the gate, then the limiters, then the gate again (a
// Retry-After may have arrived meanwhile). The write bucket is waited on
// before the account bucket so that an account token is taken only when
// the request is about to go. A gate closed for longer than MaxRetryAfter
// fails at once with a *PauseError.
func (c *Client) wait(ctx context.Context, write bool) error {
	if err := c.checkPause(); err != nil {
		return err
	}
	if err := c.gate.Wait(ctx); err != nil {
		return err
	}
	if write && c.writeLimiter != nil {
		if err := c.writeLimiter.Wait(ctx); err != nil {
			return err
		}
	}
	c.acctRate.raise()
	if err := c.acctRate.lim.Wait(ctx); err != nil {
		return err
	}
	if err := c.checkPause(); err != nil {
		return err
	}
	return c.gate.Wait(ctx)
}

// do sends one request and decodes a 2xx JSON body into out (if not nil).
// A 401 with a refreshable OAuth token refreshes it (or waits for the
// refresh another caller started) and sends the request once more: the
// server refused the first, so sending again cannot duplicate it.
func (c *Client) do(ctx context.Context, cl call, out any) error {
	gen, err := c.send(ctx, cl, out)
	if !IsStatus(err, http.StatusUnauthorized) || !c.authz.refreshable() || !c.refreshAuth(ctx, gen) {
		return err
	}
	if cl.body != nil {
		if cl.rebody == nil {
			return &RequestError{Method: cl.method, Path: cl.u.Path, Err: ErrTokenRefreshed}
		}
		cl.body = cl.rebody()
	}
	gen, err = c.send(ctx, cl, out)
	if IsStatus(err, http.StatusUnauthorized) && c.authz.refused(gen) {
		c.log.Warn().Str("method", cl.method).Str("path", cl.u.Path).
			Msg("zendesk: the refreshed OAuth token was refused too; not refreshing again")
	}
	return err
}

// send makes one attempt; gen is the generation of the credentials it
// sent.
func (c *Client) send(ctx context.Context, cl call, out any) (gen uint64, _ error) {
	path := cl.u.Path
	if err := c.wait(ctx, cl.write); err != nil {
		return 0, fmt.Errorf("%s %s: wait for rate limit: %w", cl.method, path, err)
	}
	auth, gen := c.authz.current()
	err := c.sendWith(ctx, cl, out, auth)
	return gen, err
}

func (c *Client) sendWith(ctx context.Context, cl call, out any, auth string) error {
	path := cl.u.Path
	reqCtx, cancel := context.WithTimeoutCause(ctx, c.timeout, ErrTimeout)
	defer cancel()
	var sent atomic.Bool
	reqCtx = httptrace.WithClientTrace(reqCtx, &httptrace.ClientTrace{
		WroteHeaders: func() { sent.Store(true) },
	})
	req, err := http.NewRequestWithContext(reqCtx, cl.method, cl.u.String(), cl.body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", cl.method, path, err)
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if cl.contentType != "" {
		req.Header.Set("Content-Type", cl.contentType)
	}
	c.stats.request(cl.kind)
	sentAt := c.now()
	resp, err := c.httpc.Do(req)
	if err != nil {
		c.stats.response(0)
		re := c.requestError(ctx, reqCtx, cl.method, path, sent.Load(), 0, err)
		c.log.Debug().Str("method", cl.method).Str("path", path).Bool("sent", re.Sent).
			Str("error", re.Error()).Msg("zendesk request failed")
		return re
	}
	defer resp.Body.Close()
	c.stats.response(resp.StatusCode)
	c.rateSeen.note(resp.Header, c.now())
	a := answer{resp: resp, requestID: resp.Header.Get("X-Zendesk-Request-Id"), apiWarn: c.redact(resp.Header.Get("X-Zendesk-API-Warn"))}
	if a.apiWarn != "" {
		c.log.Warn().Str("method", cl.method).Str("path", path).Int("status", resp.StatusCode).
			Str("request_id", a.requestID).Str("api_warn", a.apiWarn).Msg("zendesk API warning")
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return c.readOK(ctx, reqCtx, cl, a, out)
	}
	return c.failed(cl, a, sentAt)
}

// answer is a response with the headers every answer is logged with.
type answer struct {
	resp      *http.Response
	requestID string // X-Zendesk-Request-Id
	apiWarn   string // X-Zendesk-API-Warn, redacted
}

// readOK reads a 2xx body into out (up to its cap: bodyCap), then drains
// a little of what is left so that the connection can be reused.
func (c *Client) readOK(ctx, reqCtx context.Context, cl call, a answer, out any) error {
	path, status := cl.u.Path, a.resp.StatusCode
	if out != nil {
		limit := c.bodyCap(cl.kind, cl.bodyLen)
		body := &cappedReader{r: a.resp.Body, n: limit}
		if err := json.NewDecoder(body).Decode(out); err != nil {
			if body.over {
				c.log.Warn().Str("method", cl.method).Str("path", path).Int("status", status).
					Str("request_id", a.requestID).Int64("cap_bytes", limit).
					Msgf("zendesk response body over its cap of %d MiB: not read further (a write is looked up before it is sent again)", limit>>20)
				return &RequestError{Method: cl.method, Path: path, Sent: true, Status: status,
					Err: fmt.Errorf("%w (%d MiB for %s)", ErrResponseTooLarge, limit>>20, cl.kind)}
			}
			re := c.requestError(ctx, reqCtx, cl.method, path, true, status, fmt.Errorf("decode body: %w", err))
			c.log.Debug().Str("method", cl.method).Str("path", path).Int("status", status).
				Str("request_id", a.requestID).Str("error", re.Error()).Msg("zendesk response unreadable")
			return re
		}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(a.resp.Body, 64<<10))
	return nil
}

// failed is the error of a non-2xx answer: an *APIError, a
// *RateLimitError (429, or 503 with Retry-After: the gate is closed for
// it), or a *PauseError when the wait asked for is too long. sentAt is
// when the request was sent.
func (c *Client) failed(cl call, a answer, sentAt time.Time) error {
	resp := a.resp
	ae := APIError{
		Method:    cl.method,
		Path:      cl.u.Path,
		Status:    resp.StatusCode,
		RequestID: a.requestID,
		APIWarn:   a.apiWarn,
	}
	// Redacted before anything is cut (redact.go).
	ae.parseErrorBody(readErrorBody(resp.Body, c.authz.secretList()), c.authz.secretList())
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		ae.Location = c.redact(location(cl.u, resp.Header.Get("Location")))
	}
	var result error = &ae
	ra := resp.Header.Get("Retry-After")
	if resp.StatusCode == http.StatusTooManyRequests || (resp.StatusCode == http.StatusServiceUnavailable && ra != "") {
		result = c.rateLimited(cl, ae, ra, resp.Header.Get("X-Rate-Limit"), sentAt)
	}
	ev := c.log.Debug()
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		ev = c.log.Warn()
	}
	ev.Str("method", cl.method).Str("path", cl.u.Path).Int("status", resp.StatusCode).
		Str("request_id", a.requestID).Str("api_warn", a.apiWarn).Str("error_code", ae.Code).
		Str("retry_after", ra).Msg("zendesk request failed")
	return result
}

// rateLimited handles a 429, or a 503 with Retry-After (ra): the gate
// closes for every caller, a 429 slows the account limiter down (from
// the answer's X-Rate-Limit, limit), and the error is a *RateLimitError,
// or a *PauseError when the wait is longer than Options.MaxRetryAfter.
func (c *Client) rateLimited(cl call, ae APIError, ra, limit string, sentAt time.Time) error {
	c.stats.rateLimited(ae.Status)
	d, ok := parseRetryAfter(ra, time.Now())
	if !ok {
		d = DefaultRetryAfter429
		if ae.Status == http.StatusServiceUnavailable {
			d = DefaultRetryAfter503
		}
	}
	c.gate.CloseFor(d)
	if ae.Status == http.StatusTooManyRequests {
		c.acctRate.rateLimited(sentAt, limit)
	}
	var result error = &RateLimitError{APIError: ae, RetryAfter: d}
	if d > c.maxRetryAfter {
		until := time.Now().Add(d)
		c.log.Warn().Str("method", cl.method).Str("path", cl.u.Path).Int("status", ae.Status).
			Str("request_id", ae.RequestID).Str("retry_after", ra).Time("until", until).
			Msgf("Zendesk asked every client to pause until %s, longer than zendesk.max_retry_after (%s)",
				until.Local().Format("2006-01-02 15:04:05 MST"), c.maxRetryAfter)
		result = &PauseError{Until: until, RetryAfter: d, Max: c.maxRetryAfter, Err: result}
	}
	return result
}

func (c *Client) requestError(ctx, reqCtx context.Context, method, path string, sent bool, status int, err error) *RequestError {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	re := &RequestError{Method: method, Path: path, Sent: sent, Status: status}
	switch {
	case ctx.Err() != nil:
		re.Err = ctx.Err()
		re.callerDone = true
	case reqCtx.Err() != nil && errors.Is(context.Cause(reqCtx), ErrTimeout):
		re.Err = fmt.Errorf("%w after %s", ErrTimeout, c.timeout)
	default:
		if msg := err.Error(); c.redact(msg) != msg {
			err = errors.New(c.redact(msg))
		}
		re.Err = err
	}
	return re
}

// doJSON marshals in (if not nil) and calls do.
func (c *Client) doJSON(ctx context.Context, kind, method string, u *url.URL, write bool, in, out any) error {
	cl := call{kind: kind, method: method, u: u, write: write}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encode body: %w", method, u.Path, err)
		}
		cl.body = bytes.NewReader(b)
		cl.rebody = func() io.Reader { return bytes.NewReader(b) }
		cl.contentType = "application/json"
		cl.bodyLen = len(b)
	}
	return c.do(ctx, cl, out)
}

// Stats counts what a Client did.
type Stats struct {
	// Requests sent, by endpoint kind (KindImport, ...); "total" is the sum.
	Requests map[string]int64
	// Responses by HTTP status; 0 counts requests that got no response.
	Responses map[int]int64
	// RateLimited counts 429 responses; RateLimited503 counts 503s that
	// carried Retry-After.
	RateLimited    int64
	RateLimited503 int64
	// EffectiveRatePerMinute is the account rate the client allows itself
	// now, after lowering it for 429s; 0 = unlimited.
	EffectiveRatePerMinute float64
	// TokenRefreshes counts OAuth refresh attempts (successful or not).
	TokenRefreshes int64
	// Paused is how long every request was held back because Zendesk
	// asked to pause (Retry-After on a 429 or 503): Gate.Paused.
	Paused time.Duration
}

type counters struct {
	requests  map[string]*atomic.Int64 // fixed keys after init: read-only map
	total     atomic.Int64
	statuses  [600]atomic.Int64
	limited   atomic.Int64
	limited53 atomic.Int64
	refreshes atomic.Int64
}

func (s *counters) init() {
	s.requests = make(map[string]*atomic.Int64, len(allKinds))
	for _, k := range allKinds {
		s.requests[k] = new(atomic.Int64)
	}
}

func (s *counters) request(kind string) {
	s.total.Add(1)
	if n := s.requests[kind]; n != nil {
		n.Add(1)
	}
}

func (s *counters) response(status int) {
	if status < 0 || status >= len(s.statuses) {
		status = 0
	}
	s.statuses[status].Add(1)
}

func (s *counters) rateLimited(status int) {
	if status == http.StatusTooManyRequests {
		s.limited.Add(1)
	} else {
		s.limited53.Add(1)
	}
}

// Stats returns a snapshot of the counters.
func (c *Client) Stats() Stats {
	st := Stats{
		Requests:       make(map[string]int64, len(allKinds)+1),
		Responses:      make(map[int]int64),
		RateLimited:    c.stats.limited.Load(),
		RateLimited503: c.stats.limited53.Load(),
		TokenRefreshes: c.stats.refreshes.Load(),
		Paused:         c.gate.Paused(),

		EffectiveRatePerMinute: c.acctRate.perMinute(),
	}
	for k, n := range c.stats.requests {
		st.Requests[k] = n.Load()
	}
	st.Requests["total"] = c.stats.total.Load()
	for i := range c.stats.statuses {
		if n := c.stats.statuses[i].Load(); n != 0 {
			st.Responses[i] = n
		}
	}
	return st
}
