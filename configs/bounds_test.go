package configs

import (
	"errors"
	"strings"
	"testing"
)

// TestBoundsNameTheKey: every numeric knob that sizes memory or time has a
// ceiling; a value above it is a config error naming the key (or the
// environment variable) and the ceiling, before anything runs.
func TestBoundsNameTheKey(t *testing.T) {
	tests := []struct {
		name string
		body string
		env  map[string]string
		want []string
	}{
		{"workers", "pipeline:\n  workers: 1000000000\n", nil, []string{"line 2", "pipeline.workers", "between 1 and 64", "1000000000", "rate limit"}},
		{"workers env", "", map[string]string{EnvWorkers: "1000000000"}, []string{EnvWorkers, "between 1 and 64"}},
		{"max attempts", "pipeline:\n  max_attempts: 1000000\n", nil, []string{"line 2", "pipeline.max_attempts", "between 1 and 100"}},
		{"requests per minute", "zendesk:\n  requests_per_minute: 100000000\n", nil, []string{"line 2", "zendesk.requests_per_minute", "at most 100000"}},
		{"requests per minute env", "", map[string]string{EnvRequestsPerMinute: "100000000"}, []string{EnvRequestsPerMinute, "at most 100000"}},
		{"write requests", "zendesk:\n  write_requests_per_10_minutes: 100000000\n", nil, []string{"line 2", "zendesk.write_requests_per_10_minutes", "at most 1000000"}},
		{"timeout", "zendesk:\n  timeout: 1000h\n", nil, []string{"line 2", "zendesk.timeout", "at most 1h"}},
		{"max retry after", "zendesk:\n  max_retry_after: 48h\n", nil, []string{"line 2", "zendesk.max_retry_after", "between 1s and 24h"}},
		{"max message bytes", "mapping:\n  max_message_bytes: 100GiB\n", nil, []string{"line 2", "mapping.max_message_bytes", "at most 1GiB"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, tt.body), env(tt.env))
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("Load(%q, %v) = %v, want ErrConfig", tt.body, tt.env, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load(%q, %v) = %q, want it to contain %q", tt.body, tt.env, err, w)
				}
			}
		})
	}
	// The ceilings themselves are accepted.
	c, err := Load(writeConfig(t, "zendesk:\n  requests_per_minute: 100000\n  write_requests_per_10_minutes: 1000000\n  timeout: 1h\n  max_retry_after: 24h\n"+
		"mapping:\n  max_message_bytes: 1GiB\npipeline:\n  workers: 64\n  max_attempts: 100\n"), nil)
	if err != nil {
		t.Fatalf("Load at the ceilings: %v", err)
	}
	if c.Pipeline.Workers != 64 || c.Zendesk.MaxRetryAfter.String() != "24h0m0s" {
		t.Errorf("Load at the ceilings = workers %d, max_retry_after %s", c.Pipeline.Workers, c.Zendesk.MaxRetryAfter)
	}
}
