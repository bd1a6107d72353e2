package zendesktest

import (
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/threadlift/threadlift/zendesk"
)

// DefaultMaxAttachmentBytes is the upload cap when Config.MaxAttachmentBytes is 0.
const DefaultMaxAttachmentBytes = 50 << 20

// Config configures a Fake. The zero value is a fake that checks no
// credentials, has no tickets, and never limits.
type Config struct {
	// Email and Token are the accepted API-token credentials. If Email,
	// Token and OAuthToken are all empty, authentication is not checked;
	// otherwise a request must carry one of the configured credentials.
	Email, Token string
	// OAuthToken is an accepted Bearer token: the current OAuth access
	// token, until a refresh or ExpireOAuthToken replaces it.
	OAuthToken string
	// OAuthRefreshToken, OAuthClientID and OAuthClientSecret enable
	// POST /oauth/tokens with grant_type=refresh_token: a request with the
	// current refresh token and these client credentials gets a new access
	// token ("fake-access-N") and refresh token; the old ones stop working.
	OAuthRefreshToken, OAuthClientID, OAuthClientSecret string
	// AutoCreateTickets makes every ticket id > 0 exist; otherwise tickets
	// must be added with AddTicket and unknown ones are 404.
	AutoCreateTickets bool
	// RequestsPerMinute limits all requests in fixed one-minute windows;
	// over it: 429 text/plain with Retry-After (seconds to the next
	// window). 0 = unlimited.
	RequestsPerMinute int
	// Latency is added to every request.
	Latency time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Seed seeds the fault RNG (see Faults.Seed).
	Seed int64

	// MaxAttachmentBytes caps an upload (413 above); 0 = 50 MiB.
	MaxAttachmentBytes int64
	// AttachmentTopLevel answers an upload with the attachment at the top
	// level ({id,...}) instead of under "attachment".
	AttachmentTopLevel bool
	// MaxEventsPerRequest answers 413 to an import or events/import with
	// more events; 0 = no limit (the real limit is undocumented).
	MaxEventsPerRequest int
	// MaxBodyBytes answers 413 to a JSON body larger than this; 0 = no limit.
	MaxBodyBytes int64
	// ConflictOnConcurrentWrites answers 409 to a write on a ticket that
	// already has a write in flight (the API asks clients not to change
	// one resource concurrently).
	ConflictOnConcurrentWrites bool
	// Logger logs each request at debug. The zero Logger logs nothing.
	Logger zerolog.Logger
	// AllowedAttachmentTypes, when not empty, lists the content types the
	// attachments endpoint accepts ("image/png", or "image/*"); others get
	// a 422.
	AllowedAttachmentTypes []string

	// Read-only endpoints of verify and check (account.go).

	// Role is the role GET /api/v2/users/me gives the authenticated user:
	// "admin" (default), "agent" or "end-user".
	Role string
	// NoSideConversations answers 403 to every side-conversation endpoint,
	// as an account without the side-conversations add-on does
	// (SetSideConversations changes it at run time).
	NoSideConversations bool
	// RateLimitHeader is the X-Rate-Limit announced while
	// RequestsPerMinute is 0 (nothing enforced); default 700. With
	// RequestsPerMinute set, that is announced.
	RateLimitHeader int
}

// Conversation is a stored side conversation with its events in stored order.
type Conversation struct {
	zendesk.SideConversation
	Events []zendesk.Event `json:"events"`
}

// Attachment is a stored upload: its metadata and the SHA-256 of its bytes.
type Attachment struct {
	zendesk.AttachmentInfo
	SHA256 string `json:"sha256"`
}

// Request is one request as the fake received it.
type Request struct {
	Time      time.Time // arrival, by Config.Now
	Method    string
	Path      string
	Kind      string
	Fault     Fault
	RequestID string
}

// TicketDump is a ticket with its side conversations, as Dump returns it.
type TicketDump struct {
	ID                int64          `json:"id"`
	ExternalID        string         `json:"external_id,omitempty"`
	SideConversations []Conversation `json:"side_conversations"`
}

type ticket struct {
	id         int64
	externalID string
	createdAt  time.Time
	convs      []*Conversation // creation order
}

