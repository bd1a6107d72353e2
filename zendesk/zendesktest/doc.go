// Package zendesktest provides an in-memory fake of the Zendesk Support
// side-conversation API over real HTTP, in the manner of net/http/httptest:
// New returns an http.Handler, NewServer runs it on a loopback listener for
// a test and closes it in t.Cleanup.
//
// The fake validates requests as the API documents (422 RecordInvalid with
// details per field), answers in Zendesk's shapes with X-Zendesk-Request-Id
// and X-Rate-Limit headers, enforces an optional per-minute limit with 429
// and Retry-After, and injects faults (5xx, 429 variants, connections reset
// before or after the write is committed, slow answers) by probability or
// from a deterministic hook. With Config.OAuthRefreshToken it serves
// POST /oauth/tokens (grant_type=refresh_token), rotating both tokens;
// ExpireOAuthToken makes the current access token fail. Its state can be
// inspected: SideConversations, TicketIDs, RequestCount, Requests,
// Attachment, Dump, OAuthRefreshes, OAuthTokens.
//
// Tests in virtual time (testing/synctest) reach the fake without a
// socket: Transport serves requests on the caller's goroutine, and
// Fake.InProcessOptions gives a client's options for it.
//
// For what reads an account back (threadlift verify and check) it also
// serves GET /api/v2/users/me (the user of the credentials, role
// Config.Role) and GET /api/v2/tickets/show_many, announces
// Config.RateLimitHeader in X-Rate-Limit, answers 403 to every
// side-conversation endpoint as an account without the add-on
// (Config.NoSideConversations, SetSideConversations), and lets a test
// plant what an account may hold: Plant (any keys, or none),
// CopySideConversation (a duplicate), AddEvent, and Load (a Dump).
package zendesktest
