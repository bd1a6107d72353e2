package zendesk_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/threadlift/threadlift/zendesk"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

const (
	testEmail = "migrations@example.com"
	testToken = "s3cr3t-T0KEN-value"
)

func newServer(t testing.TB, cfg zendesktest.Config) *zendesktest.Server {
	t.Helper()
	if cfg.Email == "" && cfg.Token == "" && cfg.OAuthToken == "" {
		cfg.Email, cfg.Token = testEmail, testToken
	}
	cfg.AutoCreateTickets = true
	return zendesktest.NewServer(t, cfg)
}

func newClient(t testing.TB, srv *zendesktest.Server, mod func(*zendesk.Options)) *zendesk.Client {
	t.Helper()
	opts := srv.ClientOptions()
	if mod != nil {
		mod(&opts)
	}
	c, err := zendesk.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// bubbleClient is a Client of h through zendesktest.Transport (no
// socket), for tests whose time is virtual (synctest.Test): their waits
// are asserted exactly, as no real time passes.
func bubbleClient(t *testing.T, h http.Handler, mod func(*zendesk.Options)) *zendesk.Client {
	t.Helper()
	opts := zendesk.Options{BaseURL: "http://127.0.0.1", Email: testEmail, Token: testToken,
		HTTPClient: &http.Client{Transport: zendesktest.Transport(h)}}
	if mod != nil {
		mod(&opts)
	}
	c, err := zendesk.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// bubbleFake is a fake for bubbleClient, as newServer configures it.
func bubbleFake() *zendesktest.Fake {
	return zendesktest.New(zendesktest.Config{Email: testEmail, Token: testToken, AutoCreateTickets: true})
}

// bubbleReq is importReq dated an hour ago: a bubble's clock starts in
// 2000, before importReq's events, which the fake would refuse as future.
func bubbleReq(key string, events int) *zendesk.ImportRequest {
	req := importReq(key, events)
	for i := range req.Events {
		req.Events[i].CreatedAt = time.Now().Add(time.Duration(i-events) * time.Minute)
	}
	return req
}

var t0 = time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)

func event(i int, key string) zendesk.ImportEvent {
	return zendesk.ImportEvent{
		CreatedAt: t0.Add(time.Duration(i) * time.Minute),
		Message: zendesk.Message{
			Subject:     "Printer on fire",
			Body:        fmt.Sprintf("message %d", i),
			From:        &zendesk.Participant{Email: "alice@example.com", Name: "Alice"},
			To:          []zendesk.Participant{{Email: "bob@example.com"}, {Email: "carol@example.com"}},
			ExternalIDs: map[string]string{zendesk.MessageKeyField: fmt.Sprintf("%s-m%d", key, i)},
		},
	}
}

func importReq(key string, events int) *zendesk.ImportRequest {
	req := &zendesk.ImportRequest{SideConversation: zendesk.ImportSideConversation{
		Subject:     "Printer on fire",
		State:       "closed",
		ExternalIDs: map[string]string{zendesk.ThreadKeyField: key},
	}}
	for i := range events {
		req.Events = append(req.Events, event(i, key))
	}
	return req
}

func TestImportThenListFindsThreadKey(t *testing.T) {
	srv := newServer(t, zendesktest.Config{})
	c := newClient(t, srv, nil)
	ctx := t.Context()

	resp, err := c.Import(ctx, 12, importReq("thread-1@example.com", 3))
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if resp.SideConversation == nil || resp.SideConversation.ID == "" {
		t.Fatalf("Import returned no side conversation id: %+v", resp)
	}
	scs, evs, err := c.ListSideConversations(ctx, 12)
	if err != nil {
		t.Fatalf("ListSideConversations: %v", err)
	}
	if len(scs) != 1 {
		t.Fatalf("ListSideConversations = %d side conversations, want 1", len(scs))
	}
	sc := scs[0]
	if got := sc.ExternalIDs[zendesk.ThreadKeyField]; got != "thread-1@example.com" {
		t.Errorf("thread key = %q, want thread-1@example.com", got)
	}
	if sc.ID != resp.SideConversation.ID || sc.State != "closed" || sc.TicketID != 12 {
		t.Errorf("listed %+v, want id %s, state closed, ticket 12", sc, resp.SideConversation.ID)
	}
	var keys []string
	for _, e := range evs {
		if e.SideConversationID != sc.ID {
			t.Errorf("event %s belongs to %s, want %s", e.ID, e.SideConversationID, sc.ID)
		}
		keys = append(keys, e.Message.ExternalIDs[zendesk.MessageKeyField])
	}
	want := []string{"thread-1@example.com-m0", "thread-1@example.com-m1", "thread-1@example.com-m2"}
	if d := cmp.Diff(want, keys); d != "" {
		t.Errorf("message keys (-want +got):\n%s", d)
	}
	if !evs[1].CreatedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("event created_at = %v, want %v", evs[1].CreatedAt, t0.Add(time.Minute))
	}
}