// Fake is an in-memory Zendesk; it is an http.Handler and safe for
// concurrent use.
type Fake struct {
	cfg Config
	now func() time.Time
	mux *http.ServeMux

	mu          sync.Mutex
	tickets     map[int64]*ticket
	byID        map[string]*Conversation
	attachments map[string]*Attachment
	counts      map[string]int
	log         []Request
	winStart    time.Time
	winCount    int
	faults      Faults
	rng         *rand.Rand
	hook        func(*http.Request) Fault
	writing     map[int64]int // writes in flight per ticket
	conflicts   int
	access      string // current OAuth access token; "" = none accepted
	refreshTok  string // current OAuth refresh token
	refreshes   int    // successful refreshes
	hugeSent    atomic.Int64
	lateCommits atomic.Int64
	lateNote    chan struct{} // closed when a late commit lands (AwaitLateCommits); guarded by mu
	noSC        bool          // Config.NoSideConversations, or SetSideConversations(false)
}

// New returns a Fake configured by cfg.
func New(cfg Config) *Fake {
	f := &Fake{
		cfg:         cfg,
		now:         cfg.Now,
		tickets:     make(map[int64]*ticket),
		byID:        make(map[string]*Conversation),
		attachments: make(map[string]*Attachment),
		counts:      make(map[string]int),
		writing:     make(map[int64]int),
		faults:      Faults{}.withDefaults(),
		rng:         rand.New(rand.NewSource(cfg.Seed)),
		access:      cfg.OAuthToken,
		refreshTok:  cfg.OAuthRefreshToken,
		noSC:        cfg.NoSideConversations,
	}
	if f.now == nil {
		f.now = time.Now
	}
	if f.cfg.MaxAttachmentBytes <= 0 {
		f.cfg.MaxAttachmentBytes = DefaultMaxAttachmentBytes
	}
	f.routes()
	return f
}

// Server is a Fake listening on a loopback port.
type Server struct {
	*Fake
	// URL is the base URL, http://127.0.0.1:PORT.
	URL string
	srv *httptest.Server
}

// NewServer starts a Fake on a loopback listener; it is closed by t.Cleanup.
func NewServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	f := New(cfg)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return &Server{Fake: f, URL: srv.URL, srv: srv}
}

// Close shuts the server down (also done by t.Cleanup).
func (s *Server) Close() { s.srv.Close() }

// CloseClientConnections closes every open connection to the server.
func (s *Server) CloseClientConnections() { s.srv.CloseClientConnections() }

// ClientOptions returns zendesk.Options for this server with the
// configured credentials (OAuth if set, with OAuthRefresh when the fake
// refreshes, else the API token; a placeholder token when the fake checks
// none). The OAuth tokens are the current ones.
func (s *Server) ClientOptions() zendesk.Options {
	o := s.credentials()
	o.BaseURL = s.URL
	return o
}

// credentials are the authentication part of ClientOptions.
func (f *Fake) credentials() zendesk.Options {
	var o zendesk.Options
	f.mu.Lock()
	access, refresh := f.access, f.refreshTok
	f.mu.Unlock()
	switch {
	case f.cfg.OAuthToken != "":
		o.OAuthToken = access
		if f.cfg.OAuthRefreshToken != "" {
			o.OAuthRefresh = &zendesk.OAuthRefresh{RefreshToken: refresh,
				ClientID: f.cfg.OAuthClientID, ClientSecret: f.cfg.OAuthClientSecret}
		}
	case f.cfg.Token != "":
		o.Email, o.Token = f.cfg.Email, f.cfg.Token
	default:
		o.Email, o.Token = "test@example.com", "unchecked"
	}
	return o
}

// AddTicket makes a ticket exist, with an optional external id (not unique).
func (f *Fake) AddTicket(id int64, externalID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.ticketLocked(id, true)
	t.externalID = externalID
}

// ticketLocked returns the ticket, creating it if create or
// AutoCreateTickets; nil if it does not exist.
func (f *Fake) ticketLocked(id int64, create bool) *ticket {
	if id <= 0 {
		return nil
	}
	t := f.tickets[id]
	if t == nil && (create || f.cfg.AutoCreateTickets) {
		t = &ticket{id: id, createdAt: f.now().UTC()}
		f.tickets[id] = t
	}
	return t
}

// TicketIDs returns the ids of the tickets that exist (added, or touched
// with AutoCreateTickets), ascending.
func (f *Fake) TicketIDs() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return sortedIDs(f.tickets)
}

