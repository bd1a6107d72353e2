package zendesktest_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

func TestOAuthTokens(t *testing.T) {
	srv := zendesktest.NewServer(t, zendesktest.Config{OAuthToken: "a0", OAuthRefreshToken: "r0",
		OAuthClientID: "cid", OAuthClientSecret: "csec", AutoCreateTickets: true})
	bearer := func(tok string) int {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/api/v2/tickets/1", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	form := func(v url.Values) (int, string) {
		t.Helper()
		resp, err := http.PostForm(srv.URL+"/oauth/tokens", v)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if s := bearer("a0"); s != 200 {
		t.Fatalf("current token: %d, want 200", s)
	}
	srv.ExpireOAuthToken()
	if s := bearer("a0"); s != 401 {
		t.Errorf("expired token: %d, want 401", s)
	}
	for _, tc := range []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"wrong grant", `{"grant_type":"password","refresh_token":"r0","client_id":"cid","client_secret":"csec"}`, 400, "unsupported_grant_type"},
		{"wrong secret", `{"grant_type":"refresh_token","refresh_token":"r0","client_id":"cid","client_secret":"x"}`, 401, "invalid_client"},
		{"wrong client", `{"grant_type":"refresh_token","refresh_token":"r0","client_id":"x","client_secret":"csec"}`, 401, "invalid_client"},
		{"wrong refresh token", `{"grant_type":"refresh_token","refresh_token":"r1","client_id":"cid","client_secret":"csec"}`, 400, "invalid_grant"},
		{"not json", `grant_type=refresh_token`, 400, "invalid_request"},
	} {
		r := send(t, srv, "POST", "/oauth/tokens", tc.body)
		if r.status != tc.status || r.json(t)["error"] != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, r.status, r.body, tc.status, tc.code)
		}
	}
	if n := srv.OAuthRefreshes(); n != 0 {
		t.Fatalf("OAuthRefreshes = %d after failures, want 0", n)
	}

	// JSON body.
	r := send(t, srv, "POST", "/oauth/tokens", `{"grant_type":"refresh_token","refresh_token":"r0","client_id":"cid","client_secret":"csec"}`)
	m := r.json(t)
	a1, r1 := m["access_token"].(string), m["refresh_token"].(string)
	if r.status != 200 || !strings.HasPrefix(a1, "fake-access-1") || !strings.HasPrefix(r1, "fake-refresh-1") || m["token_type"] != "bearer" {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
	if a, rt := srv.OAuthTokens(); a != a1 || rt != r1 {
		t.Errorf("OAuthTokens() = %q, %q; want the issued ones", a, rt)
	}
	if s := bearer(a1); s != 200 {
		t.Errorf("new token: %d, want 200", s)
	}
	// The old refresh token stopped working; the new one works as a form.
	if s, b := form(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"r0"}, "client_id": {"cid"}, "client_secret": {"csec"}}); s != 400 {
		t.Errorf("old refresh token: %d %s, want 400", s, b)
	}
	if s, b := form(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r1}, "client_id": {"cid"}, "client_secret": {"csec"}}); s != 200 || !strings.Contains(b, "fake-access-2") {
		t.Errorf("form refresh: %d %s, want 200", s, b)
	}
	if s := bearer(a1); s != 401 {
		t.Errorf("replaced token: %d, want 401", s)
	}
	if n, c := srv.OAuthRefreshes(), srv.RequestCount("oauth_token"); n != 2 || c != 8 {
		t.Errorf("OAuthRefreshes = %d, RequestCount(oauth_token) = %d; want 2, 8", n, c)
	}
	// ClientOptions carries the current tokens.
	o := srv.ClientOptions()
	a2, r2 := srv.OAuthTokens()
	if o.OAuthToken != a2 || o.OAuthRefresh == nil || o.OAuthRefresh.RefreshToken != r2 || o.OAuthRefresh.ClientID != "cid" || o.OAuthRefresh.ClientSecret != "csec" {
		t.Errorf("ClientOptions() = %v, want the current tokens", o)
	}
}
