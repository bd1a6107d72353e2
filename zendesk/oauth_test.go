package zendesk_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/threadlift/threadlift/zendesk"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

const (
	oauthAccess       = "oauth-access-S3CRET-first"
	oauthRefresh      = "oauth-refresh-S3CRET-first"
	oauthClientID     = "threadlift-cli"
	oauthClientSecret = "client-S3CRET-value"
)

func oauthServer(t *testing.T) *zendesktest.Server {
	t.Helper()
	return newServer(t, zendesktest.Config{
		OAuthToken:        oauthAccess,
		OAuthRefreshToken: oauthRefresh,
		OAuthClientID:     oauthClientID,
		OAuthClientSecret: oauthClientSecret,
		Latency:           100 * time.Millisecond, // concurrent callers overlap
	})
}

// syncBuffer is a log sink for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// assertNoSecrets fails if any text holds any secret.
func assertNoSecrets(t *testing.T, texts []string, secrets ...string) {
	t.Helper()
	for _, s := range texts {
		for _, sec := range secrets {
			if sec != "" && strings.Contains(s, sec) {
				t.Errorf("secret %.12s… leaked in %q", sec, s)
			}
		}
	}
}

func errTexts(err error) []string {
	if err == nil {
		return nil
	}
	out := []string{err.Error(), fmt.Sprintf("%v %+v %#v", err, err, err)}
	var ae *zendesk.APIError
	if errors.As(err, &ae) {
		out = append(out, fmt.Sprintf("%+v %#v", *ae, *ae))
	}
	return out
}

func TestOAuthRefreshOnceForConcurrentCallers(t *testing.T) {
	srv := oauthServer(t)
	var logs syncBuffer
	var mu sync.Mutex
	var got [][2]string
	c := newClient(t, srv, func(o *zendesk.Options) {
		o.Logger = zerolog.New(&logs).Level(zerolog.DebugLevel)
		o.OnTokenRefresh = func(access, refresh string) {
			mu.Lock()
			got = append(got, [2]string{access, refresh})
			mu.Unlock()
		}
	})
	ctx := t.Context()
	if _, err := c.GetTicket(ctx, 1); err != nil {
		t.Fatalf("GetTicket with the first token: %v", err)
	}
	srv.ExpireOAuthToken()

	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = c.Import(ctx, 1, importReq(fmt.Sprintf("k%d", i), 1)) // a write: the body is sent again
		})
	}
	wg.Wait()
	var texts []string
	for i, err := range errs {
		if err != nil {
			t.Errorf("caller %d: %v", i, err)
		}
		texts = append(texts, errTexts(err)...)
	}
	if r := srv.OAuthRefreshes(); r != 1 {
		t.Errorf("fake saw %d refreshes, want 1", r)
	}
	if r := srv.RequestCount("oauth_token"); r != 1 {
		t.Errorf("fake saw %d token requests, want 1", r)
	}
	if r := c.Stats().TokenRefreshes; r != 1 {
		t.Errorf("Stats().TokenRefreshes = %d, want 1", r)
	}
	if r := srv.RequestCount("import"); r < n+2 {
		t.Errorf("fake saw %d imports, want at least %d: callers did not hit the 401 together", r, n+2)
	}
	if scs := srv.SideConversations(1); len(scs) != n {
		t.Errorf("ticket 1 has %d side conversations, want %d (each once)", len(scs), n)
	}
	access2, refresh2 := srv.OAuthTokens()
	mu.Lock()
	if len(got) != 1 || got[0] != [2]string{access2, refresh2} {
		t.Errorf("OnTokenRefresh called %d times (want once with the fake's new tokens)", len(got))
	}
	mu.Unlock()

	// The new token expires too: a different failing token, so one more
	// refresh is allowed (with the new refresh token).
	srv.ExpireOAuthToken()
	if _, err := c.GetTicket(ctx, 1); err != nil {
		t.Fatalf("GetTicket after the second expiry: %v", err)
	}
	if r := srv.OAuthRefreshes(); r != 2 {
		t.Errorf("fake saw %d refreshes, want 2", r)
	}
	access3, refresh3 := srv.OAuthTokens()

	// A client still holding the first refresh token cannot refresh: the
	// refresh replaced it.
	old, err := zendesk.New(zendesk.Options{BaseURL: srv.URL, OAuthToken: oauthAccess,
		OAuthRefresh: &zendesk.OAuthRefresh{RefreshToken: oauthRefresh, ClientID: oauthClientID, ClientSecret: oauthClientSecret},
		Logger:       zerolog.New(&logs).Level(zerolog.DebugLevel)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = old.GetTicket(ctx, 1)
	if !zendesk.IsStatus(err, 401) {
		t.Errorf("GetTicket with a used refresh token = %v, want 401", err)
	}
	texts = append(texts, errTexts(err)...)
	texts = append(texts, logs.String(), fmt.Sprintf("%v %+v %#v", c, c, c))
	if !strings.Contains(logs.String(), "OAuth access token refreshed") {
		t.Errorf("no log line says a refresh happened:\n%s", logs.String())
	}
	assertNoSecrets(t, texts, oauthAccess, oauthRefresh, oauthClientSecret, access2, refresh2, access3, refresh3)
}

func TestOAuthBadRefreshTokenDoesNotLoop(t *testing.T) {
	srv := oauthServer(t)
	var logs syncBuffer
	const wrong = "wrong-refresh-S3CRET"
	c := newClient(t, srv, func(o *zendesk.Options) {
		o.OAuthRefresh.RefreshToken = wrong
		o.Logger = zerolog.New(&logs).Level(zerolog.DebugLevel)
	})
	srv.ExpireOAuthToken()
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { _, errs[i] = c.Import(ctx, 1, importReq(fmt.Sprintf("k%d", i), 1)) })
	}
	wg.Wait()
	_, err := c.GetTicket(ctx, 1) // later: 401 at once, no new refresh
	errs = append(errs, err)
	var texts []string
	for i, err := range errs {
		var ae *zendesk.APIError
		if !errors.As(err, &ae) || ae.Status != 401 {
			t.Errorf("call %d = %v, want a 401 *APIError", i, err)
		}
		if retry, _ := zendesk.Retryable(err); retry {
			t.Errorf("Retryable(call %d) = true", i)
		}
		texts = append(texts, errTexts(err)...)
	}
	if r := srv.RequestCount("oauth_token"); r != 1 {
		t.Errorf("fake saw %d token requests, want 1", r)
	}
	if r := srv.RequestCount("import") + srv.RequestCount("ticket"); r != 9 {
		t.Errorf("fake saw %d API requests, want 9 (no re-sends)", r)
	}
	if !strings.Contains(logs.String(), "OAuth token refresh failed") {
		t.Errorf("the failed refresh was not logged:\n%s", logs.String())
	}
	texts = append(texts, logs.String())
	assertNoSecrets(t, texts, oauthAccess, oauthRefresh, wrong, oauthClientSecret)
}

