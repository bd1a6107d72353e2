// Package zendesk owns talking to the Zendesk Support API: the wire types
// of side conversations, authentication (API token or OAuth bearer), the
// two client-side rate limiters with a shared gate that a Retry-After
// closes for every worker, typed errors (*APIError, *RateLimitError) and
// the Retryable classification the pipeline's retry loop consults.
//
// Each call makes one attempt. The caller's retry loop asks Retryable
// whether and how long to wait, and OutcomeUnknown whether a failed write
// may have landed anyway (5xx, timeouts, a connection lost after sending):
// such a write must be looked up by its external ids (ListSideConversations)
// before it is sent again, or the thread would be imported twice.
//
// No error, log line or String ever holds the token or the Authorization
// header; response text that echoes them is redacted.
//
// It knows nothing of archives, threads or checkpoints.
package zendesk