func TestImportEventsAppends(t *testing.T) {
	srv := newServer(t, zendesktest.Config{})
	c := newClient(t, srv, nil)
	ctx := t.Context()
	resp, err := c.Import(ctx, 7, importReq("k", 2))
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	id := resp.SideConversation.ID
	more := &zendesk.EventsImportRequest{Events: []zendesk.ImportEvent{event(2, "k"), event(3, "k")}}
	if _, err := c.ImportEvents(ctx, 7, id, more); err != nil {
		t.Fatalf("ImportEvents: %v", err)
	}
	show, err := c.ShowSideConversation(ctx, 7, id)
	if err != nil {
		t.Fatalf("ShowSideConversation: %v", err)
	}
	var bodies []string
	for _, e := range show.Events {
		bodies = append(bodies, e.Message.Body)
	}
	if d := cmp.Diff([]string{"message 0", "message 1", "message 2", "message 3"}, bodies); d != "" {
		t.Errorf("events after events/import (-want +got):\n%s", d)
	}
	if got := srv.SideConversations(7); len(got) != 1 || len(got[0].Events) != 4 {
		t.Errorf("fake holds %d side conversations, want 1 with 4 events", len(got))
	}
	// events/import on a side conversation that does not exist: 404, not retryable.
	_, err = c.ImportEvents(ctx, 7, "00000000-0000-0000-0000-000000000000", more)
	if !zendesk.IsStatus(err, http.StatusNotFound) {
		t.Fatalf("ImportEvents(unknown id) = %v, want 404", err)
	}
	if retry, _ := zendesk.Retryable(err); retry {
		t.Errorf("Retryable(404) = true, want false")
	}
}

func TestListPaginatesOverHundred(t *testing.T) {
	srv := newServer(t, zendesktest.Config{})
	c := newClient(t, srv, nil)
	ctx := t.Context()
	const n = 230
	for i := range n {
		if _, err := c.Import(ctx, 5, importReq(fmt.Sprintf("t%03d", i), 2)); err != nil {
			t.Fatalf("Import %d: %v", i, err)
		}
	}
	before := srv.RequestCount("list")
	scs, evs, err := c.ListSideConversations(ctx, 5)
	if err != nil {
		t.Fatalf("ListSideConversations: %v", err)
	}
	if len(scs) != n || len(evs) != 2*n {
		t.Fatalf("ListSideConversations = %d side conversations, %d events; want %d, %d", len(scs), len(evs), n, 2*n)
	}
	if got := srv.RequestCount("list") - before; got != 3 {
		t.Errorf("list requests = %d, want 3 pages", got)
	}
	seen := map[string]bool{}
	for i, sc := range scs {
		k := sc.ExternalIDs[zendesk.ThreadKeyField]
		if want := fmt.Sprintf("t%03d", i); k != want {
			t.Errorf("side conversation %d key = %q, want %q", i, k, want)
		}
		seen[sc.ID] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct ids, want %d", len(seen), n)
	}
	if st := c.Stats(); st.Requests[zendesk.KindList] != 3 || st.Requests[zendesk.KindImport] != n || st.Requests["total"] != n+3 {
		t.Errorf("Stats().Requests = %v, want list 3, import %d, total %d", st.Requests, n, n+3)
	}
}

func TestValidationErrorDecoded(t *testing.T) {
	srv := newServer(t, zendesktest.Config{})
	c := newClient(t, srv, nil)
	req := importReq("k", 1)
	req.SideConversation.Subject = ""
	req.Events[0].CreatedAt = time.Now().Add(time.Hour)
	_, err := c.Import(t.Context(), 12, req)
	var ae *zendesk.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("Import = %v, want *APIError", err)
	}
	if ae.Status != 422 || ae.Code != "RecordInvalid" || ae.Method != "POST" || ae.Path != "/api/v2/tickets/12/side_conversations/import" {
		t.Errorf("APIError = %+v", ae)
	}
	var details map[string]json.RawMessage
	if err := json.Unmarshal(ae.Details, &details); err != nil {
		t.Fatalf("Details %s: %v", ae.Details, err)
	}
	for _, k := range []string{"side_conversation.subject", "events[0].created_at"} {
		if _, ok := details[k]; !ok {
			t.Errorf("Details lacks %q: %s", k, ae.Details)
		}
	}
	reqs := srv.Requests()
	if ae.RequestID == "" || ae.RequestID != reqs[len(reqs)-1].RequestID {
		t.Errorf("RequestID = %q, want the server's %q", ae.RequestID, reqs[len(reqs)-1].RequestID)
	}
	msg := err.Error()
	for _, want := range []string{"POST /api/v2/tickets/12/side_conversations/import: 422 RecordInvalid", "side_conversation.subject", "(request id " + ae.RequestID + ")"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Error() = %q, want it to contain %q", msg, want)
		}
	}
	if retry, _ := zendesk.Retryable(err); retry {
		t.Error("Retryable(422) = true")
	}
	if zendesk.OutcomeUnknown(err) {
		t.Error("OutcomeUnknown(422) = true")
	}
	if len(srv.SideConversations(12)) != 0 {
		t.Error("a rejected import was stored")
	}
}