// SideConversations returns copies of a ticket's side conversations in
// creation order, each with its events in stored order.
func (f *Fake) SideConversations(ticketID int64) []Conversation {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tickets[ticketID]
	if t == nil {
		return nil
	}
	out := make([]Conversation, len(t.convs))
	for i, c := range t.convs {
		out[i] = cloneConversation(c)
	}
	return out
}

// Dump returns every ticket with its side conversations, by ticket id.
func (f *Fake) Dump() []TicketDump {
	ids := f.TicketIDs()
	out := make([]TicketDump, 0, len(ids))
	for _, id := range ids {
		f.mu.Lock()
		ext := f.tickets[id].externalID
		f.mu.Unlock()
		scs := f.SideConversations(id)
		if scs == nil {
			scs = []Conversation{}
		}
		out = append(out, TicketDump{ID: id, ExternalID: ext, SideConversations: scs})
	}
	return out
}

// Attachment returns an uploaded attachment by id.
func (f *Fake) Attachment(id string) (Attachment, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.attachments[id]
	if !ok {
		return Attachment{}, false
	}
	return *a, true
}

// RequestCount returns how many requests of a kind arrived ("total": all).
// Kinds: list, create, show, update, reply, import, events_import, events,
// upload, ticket, ticket_search, oauth_token, other. Faulted and rejected
// requests count.
func (f *Fake) RequestCount(kind string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[kind]
}

// Requests returns every request received so far, in arrival order.
func (f *Fake) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.log...)
}

// SetFaults sets fault probabilities and parameters and reseeds the RNG
// (with fs.Seed, or Config.Seed when 0).
func (f *Fake) SetFaults(fs Faults) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = fs.withDefaults()
	seed := fs.Seed
	if seed == 0 {
		seed = f.cfg.Seed
	}
	f.rng = rand.New(rand.NewSource(seed))
}

// SetHook installs a deterministic fault chooser, consulted for every
// request instead of the probabilities; it must not read the body. It runs
// after authentication and the rate limit. Return FaultNone to pass; nil
// removes the hook.
func (f *Fake) SetHook(h func(r *http.Request) Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = h
}

// ServeHTTP serves the API.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.Path; strings.HasSuffix(p, ".json") {
		r.URL.Path = strings.TrimSuffix(p, ".json")
		r.URL.RawPath = ""
	}
	if r.URL.Path == oauthTokensPath {
		f.serveOAuthTokens(w, r)
		return
	}
	in := f.arrive(w, r)
	ok, leave := f.enterWrite(r)
	defer leave()
	if !ok {
		writeJSON(w, http.StatusConflict, map[string]any{"error": "Conflict", "description": "Another write to this ticket is in progress"})
		return
	}
	if !sleep(r, f.cfg.Latency) || !f.admit(w, r, in) {
		return
	}
	fault := f.fault(r, in)
	if f.serveFault(w, r, fault, in.faults) {
		return
	}
	f.mux.ServeHTTP(w, r)
}

// arrival is a request as the fake logged it on arrival.
type arrival struct {
	kind, reqID string
	logIdx      int // in f.log
	limited     bool
	retryIn     time.Duration
	limit       int
	hook        func(*http.Request) Fault
	faults      Faults
	noSC        bool
}

// arrive counts and logs a request and sets the headers every answer
// carries (request id, rate limit).
func (f *Fake) arrive(w http.ResponseWriter, r *http.Request) arrival {
	_, pattern := f.mux.Handler(r)
	in := arrival{kind: patternKinds[pattern], reqID: uuid.NewString()}
	if in.kind == "" {
		in.kind = "other"
	}
	now := f.now()
	f.mu.Lock()
	f.counts[in.kind]++
	f.counts["total"]++
	var remaining int
	in.limit, remaining, in.limited, in.retryIn = f.rateLocked(now)
	in.logIdx = len(f.log)
	f.log = append(f.log, Request{Time: now, Method: r.Method, Path: r.URL.Path, Kind: in.kind, RequestID: in.reqID})
	in.hook, in.faults, in.noSC = f.hook, f.faults, f.noSC
	f.mu.Unlock()

	h := w.Header()
	h.Set("X-Zendesk-Request-Id", in.reqID)
	h.Set("X-Rate-Limit", strconv.Itoa(in.limit))
	h.Set("X-Rate-Limit-Remaining", strconv.Itoa(remaining))
	if in.kind == "list" || in.kind == "ticket_search" || in.kind == "events" {
		h.Set("ratelimit-limit", strconv.Itoa(in.limit))
		h.Set("ratelimit-remaining", strconv.Itoa(remaining))
		h.Set("ratelimit-reset", strconv.Itoa(int(in.retryIn/time.Second)))
	}
	f.cfg.Logger.Debug().Str("method", r.Method).Str("path", r.URL.Path).Str("kind", in.kind).Str("request_id", in.reqID).Msg("request")
	return in
}

