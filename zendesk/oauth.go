package zendesk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// ErrTokenRefreshed is wrapped by the *RequestError of a request that got
// 401, after which the client refreshed its OAuth token but could not send
// the request again because its body was a stream (UploadAttachment). The
// server refused the request, so it is retryable and its outcome is known;
// a new attempt with a fresh body uses the new token.
var ErrTokenRefreshed = errors.New("zendesk: OAuth token refreshed; the streamed body cannot be re-sent")

// OAuthRefresh lets a Client renew an expired OAuth access token
// (Options.OAuthToken): on a 401 it posts grant_type=refresh_token to
// TokenURL once, swaps in the new access and refresh tokens, and sends the
// refused request again.
type OAuthRefresh struct {
	// RefreshToken is the refresh token issued with the access token. A
	// refresh replaces it: the old one stops working.
	RefreshToken string
	// ClientID and ClientSecret identify the OAuth client.
	ClientID, ClientSecret string
	// TokenURL is the token endpoint; default BaseURL + "/oauth/tokens".
	TokenURL string
}

// String describes the refresh settings without secrets.
func (r OAuthRefresh) String() string {
	return fmt.Sprintf("zendesk.OAuthRefresh{ClientID:%s TokenURL:%s}", r.ClientID, redactURL(r.TokenURL))
}

// GoString is String, so that %#v does not print the secrets either.
func (r OAuthRefresh) GoString() string { return r.String() }

// tokenResponse is the body of a successful POST /oauth/tokens.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
}

// authState is the Authorization header and, with OAuth refresh, the
// tokens that replace it. gen counts the refreshes: a request remembers the
// gen it was sent with, so a 401 for an older token just re-sends.
type authState struct {
	mu         sync.Mutex
	header     string
	gen        uint64
	secrets    []string
	refresh    *OAuthRefresh // nil: no refresh; its RefreshToken is the current one
	tokenURL   *url.URL
	refreshing chan struct{} // closed when the refresh in flight ends
	dead       bool          // a refresh failed or its token was refused: never again
}

func (a *authState) current() (header string, gen uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.header, a.gen
}

func (a *authState) secretList() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.secrets
}

// refreshable reports whether a 401 may lead to a refresh at all.
func (a *authState) refreshable() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.refresh != nil && !a.dead
}

// refused records that the token of gen was refused right after a refresh
// issued it: refreshing again would only loop.
func (a *authState) refused(gen uint64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.gen != gen || a.dead {
		return false
	}
	a.dead = true
	return true
}

// parseTokenURL checks Options.OAuthRefresh.TokenURL like BaseURL.
func parseTokenURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("zendesk: TokenURL %s is not a URL", redactURL(raw))
	}
	if u.User != nil {
		return nil, fmt.Errorf("zendesk: TokenURL %s must not contain credentials", u.Redacted())
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return nil, fmt.Errorf("zendesk: TokenURL %s: http:// is only allowed for a loopback host; use https://", u)
		}
	default:
		return nil, fmt.Errorf("zendesk: TokenURL %s: want https://", u)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("zendesk: TokenURL %s has no host", u)
	}
	return u, nil
}