// TestRetryAfterClosesGate checks that after one caller gets a 429 (or a
// 503 with Retry-After), other callers send nothing until the window ends.
// TestRetryAfterClosesGate: a Retry-After (seconds or an HTTP date)
// closes the gate for every caller: two concurrent callers reach the
// server only once the window is over. Virtual time.
func TestRetryAfterClosesGate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fault  zendesktest.Fault
		status int
	}{
		{"429 seconds", zendesktest.Fault429, 429},
		{"429 http date", zendesktest.Fault429Date, 429},
		{"503 retry-after", zendesktest.Fault503RetryAfter, 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				srv := bubbleFake()
				srv.SetFaults(zendesktest.Faults{RetryAfter: time.Second})
				var mu sync.Mutex
				first := true
				srv.SetHook(func(r *http.Request) zendesktest.Fault {
					mu.Lock()
					defer mu.Unlock()
					if first {
						first = false
						return tc.fault
					}
					return zendesktest.FaultNone
				})
				c := bubbleClient(t, srv, nil)
				ctx := t.Context()
				_, err := c.Import(ctx, 1, bubbleReq("a", 1))
				var rl *zendesk.RateLimitError
				if !errors.As(err, &rl) {
					t.Fatalf("Import = %v, want *RateLimitError", err)
				}
				if rl.Status != tc.status || rl.RetryAfter != time.Second {
					t.Errorf("RateLimitError status %d, RetryAfter %v; want %d, 1s", rl.Status, rl.RetryAfter, tc.status)
				}
				if retry, wait := zendesk.Retryable(err); !retry || wait != rl.RetryAfter {
					t.Errorf("Retryable = %v, %v; want true, %v", retry, wait, rl.RetryAfter)
				}
				if !zendesk.IsStatus(err, tc.status) {
					t.Errorf("IsStatus(err, %d) = false", tc.status)
				}
				limited := srv.Requests()[0]

				// Two more callers, concurrently, while the gate is closed.
				var wg sync.WaitGroup
				errs := make([]error, 2)
				for i := range 2 {
					wg.Go(func() {
						_, errs[i] = c.Import(ctx, 1, bubbleReq(fmt.Sprintf("b%d", i), 1))
					})
				}
				wg.Wait()
				for i, err := range errs {
					if err != nil {
						t.Fatalf("caller %d after the window: %v", i, err)
					}
				}
				reqs := srv.Requests()
				if len(reqs) != 3 {
					t.Fatalf("server saw %d requests, want 3", len(reqs))
				}
				// Time is virtual: no slack for a late clock. (After a 429
				// the client also adopts 90% of X-Rate-Limit, so a caller
				// may wait a limiter step more.)
				for _, r := range reqs[1:] {
					if gap := r.Time.Sub(limited.Time); gap < time.Second {
						t.Errorf("a request arrived %v after the %d, inside the 1s Retry-After window", gap, tc.status)
					}
				}
				st := c.Stats()
				if tc.status == 429 && st.RateLimited != 1 {
					t.Errorf("Stats().RateLimited = %d, want 1", st.RateLimited)
				}
			})
		})
	}
}

func TestRateLimitWithoutRetryAfterDefaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := bubbleFake()
		srv.SetHook(func(*http.Request) zendesktest.Fault { return zendesktest.Fault429NoRetryAfter })
		c := bubbleClient(t, srv, nil)
		_, err := c.Import(t.Context(), 1, bubbleReq("a", 1))
		var rl *zendesk.RateLimitError
		if !errors.As(err, &rl) || rl.RetryAfter != zendesk.DefaultRetryAfter429 {
			t.Fatalf("Import = %v, want *RateLimitError with RetryAfter %v", err, zendesk.DefaultRetryAfter429)
		}
		if until := time.Until(c.Gate().Until()); until != zendesk.DefaultRetryAfter429 {
			t.Errorf("gate opens in %v, want %v", until, zendesk.DefaultRetryAfter429)
		}
		// Another caller must not reach the server while the gate is closed.
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		_, err = c.GetTicket(ctx, 1)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("GetTicket during the window = %v, want context.DeadlineExceeded", err)
		}
		if retry, _ := zendesk.Retryable(err); retry {
			t.Errorf("Retryable(caller's deadline) = true")
		}
		if n := srv.RequestCount("total"); n != 1 {
			t.Errorf("server saw %d requests, want 1", n)
		}
	})
}

func TestErrorBodies(t *testing.T) {
	for _, tc := range []struct {
		name, contentType, body string
		status                  int
		wantCode, wantDesc      string
	}{
		{"text/plain 429", "text/plain", "Too Many Requests\n", 429, "", "Too Many Requests"},
		{"html 502", "text/html", "<html><head><title>502 Bad Gateway</title></head><body><h1>502</h1></body></html>", 502, "", "502 Bad Gateway"},
		{"html without title", "text/html", "<html><body><p>Down &amp; out</p></body></html>", 503, "", "Down & out"},
		{"json string error", "application/json", `{"error":"Couldn't authenticate you"}`, 401, "Couldn't authenticate you", ""},
		{"json object error", "application/json", `{"error":{"title":"Forbidden","message":"You do not have access"}}`, 403, "Forbidden", "You do not have access"},
		{"json errors array", "application/json", `{"errors":[{"code":"TooLarge","title":"Too large","detail":"Body too large"}]}`, 413, "TooLarge", "Body too large"},
		{"empty", "", "", 500, "", ""},
		{"garbage json", "application/json", `{"error":`, 500, "", `{"error":`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Zendesk-Request-Id", "req-1")
				w.Header().Set("X-Zendesk-API-Warn", "dropped key")
				if tc.contentType != "" {
					w.Header().Set("Content-Type", tc.contentType)
				}
				if tc.status == 429 {
					w.Header().Set("Retry-After", "0")
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			defer hs.Close()
			c, err := zendesk.New(zendesk.Options{BaseURL: hs.URL, Email: testEmail, Token: testToken})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.GetTicket(t.Context(), 1)
			var ae *zendesk.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("GetTicket = %v, want *APIError", err)
			}
			if ae.Status != tc.status || ae.Code != tc.wantCode || ae.Description != tc.wantDesc {
				t.Errorf("APIError status %d code %q desc %q; want %d %q %q", ae.Status, ae.Code, ae.Description, tc.status, tc.wantCode, tc.wantDesc)
			}
			if ae.RequestID != "req-1" || ae.APIWarn != "dropped key" || ae.Body != tc.body {
				t.Errorf("APIError request id %q, warn %q, body %q", ae.RequestID, ae.APIWarn, ae.Body)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("GET /api/v2/tickets/1: %d", tc.status)) {
				t.Errorf("Error() = %q", err.Error())
			}
		})
	}
}