func TestOAuthWithoutRefresh401AtOnce(t *testing.T) {
	srv := oauthServer(t)
	c := newClient(t, srv, func(o *zendesk.Options) { o.OAuthRefresh = nil })
	srv.ExpireOAuthToken()
	_, err := c.GetTicket(t.Context(), 1)
	var ae *zendesk.APIError
	if !errors.As(err, &ae) || ae.Status != 401 {
		t.Fatalf("GetTicket = %v, want a 401 *APIError", err)
	}
	if n := srv.RequestCount("total"); n != 1 {
		t.Errorf("fake saw %d requests, want 1", n)
	}
	// API-token clients never refresh either.
	basic := newServer(t, zendesktest.Config{Email: testEmail, Token: testToken})
	_, err = newClient(t, basic, func(o *zendesk.Options) { o.Token = "wrong" }).GetTicket(t.Context(), 1)
	if !zendesk.IsStatus(err, 401) || basic.RequestCount("total") != 1 {
		t.Errorf("Basic with a wrong token = %v after %d requests, want 401 after 1", err, basic.RequestCount("total"))
	}
}

// TestOAuthRefreshedTokenRefused: the refresh works but the server refuses
// the new token too. The request is sent twice, then the 401 comes back and
// no later 401 refreshes again.
func TestOAuthRefreshedTokenRefused(t *testing.T) {
	var mu sync.Mutex
	var refreshes, calls int
	var auths []string
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/oauth/tokens" {
			refreshes++
			fmt.Fprintf(w, `{"access_token":"new-access-%d","refresh_token":"new-refresh-%d","token_type":"bearer"}`, refreshes, refreshes)
			return
		}
		calls++
		auths = append(auths, r.Header.Get("Authorization"))
		w.WriteHeader(401)
		io.WriteString(w, `{"error":"Couldn't authenticate you"}`)
	}))
	defer hs.Close()
	c, err := zendesk.New(zendesk.Options{BaseURL: hs.URL, OAuthToken: "first",
		OAuthRefresh: &zendesk.OAuthRefresh{RefreshToken: "r", ClientID: "id", ClientSecret: "s"}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := c.GetTicket(t.Context(), 1); !zendesk.IsStatus(err, 401) {
			t.Fatalf("GetTicket %d = %v, want 401", i, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if refreshes != 1 || calls != 4 {
		t.Errorf("server saw %d refreshes and %d calls, want 1 and 4", refreshes, calls)
	}
	want := []string{"Bearer first", "Bearer new-access-1", "Bearer new-access-1", "Bearer new-access-1"}
	if fmt.Sprint(auths) != fmt.Sprint(want) {
		t.Errorf("Authorization headers = %q, want %q", auths, want)
	}
}

// TestOAuthRefreshEchoingServer: a token endpoint that echoes the request
// body in its error must not leak the refresh token or client secret.
func TestOAuthRefreshEchoingServer(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Zendesk-API-Warn", "got "+r.Header.Get("Authorization"))
		if r.URL.Path == "/oauth/tokens" {
			w.WriteHeader(400)
			fmt.Fprintf(w, `{"error":"invalid_grant","error_description":%q}`, b)
			return
		}
		w.WriteHeader(401)
		fmt.Fprintf(w, `{"error":"Couldn't authenticate you","description":%q}`, r.Header.Get("Authorization"))
	}))
	defer hs.Close()
	var logs syncBuffer
	opts := zendesk.Options{BaseURL: hs.URL, OAuthToken: oauthAccess,
		OAuthRefresh: &zendesk.OAuthRefresh{RefreshToken: oauthRefresh, ClientID: oauthClientID, ClientSecret: oauthClientSecret},
		Logger:       zerolog.New(&logs).Level(zerolog.DebugLevel)}
	c, err := zendesk.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetTicket(t.Context(), 1)
	if !zendesk.IsStatus(err, 401) {
		t.Fatalf("GetTicket = %v, want 401", err)
	}
	if !strings.Contains(logs.String(), "invalid_grant") {
		t.Errorf("the refresh failure is not logged:\n%s", logs.String())
	}
	texts := append(errTexts(err), logs.String(), fmt.Sprintf("%v %+v %#v", opts, opts, opts),
		fmt.Sprintf("%v %+v %#v", opts.OAuthRefresh, opts.OAuthRefresh, *opts.OAuthRefresh))
	assertNoSecrets(t, texts, oauthAccess, oauthRefresh, oauthClientSecret)
}

