package zendesk

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RateLimitInfo is what the latest response said of the account's rate
// limit in its X-Rate-Limit and X-Rate-Limit-Remaining headers (every
// response carries them).
type RateLimitInfo struct {
	// Limit is the account's requests per minute; 0 when no response has
	// carried the header yet.
	Limit     int
	Remaining int // -1 when the header was absent
	At        time.Time
}

// rateHeaders keeps the latest RateLimitInfo.
type rateHeaders struct {
	mu   sync.Mutex
	last RateLimitInfo
}

// note records the headers of a response that carries X-Rate-Limit.
func (r *rateHeaders) note(h http.Header, at time.Time) {
	limit, err := strconv.Atoi(strings.TrimSpace(h.Get("X-Rate-Limit")))
	if err != nil || limit <= 0 {
		return
	}
	remaining := -1
	if n, err := strconv.Atoi(strings.TrimSpace(h.Get("X-Rate-Limit-Remaining"))); err == nil && n >= 0 {
		remaining = n
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = RateLimitInfo{Limit: limit, Remaining: remaining, At: at}
}

// RateLimit returns what the latest response that carried X-Rate-Limit
// said; Limit is 0 when none has.
func (c *Client) RateLimit() RateLimitInfo {
	c.rateSeen.mu.Lock()
	defer c.rateSeen.mu.Unlock()
	return c.rateSeen.last
}