func TestBodyExcerptIsBounded(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		io.WriteString(w, strings.Repeat("é", 2000))
	}))
	defer hs.Close()
	c, _ := zendesk.New(zendesk.Options{BaseURL: hs.URL, Email: testEmail, Token: testToken})
	_, err := c.GetTicket(t.Context(), 1)
	var ae *zendesk.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("GetTicket = %v", err)
	}
	if len(ae.Body) > 512 || len(ae.Body) < 500 || !strings.HasPrefix(ae.Body, "é") || strings.ToValidUTF8(ae.Body, "?") != ae.Body {
		t.Errorf("Body excerpt has %d bytes (valid UTF-8: %v), want ≤ 512", len(ae.Body), strings.ToValidUTF8(ae.Body, "?") == ae.Body)
	}
	if len(err.Error()) > 600 {
		t.Errorf("Error() is %d bytes long", len(err.Error()))
	}
}

func TestNewValidatesBaseURL(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://acme.zendesk.com", true},
		{"https://acme.zendesk.com/", true},
		{"https://acme.zendesk.com/api/v2", true},
		{"http://acme.zendesk.com", false},
		{"http://10.0.0.1:8080", false},
		{"http://127.0.0.1:8089", true},
		{"http://127.9.9.9", true},
		{"http://[::1]:8089", true},
		{"http://localhost:8089", true},
		{"HTTP://LOCALHOST", true},
		{"http://localhost.evil.com", false},
		{"ftp://acme.zendesk.com", false},
		{"acme.zendesk.com", false},
		{"", false},
		{"https://user:" + testToken + "@acme.zendesk.com", false},
		{"https://acme.zendesk.com?x=1", false},
	} {
		_, err := zendesk.New(zendesk.Options{BaseURL: tc.url, Email: testEmail, Token: "tok"})
		if (err == nil) != tc.ok {
			t.Errorf("New(BaseURL %q) error = %v, want ok=%v", tc.url, err, tc.ok)
		}
		if err != nil && strings.Contains(err.Error(), testToken) {
			t.Errorf("New(BaseURL %q) error %q contains the password", tc.url, err)
		}
	}
	for _, tc := range []struct {
		name string
		opts zendesk.Options
	}{
		{"no credentials", zendesk.Options{BaseURL: "https://a.zendesk.com"}},
		{"token without email", zendesk.Options{BaseURL: "https://a.zendesk.com", Token: "t"}},
		{"both", zendesk.Options{BaseURL: "https://a.zendesk.com", Email: "e", Token: "t", OAuthToken: "o"}},
		{"newline in token", zendesk.Options{BaseURL: "https://a.zendesk.com", Email: "e", Token: "t\r\nX: y"}},
	} {
		if _, err := zendesk.New(tc.opts); err == nil {
			t.Errorf("New(%s) = nil error", tc.name)
		}
	}
}

func TestAuth(t *testing.T) {
	t.Run("basic", func(t *testing.T) {
		srv := newServer(t, zendesktest.Config{Email: testEmail, Token: testToken})
		if _, err := newClient(t, srv, nil).GetTicket(t.Context(), 3); err != nil {
			t.Fatalf("GetTicket with the right token: %v", err)
		}
		_, err := newClient(t, srv, func(o *zendesk.Options) { o.Token = "wrong" }).GetTicket(t.Context(), 3)
		var ae *zendesk.APIError
		if !errors.As(err, &ae) || ae.Status != 401 || ae.Code != "Couldn't authenticate you" {
			t.Fatalf("GetTicket with a wrong token = %v, want 401", err)
		}
		if retry, _ := zendesk.Retryable(err); retry {
			t.Error("Retryable(401) = true")
		}
		_, err = newClient(t, srv, func(o *zendesk.Options) { o.Email, o.Token, o.OAuthToken = "", "", testToken }).GetTicket(t.Context(), 3)
		if !zendesk.IsStatus(err, 401) {
			t.Errorf("Bearer against a token-only server = %v, want 401", err)
		}
	})
	t.Run("bearer", func(t *testing.T) {
		srv := newServer(t, zendesktest.Config{OAuthToken: "oauth-" + testToken})
		if _, err := newClient(t, srv, nil).GetTicket(t.Context(), 3); err != nil {
			t.Fatalf("GetTicket with the right bearer token: %v", err)
		}
		_, err := newClient(t, srv, func(o *zendesk.Options) { o.OAuthToken = "nope" }).GetTicket(t.Context(), 3)
		if !zendesk.IsStatus(err, 401) {
			t.Errorf("GetTicket with a wrong bearer token = %v, want 401", err)
		}
	})
	t.Run("header shape", func(t *testing.T) {
		var got []string
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got = append(got, r.Header.Get("Authorization"))
			io.WriteString(w, `{"ticket":{"id":1}}`)
		}))
		defer hs.Close()
		for _, o := range []zendesk.Options{
			{BaseURL: hs.URL, Email: "a@b.c", Token: "tok"},
			{BaseURL: hs.URL, OAuthToken: "oat"},
		} {
			c, err := zendesk.New(o)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.GetTicket(t.Context(), 1); err != nil {
				t.Fatal(err)
			}
		}
		want := []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("a@b.c/token:tok")), "Bearer oat"}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("Authorization headers (-want +got):\n%s", d)
		}
	})
}

