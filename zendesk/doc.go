// Package zendesk owns talking to the Zendesk Support API: the wire types
// of side conversations, authentication (API token or OAuth bearer, with
// one single-flight token refresh on 401), the two client-side rate
// limiters with a shared gate that a Retry-After closes for every worker,
// typed errors (*APIError, *RateLimitError) and the Retryable
// classification the pipeline's retry loop consults.
//
// The account limiter adapts (AIMD): a 429 halves the client's own rate,
// and each quiet 30 s adds 5% of the configured rate back, so that a long
// run settles just under the account's real limit instead of hitting it.
//
// Each call makes one attempt. The caller's retry loop asks Retryable
// whether and how long to wait, and OutcomeUnknown whether a failed write
// may have landed anyway (5xx, timeouts, a connection lost after sending):
// such a write must be looked up by its external ids (ListSideConversations)
// before it is sent again, or the thread would be imported twice.
//
// Bounds: a 2xx body is read up to a cap per endpoint kind
// (ErrResponseTooLarge past it: an unknown outcome for a write, a failure
// for a read); a Retry-After longer than Options.MaxRetryAfter is not
// waited for: that request, and every request while the gate stays
// closed, fails at once with a *PauseError saying until when. A redirect
// is never followed (it would resend a write, or the credentials,
// elsewhere); Misconfigured tells a redirect, or a 403 on a write, from
// one thread's failure: the account or the URL is wrong for every request.
//
// No error, log line or String ever holds a token, the OAuth client
// secret or the Authorization header; response text that echoes them is
// redacted.
//
// Read-only calls for verify and check: ListSideConversations (every
// page), Me (GET /api/v2/users/me), ShowManyTickets, and RateLimit, the
// account's limit as the latest response's X-Rate-Limit announced it.
//
// It knows nothing of archives, threads or checkpoints.
package zendesk
