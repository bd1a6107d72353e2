// Package zendesk owns talking to the Zendesk Support API: the wire types
// of side conversations, authentication (API token or OAuth bearer), the
// two client-side rate limiters with a shared gate that a Retry-After
// closes for every worker, typed errors (*APIError, *RateLimitError) and
// the Retryable classification the pipeline's retry loop consults.
//
// It knows nothing of archives, threads or checkpoints.
package zendesk