// TestSecretsNeverLeak drives every kind of failure and checks that no
// error string, formatted value or log line holds the token or the
// Authorization header value.
func TestSecretsNeverLeak(t *testing.T) {
	basic := base64.StdEncoding.EncodeToString([]byte(testEmail + "/token:" + testToken))
	var logs bytes.Buffer
	logger := zerolog.New(&logs).Level(zerolog.DebugLevel)

	// A hostile server that echoes the Authorization header everywhere.
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := r.Header.Get("Authorization")
		w.Header().Set("X-Zendesk-API-Warn", "auth was "+a)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(422)
		fmt.Fprintf(w, `{"error":"RecordInvalid %s","description":"got %s","details":{"x":[{"description":"%s"}]}}`, a, a, a)
	}))
	defer echo.Close()

	srv := newServer(t, zendesktest.Config{Email: testEmail, Token: testToken})
	srv.SetFaults(zendesktest.Faults{RetryAfter: time.Second, Slow: 2 * time.Second})
	var mu sync.Mutex
	var next zendesktest.Fault
	srv.SetHook(func(*http.Request) zendesktest.Fault {
		mu.Lock()
		defer mu.Unlock()
		return next
	})
	setFault := func(f zendesktest.Fault) { mu.Lock(); next = f; mu.Unlock() }

	opts := func(base string) zendesk.Options {
		return zendesk.Options{BaseURL: base, Email: testEmail, Token: testToken, Logger: logger, Timeout: 300 * time.Millisecond}
	}
	c, err := zendesk.New(opts(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	record := func(err error) {
		t.Helper()
		if err == nil {
			t.Errorf("expected a failure")
			return
		}
		texts = append(texts, err.Error(), fmt.Sprintf("%v %+v %#v", err, err, err))
		var ae *zendesk.APIError
		if errors.As(err, &ae) {
			texts = append(texts, fmt.Sprintf("%+v %#v", *ae, *ae))
		}
	}
	ctx := t.Context()
	bad := importReq("k", 1)
	bad.SideConversation.Subject = ""
	_, err = c.Import(ctx, 1, bad) // 422
	record(err)
	for _, f := range []zendesktest.Fault{zendesktest.Fault500, zendesktest.Fault502, zendesktest.FaultResetBeforeCommit,
		zendesktest.FaultCommitThenDrop, zendesktest.FaultSlowAfterCommit, zendesktest.Fault429} {
		setFault(f)
		_, err = c.Import(ctx, 1, importReq("k", 1))
		record(err)
		c.Gate().CloseUntil(time.Time{}) // no-op: the gate never shortens
	}
	setFault(zendesktest.FaultNone)
	c.Gate().Wait(ctx) // the 429 closed it
	wrong, _ := zendesk.New(zendesk.Options{BaseURL: srv.URL, Email: testEmail, Token: testToken + "x", Logger: logger})
	_, err = wrong.GetTicket(ctx, 1) // 401
	record(err)
	hostile, _ := zendesk.New(opts(echo.URL))
	_, err = hostile.GetTicket(ctx, 1)
	record(err)
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	refused, _ := zendesk.New(opts(closedURL))
	_, err = refused.GetTicket(ctx, 1) // connection refused
	record(err)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = c.GetTicket(cctx, 1)
	record(err)
	o := opts(srv.URL)
	texts = append(texts, fmt.Sprintf("%v %+v %#v %s", o, o, o, c), fmt.Sprintf("%+v", c))
	texts = append(texts, logs.String())

	if !strings.Contains(logs.String(), `"request_id":"`) || !strings.Contains(logs.String(), `"api_warn":"auth was`) {
		t.Errorf("log output lacks request ids or the API warning:\n%s", logs.String())
	}
	for _, s := range texts {
		for _, secret := range []string{testToken, basic} {
			if strings.Contains(s, secret) {
				t.Errorf("secret leaked in %q", s)
			}
		}
	}
}

func TestRetryableAndOutcome(t *testing.T) {
	type want struct {
		retry, unknown bool
		wait           time.Duration
	}
	api := func(status int) error {
		return fmt.Errorf("wrapped: %w", &zendesk.APIError{Method: "POST", Path: "/x", Status: status})
	}
	cases := map[string]struct {
		err  error
		want want
	}{
		"nil":      {nil, want{}},
		"400":      {api(400), want{}},
		"401":      {api(401), want{}},
		"403":      {api(403), want{}},
		"404":      {api(404), want{}},
		"409":      {api(409), want{retry: true}},
		"413":      {api(413), want{}},
		"422":      {api(422), want{}},
		"500":      {api(500), want{retry: true, unknown: true}},
		"502":      {api(502), want{retry: true, unknown: true}},
		"503":      {api(503), want{retry: true, unknown: true}},
		"504":      {api(504), want{retry: true, unknown: true}},
		"429":      {&zendesk.RateLimitError{APIError: zendesk.APIError{Status: 429}, RetryAfter: 7 * time.Second}, want{retry: true, wait: 7 * time.Second}},
		"503 R-A":  {&zendesk.RateLimitError{APIError: zendesk.APIError{Status: 503}, RetryAfter: 3 * time.Second}, want{retry: true, wait: 3 * time.Second, unknown: true}},
		"canceled": {context.Canceled, want{}},
		"eof sent": {&zendesk.RequestError{Method: "POST", Path: "/x", Sent: true, Err: io.ErrUnexpectedEOF}, want{retry: true, unknown: true}},
		"not sent": {&zendesk.RequestError{Method: "POST", Path: "/x", Err: errors.New("dial tcp: connection refused")}, want{retry: true}},
		"timeout":  {&zendesk.RequestError{Method: "POST", Path: "/x", Sent: true, Err: zendesk.ErrTimeout}, want{retry: true, unknown: true}},
		"other":    {errors.New("json: unsupported type"), want{}},
	}
	for name, tc := range cases {
		retry, wait := zendesk.Retryable(tc.err)
		got := want{retry: retry, wait: wait, unknown: zendesk.OutcomeUnknown(tc.err)}
		if got != tc.want {
			t.Errorf("%s: Retryable, OutcomeUnknown = %+v, want %+v", name, got, tc.want)
		}
	}
}

// TestNetworkFailures checks the classification of real failures against
// the fake, and what each left behind on the server.
func TestNetworkFailures(t *testing.T) {
	for _, tc := range []struct {
		fault         zendesktest.Fault
		retry         bool
		unknown       bool
		stored        int
		wantTimeout   bool
		wantAPIStatus int
	}{
		{fault: zendesktest.FaultResetBeforeCommit, retry: true, unknown: true, stored: 0},
		{fault: zendesktest.FaultCommitThenDrop, retry: true, unknown: true, stored: 1},
		{fault: zendesktest.FaultSlowAfterCommit, retry: true, unknown: true, stored: 1, wantTimeout: true},
		{fault: zendesktest.Fault500, retry: true, unknown: true, stored: 0, wantAPIStatus: 500},
		{fault: zendesktest.Fault502, retry: true, unknown: true, stored: 0, wantAPIStatus: 502},
		{fault: zendesktest.FaultLatency, stored: 1},
	} {
		t.Run(tc.fault.String(), func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, zendesktest.Config{})
			srv.SetFaults(zendesktest.Faults{Slow: 3 * time.Second, Latency: 50 * time.Millisecond})
			srv.SetHook(func(r *http.Request) zendesktest.Fault {
				if r.Method == http.MethodPost {
					return tc.fault
				}
				return zendesktest.FaultNone
			})
			c := newClient(t, srv, func(o *zendesk.Options) { o.Timeout = 300 * time.Millisecond })
			_, err := c.Import(t.Context(), 9, importReq("k", 2))
			if tc.fault == zendesktest.FaultLatency {
				if err != nil {
					t.Fatalf("Import with latency: %v", err)
				}
			} else if err == nil {
				t.Fatalf("Import = nil error, want a failure")
			}
			retry, _ := zendesk.Retryable(err)
			if retry != tc.retry || zendesk.OutcomeUnknown(err) != tc.unknown {
				t.Errorf("Retryable = %v, OutcomeUnknown = %v; want %v, %v (err %v)", retry, zendesk.OutcomeUnknown(err), tc.retry, tc.unknown, err)
			}
			if got := errors.Is(err, zendesk.ErrTimeout); got != tc.wantTimeout {
				t.Errorf("errors.Is(err, ErrTimeout) = %v, want %v (%v)", got, tc.wantTimeout, err)
			}
			if tc.wantAPIStatus != 0 && !zendesk.IsStatus(err, tc.wantAPIStatus) {
				t.Errorf("IsStatus(%d) false for %v", tc.wantAPIStatus, err)
			}
			if tc.wantAPIStatus == 0 && err != nil {
				var re *zendesk.RequestError
				if !errors.As(err, &re) || !re.Sent {
					t.Errorf("err = %#v, want *RequestError with Sent", err)
				}
			}
			if got := len(srv.SideConversations(9)); got != tc.stored {
				t.Errorf("fake stored %d side conversations, want %d", got, tc.stored)
			}
		})
	}
	t.Run("connection refused", func(t *testing.T) {
		hs := httptest.NewServer(http.NotFoundHandler())
		u := hs.URL
		hs.Close()
		c, _ := zendesk.New(zendesk.Options{BaseURL: u, Email: testEmail, Token: testToken})
		_, err := c.Import(t.Context(), 1, importReq("k", 1))
		retry, _ := zendesk.Retryable(err)
		if !retry || zendesk.OutcomeUnknown(err) {
			t.Errorf("refused: Retryable %v OutcomeUnknown %v, want true, false (%v)", retry, zendesk.OutcomeUnknown(err), err)
		}
		if c.Stats().Responses[0] != 1 {
			t.Errorf("Stats().Responses[0] = %d, want 1", c.Stats().Responses[0])
		}
	})
	t.Run("canceled while in flight", func(t *testing.T) {
		srv := newServer(t, zendesktest.Config{Latency: 2 * time.Second})
		c := newClient(t, srv, nil)
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		_, err := c.Import(ctx, 1, importReq("k", 1))
		retry, _ := zendesk.Retryable(err)
		if retry || !zendesk.OutcomeUnknown(err) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("caller deadline in flight: Retryable %v OutcomeUnknown %v (%v); want false, true", retry, zendesk.OutcomeUnknown(err), err)
		}
		cctx, ccancel := context.WithCancel(t.Context())
		ccancel()
		_, err = c.Import(cctx, 1, importReq("k", 1))
		if retry, _ := zendesk.Retryable(err); retry || zendesk.OutcomeUnknown(err) || !errors.Is(err, context.Canceled) {
			t.Errorf("canceled before sending: Retryable %v OutcomeUnknown %v (%v); want false, false", retry, zendesk.OutcomeUnknown(err), err)
		}
	})
}

