package zendesktest

import (
	"crypto/subtle"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"

	"github.com/google/uuid"
)

const oauthTokensPath = "/oauth/tokens"

// ExpireOAuthToken makes the current OAuth access token stop working, as
// its expiry would: every Bearer request gets 401 until a refresh issues a
// new one.
func (f *Fake) ExpireOAuthToken() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.access = ""
}

// OAuthRefreshes returns how many refreshes succeeded (POST /oauth/tokens
// that issued new tokens). RequestCount("oauth_token") counts every
// attempt.
func (f *Fake) OAuthRefreshes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refreshes
}

// OAuthTokens returns the current access and refresh tokens ("" when
// expired or not configured).
func (f *Fake) OAuthTokens() (access, refresh string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.access, f.refreshTok
}

// serveOAuthTokens answers POST /oauth/tokens, grant_type=refresh_token,
// with a JSON or form body. It is neither rate limited nor faulted; errors
// are shaped as RFC 6749 says ({"error","error_description"}).
func (f *Fake) serveOAuthTokens(w http.ResponseWriter, r *http.Request) {
	reqID := uuid.NewString()
	now := f.now()
	f.mu.Lock()
	f.counts["oauth_token"]++
	f.counts["total"]++
	f.log = append(f.log, Request{Time: now, Method: r.Method, Path: r.URL.Path, Kind: "oauth_token", RequestID: reqID})
	f.mu.Unlock()
	w.Header().Set("X-Zendesk-Request-Id", reqID)
	f.cfg.Logger.Debug().Str("method", r.Method).Str("path", r.URL.Path).Str("kind", "oauth_token").Str("request_id", reqID).Msg("request")

	oauthErr := func(status int, code, desc string) {
		writeJSON(w, status, map[string]any{"error": code, "error_description": desc})
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		oauthErr(http.StatusMethodNotAllowed, "invalid_request", "POST only")
		return
	}
	params, ok := readTokenParams(r)
	if !ok {
		oauthErr(http.StatusBadRequest, "invalid_request", "The request body is not JSON or a form")
		return
	}
	if params.Get("grant_type") != "refresh_token" {
		oauthErr(http.StatusBadRequest, "unsupported_grant_type", "Only grant_type=refresh_token is supported by the fake")
		return
	}
	c := f.cfg
	if c.OAuthRefreshToken == "" ||
		subtle.ConstantTimeCompare([]byte(params.Get("client_id")), []byte(c.OAuthClientID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(params.Get("client_secret")), []byte(c.OAuthClientSecret)) != 1 {
		oauthErr(http.StatusUnauthorized, "invalid_client", "Client authentication failed")
		return
	}
	f.mu.Lock()
	if f.refreshTok == "" || subtle.ConstantTimeCompare([]byte(params.Get("refresh_token")), []byte(f.refreshTok)) != 1 {
		f.mu.Unlock()
		oauthErr(http.StatusBadRequest, "invalid_grant", "The refresh token is invalid, expired or revoked")
		return
	}
	f.refreshes++
	n := strconv.Itoa(f.refreshes)
	f.access = "fake-access-" + n + "-" + uuid.NewString()[:8]
	f.refreshTok = "fake-refresh-" + n + "-" + uuid.NewString()[:8]
	access, refresh := f.access, f.refreshTok
	f.mu.Unlock()
	f.cfg.Logger.Debug().Str("request_id", reqID).Int("refreshes", f.OAuthRefreshes()).Msg("oauth tokens refreshed")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":  access,
		"refresh_token": refresh,
		"token_type":    "bearer",
		"scope":         "read write",
		"expires_in":    3600,
	})
}

// readTokenParams reads a JSON object of strings or a form body.
func readTokenParams(r *http.Request) (url.Values, bool) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return nil, false
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "application/x-www-form-urlencoded" {
		v, err := url.ParseQuery(string(b))
		return v, err == nil
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, false
	}
	v := make(url.Values, len(m))
	for k, x := range m {
		if s, ok := x.(string); ok {
			v.Set(k, s)
		}
	}
	return v, true
}
