package pipeline

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"time"
)

// backoff returns a full-jitter exponential delay for the given attempt
// (1-based): uniform in [0, min(max, base·2^(attempt-1))].
func backoff(attempt int, base, max time.Duration) time.Duration {
	d := base
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	if d <= 0 {
		return 0
	}
	return rand.N(d + 1)
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