// refreshAuth makes sure the token that got a 401 (sent with gen) has been
// replaced: it reports true when a newer token is in place, by its own
// refresh or by another caller's. Concurrent callers share one refresh.
// It reports false when no refresh is configured, the refresh failed, or
// an earlier one did (the client never tries twice for the same token).
func (c *Client) refreshAuth(ctx context.Context, gen uint64) bool {
	a := &c.authz
	for {
		a.mu.Lock()
		if a.gen != gen {
			a.mu.Unlock()
			return true
		}
		if a.refresh == nil || a.dead {
			a.mu.Unlock()
			return false
		}
		if ch := a.refreshing; ch != nil {
			a.mu.Unlock()
			select {
			case <-ch:
				continue // look at its result
			case <-ctx.Done():
				return false
			}
		}
		ch := make(chan struct{})
		a.refreshing = ch
		r := *a.refresh
		a.mu.Unlock()

		c.stats.refreshes.Add(1)
		tok, err := c.postRefresh(ctx, a.tokenURL, r)

		a.mu.Lock()
		a.refreshing = nil
		close(ch)
		newRefresh := ""
		switch {
		case err == nil:
			if tok.RefreshToken != "" {
				a.refresh.RefreshToken = tok.RefreshToken
			}
			newRefresh = a.refresh.RefreshToken
			a.header = "Bearer " + tok.AccessToken
			a.gen++
			// Old tokens stay redacted too: a server may still echo them.
			a.secrets = append(append([]string(nil), a.secrets...), tok.AccessToken, tok.RefreshToken)
		case ctx.Err() != nil:
			// The caller gave up, not the refresh token: a later 401 may
			// try again.
		default:
			a.dead = true
		}
		a.mu.Unlock()

		if err != nil {
			if ctx.Err() == nil {
				c.log.Warn().Str("error", c.redact(err.Error())).
					Msg("zendesk: OAuth token refresh failed; not trying again")
			}
			return false
		}
		c.log.Info().Bool("new_refresh_token", tok.RefreshToken != "").Int64("expires_in", tok.ExpiresIn).
			Msg("zendesk: OAuth access token refreshed")
		if c.onRefresh != nil {
			c.onRefresh(tok.AccessToken, newRefresh)
		}
		return true
	}
}

// postRefresh sends one grant_type=refresh_token request. Its errors hold
// neither the tokens nor the client secret.
func (c *Client) postRefresh(ctx context.Context, tokenURL *url.URL, r OAuthRefresh) (*tokenResponse, error) {
	const method = http.MethodPost
	path := tokenURL.Path
	b, err := json.Marshal(map[string]string{
		"grant_type":    "refresh_token",
		"refresh_token": r.RefreshToken,
		"client_id":     r.ClientID,
		"client_secret": r.ClientSecret,
	})
	if err != nil {
		return nil, fmt.Errorf("%s %s: encode body: %w", method, path, err)
	}
	reqCtx, cancel := context.WithTimeoutCause(ctx, c.timeout, ErrTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, method, tokenURL.String(), bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.httpc.Do(req)
	if err != nil {
		return nil, c.requestError(ctx, reqCtx, method, path, false, 0, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body := readErrorBody(resp.Body, c.authz.secretList())
		ae := &APIError{Method: method, Path: path, Status: resp.StatusCode,
			RequestID: resp.Header.Get("X-Zendesk-Request-Id")}
		ae.parseErrorBody(body, c.authz.secretList())
		if ae.Description == "" {
			var oe struct {
				Description string `json:"error_description"`
			}
			if json.Unmarshal(body, &oe) == nil {
				ae.Description = cutDescription(c.redact(oe.Description), maxDescription)
			}
		}
		ae.Details = nil
		return nil, ae
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var tok tokenResponse
	if err := json.Unmarshal(body, &tok); err != nil {
		return nil, &RequestError{Method: method, Path: path, Sent: true, Status: resp.StatusCode,
			Err: errors.New("decode body: not a token response")}
	}
	switch {
	case tok.AccessToken == "":
		return nil, &RequestError{Method: method, Path: path, Sent: true, Status: resp.StatusCode,
			Err: errors.New("response has no access_token")}
	case !headerSafe(tok.AccessToken) || !headerSafe(tok.RefreshToken):
		return nil, &RequestError{Method: method, Path: path, Sent: true, Status: resp.StatusCode,
			Err: errors.New("response has a token with white space or control characters")}
	case tok.TokenType != "" && !strings.EqualFold(tok.TokenType, "bearer"):
		return nil, &RequestError{Method: method, Path: path, Sent: true, Status: resp.StatusCode,
			Err: fmt.Errorf("token_type %q, want bearer", truncateUTF8(tok.TokenType, 20))}
	}
	return &tok, nil
}