// patternReader yields n deterministic pseudo-random bytes without holding them.
type patternReader struct {
	n, off int64
	x      uint64
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	if rem := p.n - p.off; int64(len(b)) > rem {
		b = b[:rem]
	}
	for i := range b {
		p.x = p.x*6364136223846793005 + 1442695040888963407
		b[i] = byte(p.x >> 56)
	}
	p.off += int64(len(b))
	return len(b), nil
}

func TestUploadStreams(t *testing.T) {
	const size = 64 << 20
	srv := newServer(t, zendesktest.Config{MaxAttachmentBytes: 128 << 20})
	c := newClient(t, srv, func(o *zendesk.Options) { o.Timeout = 2 * time.Minute })

	h := sha256.New()
	if _, err := io.Copy(h, &patternReader{n: size}); err != nil {
		t.Fatal(err)
	}
	wantSum := hex.EncodeToString(h.Sum(nil))

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	info, err := c.UploadAttachment(t.Context(), `report "Q1".bin`, "application/octet-stream", &patternReader{n: size})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatalf("UploadAttachment: %v", err)
	}
	if info.Size != size || !strings.HasPrefix(info.ID, "att-") || info.FileName != `report "Q1".bin` {
		t.Errorf("UploadAttachment = %+v, want size %d, id att-..., the file name", info, size)
	}
	stored, ok := srv.Attachment(info.ID)
	if !ok || stored.SHA256 != wantSum || stored.Size != size {
		t.Errorf("stored attachment %+v, want sha256 %s", stored, wantSum)
	}
	// Client and server both run in this process: if either buffered the
	// file, at least 64 MiB would have been allocated.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/2 {
		t.Errorf("uploading 64 MiB allocated %d MiB", alloc>>20)
	} else {
		t.Logf("uploading 64 MiB allocated %.1f MiB", float64(alloc)/(1<<20))
	}
	if c.Stats().Requests[zendesk.KindUpload] != 1 {
		t.Errorf("Stats upload = %d", c.Stats().Requests[zendesk.KindUpload])
	}
}

