package main

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/threadlift/threadlift/configs"
	"github.com/threadlift/threadlift/zendesk"
)

// newZendeskClient builds the API client from the config: the same
// limiters, Retry-After gate and credentials as import. With refresh
// false, an OAuth refresh token is not given to the client: check must
// not spend it (a refresh retires both tokens).
func newZendeskClient(g *globalOptions, cfg *configs.Config, log zerolog.Logger, refresh bool) (*zendesk.Client, error) {
	email, token, oauth := cfg.Credentials(g.getenv)
	var r *zendesk.OAuthRefresh
	if rt, id, secret := cfg.OAuthRefresh(g.getenv); refresh && rt != "" && oauth != "" {
		r = &zendesk.OAuthRefresh{RefreshToken: rt, ClientID: id, ClientSecret: secret}
	}
	if oauth != "" {
		token = "" // oauth_token_env wins, as for import
	}
	c, err := zendesk.New(zendesk.Options{
		OAuthRefresh: r,
		OnTokenRefresh: func(string, string) {
			log.Warn().Str("env", cfg.Zendesk.OAuthRefreshTokenEnv).
				Msg("OAuth access token refreshed; the refresh token in this variable no longer works: put a new one there before the next run")
		},
		BaseURL:                   cfg.Zendesk.URL,
		Email:                     email,
		Token:                     token,
		OAuthToken:                oauth,
		RequestsPerMinute:         cfg.Zendesk.RequestsPerMinute,
		WriteRequestsPer10Minutes: cfg.Zendesk.WriteRequestsPer10Minutes,
		Timeout:                   time.Duration(cfg.Zendesk.Timeout),
		Logger:                    log,
		UserAgent:                 "threadlift/" + version,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: zendesk: %w", errUsage, err)
	}
	return c, nil
}