// TestOAuthRefreshStreamedUpload: a 401 on an upload refreshes the token,
// but the streamed body cannot be re-sent: the error says so, is retryable
// and not of unknown outcome, and the next attempt succeeds.
func TestOAuthRefreshStreamedUpload(t *testing.T) {
	srv := oauthServer(t)
	c := newClient(t, srv, nil)
	srv.ExpireOAuthToken()
	_, err := c.UploadAttachment(t.Context(), "a.txt", "text/plain", strings.NewReader("hello"))
	if !errors.Is(err, zendesk.ErrTokenRefreshed) {
		t.Fatalf("UploadAttachment after expiry = %v, want ErrTokenRefreshed", err)
	}
	if retry, _ := zendesk.Retryable(err); !retry || zendesk.OutcomeUnknown(err) || zendesk.IsStatus(err, 401) {
		t.Errorf("Retryable = %v, OutcomeUnknown = %v, IsStatus 401 = %v; want true, false, false",
			retry, zendesk.OutcomeUnknown(err), zendesk.IsStatus(err, 401))
	}
	if _, err := c.UploadAttachment(t.Context(), "a.txt", "text/plain", strings.NewReader("hello")); err != nil {
		t.Fatalf("second UploadAttachment: %v", err)
	}
	if r := srv.OAuthRefreshes(); r != 1 {
		t.Errorf("fake saw %d refreshes, want 1", r)
	}
}

func TestOAuthRefreshOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts zendesk.Options
	}{
		{"no access token", zendesk.Options{BaseURL: "https://x.zendesk.com",
			OAuthRefresh: &zendesk.OAuthRefresh{RefreshToken: "r", ClientID: "c"}}},
		{"no refresh token", zendesk.Options{BaseURL: "https://x.zendesk.com", OAuthToken: "a",
			OAuthRefresh: &zendesk.OAuthRefresh{ClientID: "c"}}},
		{"no client id", zendesk.Options{BaseURL: "https://x.zendesk.com", OAuthToken: "a",
			OAuthRefresh: &zendesk.OAuthRefresh{RefreshToken: "r"}}},
		{"http token url", zendesk.Options{BaseURL: "https://x.zendesk.com", OAuthToken: "a",
			OAuthRefresh: &zendesk.OAuthRefresh{RefreshToken: "r", ClientID: "c", TokenURL: "http://example.com/oauth/tokens"}}},
	} {
		if _, err := zendesk.New(tc.opts); err == nil {
			t.Errorf("New(%s) = nil error, want one", tc.name)
		} else if strings.Contains(err.Error(), "r\"") {
			t.Errorf("New(%s) error %q", tc.name, err)
		}
	}
	// A custom TokenURL is used.
	var hits int
	var mu sync.Mutex
	tok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		io.WriteString(w, `{"access_token":"fresh","refresh_token":"r2","token_type":"Bearer"}`)
	}))
	defer tok.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer fresh" {
			w.WriteHeader(401)
			return
		}
		io.WriteString(w, `{"ticket":{"id":1}}`)
	}))
	defer api.Close()
	c, err := zendesk.New(zendesk.Options{BaseURL: api.URL, OAuthToken: "stale",
		OAuthRefresh: &zendesk.OAuthRefresh{RefreshToken: "r", ClientID: "c", TokenURL: tok.URL + "/custom/token"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetTicket(t.Context(), 1); err != nil {
		t.Fatalf("GetTicket via a custom TokenURL: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if hits != 1 {
		t.Errorf("token endpoint hit %d times, want 1", hits)
	}
}