func TestUploadShapesAndLimits(t *testing.T) {
	for _, top := range []bool{false, true} {
		srv := newServer(t, zendesktest.Config{AttachmentTopLevel: top, MaxAttachmentBytes: 1 << 20})
		c := newClient(t, srv, nil)
		info, err := c.UploadAttachment(t.Context(), "a.txt", "text/plain", strings.NewReader("hello"))
		if err != nil {
			t.Fatalf("top=%v: UploadAttachment: %v", top, err)
		}
		if info.ID == "" || info.Size != 5 || info.ContentType != "text/plain" {
			t.Errorf("top=%v: UploadAttachment = %+v", top, info)
		}
		// The id is usable in an import.
		req := importReq("k", 1)
		req.Events[0].Message.AttachmentIDs = []string{info.ID}
		resp, err := c.Import(t.Context(), 1, req)
		if err != nil {
			t.Fatalf("Import with attachment: %v", err)
		}
		got := srv.SideConversations(1)[0].Events[0].Message.Attachments
		if len(got) != 1 || got[0].ID != info.ID || got[0].Size != 5 {
			t.Errorf("stored attachments %+v", got)
		}
		_ = resp
		_, err = c.UploadAttachment(t.Context(), "big.bin", "", &patternReader{n: 2 << 20})
		if !zendesk.IsStatus(err, http.StatusRequestEntityTooLarge) {
			t.Errorf("top=%v: oversized upload = %v, want 413", top, err)
		}
	}
}

func TestNextPageMustStayOnHost(t *testing.T) {
	var other int
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { other++ }))
	defer elsewhere.Close()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"side_conversations":[{"id":"a","subject":"s"}],"next_page":%q}`, elsewhere.URL+"/api/v2/tickets/1/side_conversations.json?page=2")
	}))
	defer hs.Close()
	c, _ := zendesk.New(zendesk.Options{BaseURL: hs.URL, Email: testEmail, Token: testToken})
	_, _, err := c.ListSideConversations(t.Context(), 1)
	if err == nil || !strings.Contains(err.Error(), "another host") {
		t.Errorf("ListSideConversations = %v, want a refusal", err)
	}
	if other != 0 {
		t.Errorf("the client followed next_page to another host")
	}
}

func TestLenientDecoding(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"side_conversations":[{"id":"a","subject":"s","participants":[{"user_id":null,"name":null,"email":""},{"support_group_id":123,"support_agent_id":"45"}]}],
		"events":[{"id":"e","side_conversation_id":"a","via":{"channel":"web"},"message":{"attachments":[{"id":987,"file_name":"x.png","size":"12"}],"from":{"user_id":"35436"}}}],"next_page":null}`)
	}))
	defer hs.Close()
	c, _ := zendesk.New(zendesk.Options{BaseURL: hs.URL, Email: testEmail, Token: testToken})
	scs, evs, err := c.ListSideConversations(t.Context(), 1)
	if err != nil {
		t.Fatalf("ListSideConversations: %v", err)
	}
	if p := scs[0].Participants[1]; p.SupportGroupID != "123" || p.SupportAgentID != "45" {
		t.Errorf("participant = %+v", p)
	}
	m := evs[0].Message
	if evs[0].Via != "web" {
		t.Errorf("via = %q, want web", evs[0].Via)
	}
	if m.Attachments[0].ID != "987" || m.Attachments[0].Size != 12 || m.Attachments[0].Name != "x.png" || m.From.UserID != 35436 {
		t.Errorf("message = %+v, attachment %+v", m, m.Attachments[0])
	}
}