// admit answers a request that is not let through: credentials refused
// (401), over the rate limit (429), side conversations disabled (403).
func (f *Fake) admit(w http.ResponseWriter, r *http.Request, in arrival) bool {
	switch {
	case !f.authorized(r):
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "Couldn't authenticate you"})
	case in.limited:
		h := w.Header()
		h.Set("Retry-After", strconv.Itoa(int((in.retryIn+time.Second-1)/time.Second)))
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprintf(w, "Too Many Requests: rate limit of %d requests per minute exceeded\n", in.limit)
	case in.noSC && sideConversationKinds[in.kind]:
		forbidden(w)
	default:
		return true
	}
	return false
}

// fault picks the request's fault (the hook's, else the configured
// rates') and logs it.
func (f *Fake) fault(r *http.Request, in arrival) Fault {
	fault := FaultNone
	if in.hook != nil {
		fault = in.hook(r)
	} else {
		f.mu.Lock()
		fault = f.pickLocked(r)
		f.mu.Unlock()
	}
	if fault != FaultNone {
		f.mu.Lock()
		f.log[in.logIdx].Fault = fault
		f.mu.Unlock()
		f.cfg.Logger.Debug().Str("request_id", in.reqID).Stringer("fault", fault).Msg("fault injected")
	}
	return fault
}

// serveFault answers the request as fault says; false when the request
// is to be served normally (no fault, or only added latency).
func (f *Fake) serveFault(w http.ResponseWriter, r *http.Request, fault Fault, fs Faults) (done bool) {
	h := w.Header()
	switch fault {
	case FaultNone:
		return false
	case Fault500:
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": "InternalServerError", "description": "Something went wrong (injected)"})
	case Fault502:
		h.Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprint(w, "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n")
	case Fault503RetryAfter:
		h.Set("Retry-After", strconv.Itoa(ceilSeconds(fs.RetryAfter)))
		writeText(w, http.StatusServiceUnavailable, "Service Unavailable: database timeout (injected)\n")
	case Fault429, Fault429Date, Fault429NoRetryAfter:
		f.serve429(w, fault, fs)
	case FaultResetBeforeCommit:
		abort(w)
	case FaultLatency:
		return !sleep(r, fs.Latency)
	case Fault301, Fault307:
		code := http.StatusMovedPermanently
		if fault == Fault307 {
			code = http.StatusTemporaryRedirect
		}
		h.Set("Location", strings.TrimRight(fs.RedirectTo, "/")+r.URL.RequestURI())
		writeText(w, code, "<html><body>You are being <a href=\"moved\">redirected</a>.</body></html>")
	case Fault403:
		writeJSON(w, http.StatusForbidden, map[string]any{"error": "Forbidden",
			"description": "You do not have access to this page. Please contact the account owner of this help desk for further help."})
	case FaultLateCommit:
		f.serveLateCommit(r, fs)
	case FaultHugeBody:
		f.serveHugeBody(w, r, fs)
	case FaultCommitThenDrop, FaultSlowAfterCommit:
		f.serveAfterCommit(w, r, fault, fs)
	default:
		return false
	}
	return true
}

// serve429 answers an injected 429: with Retry-After in seconds, as an
// HTTP date, or without one.
func (f *Fake) serve429(w http.ResponseWriter, fault Fault, fs Faults) {
	switch fault {
	case Fault429:
		w.Header().Set("Retry-After", strconv.Itoa(ceilSeconds(fs.RetryAfter)))
	case Fault429Date:
		at := f.now().Add(fs.RetryAfter).Add(time.Second - 1).Truncate(time.Second)
		w.Header().Set("Retry-After", at.UTC().Format(http.TimeFormat))
	}
	writeText(w, http.StatusTooManyRequests, "Too Many Requests (injected)\n")
}