func TestTickets(t *testing.T) {
	srv := zendesktest.NewServer(t, zendesktest.Config{})
	srv.AddTicket(1, "ext-a")
	srv.AddTicket(2, "ext-b")
	srv.AddTicket(3, "ext-a")
	c := newClient(t, srv, nil)
	tk, err := c.GetTicket(t.Context(), 2)
	if err != nil || tk.ID != 2 || tk.ExternalID != "ext-b" {
		t.Fatalf("GetTicket(2) = %+v, %v", tk, err)
	}
	if _, err := c.GetTicket(t.Context(), 99); !zendesk.IsStatus(err, 404) {
		t.Errorf("GetTicket(99) = %v, want 404", err)
	}
	ts, err := c.TicketsByExternalID(t.Context(), "ext-a")
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, tk := range ts {
		ids = append(ids, tk.ID)
	}
	if d := cmp.Diff([]int64{1, 3}, ids); d != "" {
		t.Errorf("TicketsByExternalID (-want +got):\n%s", d)
	}
	if _, err := c.Import(t.Context(), 99, importReq("k", 1)); !zendesk.IsStatus(err, 404) {
		t.Errorf("Import on a missing ticket = %v, want 404", err)
	}
}

// TestClientLimiter: the limiters space requests as configured, and a
// wait that cannot end before the caller's deadline fails at once. Time
// is virtual: the waits are exact.
func TestClientLimiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := bubbleFake()
		c := bubbleClient(t, f, func(o *zendesk.Options) { o.RequestsPerMinute = 600 }) // one per 100ms
		start := time.Now()
		for range 4 {
			if _, err := c.GetTicket(t.Context(), 1); err != nil {
				t.Fatal(err)
			}
		}
		if el := time.Since(start); el != 300*time.Millisecond {
			t.Errorf("4 requests at 600/min took %v, want 300ms", el)
		}
		w := bubbleClient(t, f, func(o *zendesk.Options) { o.WriteRequestsPer10Minutes = 6000 }) // writes: one per 100ms
		start = time.Now()
		for i := range 3 {
			if _, err := w.Import(t.Context(), 1, bubbleReq(fmt.Sprint(i), 1)); err != nil {
				t.Fatal(err)
			}
		}
		for range 5 {
			if _, err := w.GetTicket(t.Context(), 1); err != nil {
				t.Fatal(err)
			}
		}
		if el := time.Since(start); el != 200*time.Millisecond {
			t.Errorf("3 writes at 6000/10min + 5 reads took %v, want 200ms (reads do not wait on the write limiter)", el)
		}
		// A wait that cannot end before the caller's deadline fails at once.
		slow := bubbleClient(t, f, func(o *zendesk.Options) { o.RequestsPerMinute = 1 })
		if _, err := slow.GetTicket(t.Context(), 1); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start = time.Now()
		_, err := slow.GetTicket(ctx, 1)
		if el := time.Since(start); err == nil || el != 0 {
			t.Errorf("GetTicket past the limiter = %v after %v, want an error at once", err, el)
		}
		if retry, _ := zendesk.Retryable(err); retry {
			t.Errorf("Retryable(limiter wait past deadline) = true")
		}
	})
}

// TestGate: a closed gate holds Wait until it opens, a later CloseFor
// never shortens it, and a wait past the caller's deadline ends with it.
func TestGate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g zendesk.Gate
		start := time.Now()
		if err := g.Wait(t.Context()); err != nil || time.Since(start) != 0 {
			t.Fatalf("zero Gate.Wait = %v after %v, want nil at once", err, time.Since(start))
		}
		g.CloseFor(300 * time.Millisecond)
		g.CloseFor(10 * time.Millisecond) // must not shorten
		if err := g.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el != 300*time.Millisecond {
			t.Errorf("Wait returned after %v, want 300ms", el)
		}
		// A window extended while a caller waits is honoured.
		done := make(chan time.Duration)
		g.CloseFor(100 * time.Millisecond)
		start = time.Now()
		go func() {
			g.Wait(t.Context())
			done <- time.Since(start)
		}()
		synctest.Wait() // the waiter is asleep
		g.CloseFor(time.Second)
		if el := <-done; el != time.Second {
			t.Errorf("Wait with the window extended to 1s returned after %v", el)
		}
		g.CloseFor(time.Hour)
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		start = time.Now()
		if err := g.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 50*time.Millisecond {
			t.Errorf("Wait on a closed gate = %v after %v, want DeadlineExceeded after 50ms", err, time.Since(start))
		}
	})
}

func BenchmarkImport(b *testing.B) {
	srv := newServer(b, zendesktest.Config{})
	c := newClient(b, srv, nil)
	req := importReq("bench", 3)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Import(ctx, 1, req); err != nil {
			b.Fatal(err)
		}
	}
}

// TestGatePaused: the gate sums how long it was closed, overlapping
// Retry-Afters once, up to now for a pause still going; an open gate adds
// nothing.
func TestGatePaused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g zendesk.Gate
		g.CloseFor(10 * time.Second)
		time.Sleep(4 * time.Second)
		g.CloseFor(10 * time.Second) // extends the pause to 14s
		g.CloseFor(time.Second)      // inside it: nothing
		if got := g.Paused(); got != 4*time.Second {
			t.Errorf("Paused during a pause = %v, want 4s", got)
		}
		time.Sleep(time.Minute)
		if got := g.Paused(); got != 14*time.Second {
			t.Errorf("Paused after it = %v, want 14s", got)
		}
		g.CloseFor(30 * time.Second)
		time.Sleep(time.Hour)
		g.CloseUntil(time.Now().Add(-time.Minute)) // in the past: no pause
		if got := g.Paused(); got != 44*time.Second {
			t.Errorf("Paused after two pauses = %v, want 44s", got)
		}
	})
}