// serveAfterCommit carries the request out, then drops the connection
// (FaultCommitThenDrop) or answers late (FaultSlowAfterCommit).
func (f *Fake) serveAfterCommit(w http.ResponseWriter, r *http.Request, fault Fault, fs Faults) {
	rec := httptest.NewRecorder()
	f.mux.ServeHTTP(rec, r)
	if fault == FaultCommitThenDrop {
		abort(w)
		return
	}
	if !sleep(r, fs.Slow) {
		return
	}
	h := w.Header()
	for k, v := range rec.Header() {
		h[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// enterWrite marks a write on the request's ticket as in flight for the
// concurrent-write check; it returns false if another one is, and a
// function that ends the mark.
func (f *Fake) enterWrite(r *http.Request) (ok bool, leave func()) {
	if !f.cfg.ConflictOnConcurrentWrites || (r.Method != http.MethodPost && r.Method != http.MethodPut) {
		return true, func() {}
	}
	tid := ticketIDFromPath(r.URL.Path)
	if tid <= 0 {
		return true, func() {}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.writing[tid] > 0 {
		f.conflicts++
		return false, func() {}
	}
	f.writing[tid]++
	return true, func() {
		f.mu.Lock()
		f.writing[tid]--
		f.mu.Unlock()
	}
}

// Conflicts returns how many writes got 409 because another write on the
// same ticket was in flight (Config.ConflictOnConcurrentWrites).
func (f *Fake) Conflicts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.conflicts
}

// ticketIDFromPath extracts {id} from /api/v2/tickets/{id}/..., else 0.
func ticketIDFromPath(p string) int64 {
	rest, ok := strings.CutPrefix(p, "/api/v2/tickets/")
	if !ok {
		return 0
	}
	seg, _, _ := strings.Cut(rest, "/")
	id, err := strconv.ParseInt(seg, 10, 64)
	if err != nil {
		return 0
	}
	return id
}

// rateLocked counts the request in the current one-minute window.
func (f *Fake) rateLocked(now time.Time) (limit, remaining int, limited bool, reset time.Duration) {
	start := now.Truncate(time.Minute)
	if !start.Equal(f.winStart) {
		f.winStart, f.winCount = start, 0
	}
	f.winCount++
	reset = start.Add(time.Minute).Sub(now)
	limit = f.cfg.RequestsPerMinute
	if limit <= 0 {
		limit = 700 // unlimited: report a plausible ceiling, never enforce
		if f.cfg.RateLimitHeader > 0 {
			limit = f.cfg.RateLimitHeader
		}
		return limit, max(0, limit-f.winCount), false, reset
	}
	return limit, max(0, limit-f.winCount), f.winCount > limit, reset
}

func (f *Fake) authorized(r *http.Request) bool {
	c := f.cfg
	if c.Email == "" && c.Token == "" && c.OAuthToken == "" && c.OAuthRefreshToken == "" {
		return true
	}
	auth := r.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(auth, " ")
	switch strings.ToLower(scheme) {
	case "basic":
		if c.Token == "" {
			return false
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
		if err != nil {
			return false
		}
		want := c.Email + "/token:" + c.Token
		return subtle.ConstantTimeCompare(raw, []byte(want)) == 1
	case "bearer":
		f.mu.Lock()
		access := f.access
		f.mu.Unlock()
		return access != "" && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(cred)), []byte(access)) == 1
	}
	return false
}

// sleep waits d or until the client goes away; false if it went away.
func sleep(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// abort closes the connection without a response.
func abort(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

func ceilSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}

func cloneConversation(c *Conversation) Conversation {
	out := Conversation{SideConversation: c.SideConversation}
	out.ExternalIDs = cloneMap(c.ExternalIDs)
	out.Participants = append([]zendesk.Participant(nil), c.Participants...)
	out.Events = make([]zendesk.Event, len(c.Events))
	for i, e := range c.Events {
		out.Events[i] = cloneEvent(e)
	}
	return out
}

func cloneEvent(e zendesk.Event) zendesk.Event {
	if e.Actor != nil {
		a := *e.Actor
		e.Actor = &a
	}
	if e.Message != nil {
		m := *e.Message
		if m.From != nil {
			p := *m.From
			m.From = &p
		}
		m.To = append([]zendesk.Participant(nil), m.To...)
		m.ExternalIDs = cloneMap(m.ExternalIDs)
		m.Attachments = append([]zendesk.AttachmentInfo(nil), m.Attachments...)
		e.Message = &m
	}
	return e
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
