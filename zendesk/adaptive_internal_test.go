package zendesk

import (
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
)

func TestAdaptiveRateArithmetic(t *testing.T) {
	t0 := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		perMinute int
		header    string
		want      []float64 // per minute after each 429, each sent after the last decrease
	}{
		{"halves to 5% of the ceiling", 600, "", []float64{300, 150, 75, 37.5, 30, 30}},
		{"floor one per 10s", 20, "", []float64{10, 6, 6}},
		{"ceiling below the floor", 3, "", []float64{3, 3}},
		{"unlimited without header", 0, "", []float64{0, 0}},
		{"unlimited, bad header", 0, "many", []float64{0}},
		{"unlimited with header", 0, " 400 ", []float64{360, 180, 90}},
		{"header ignored when configured", 100, "700", []float64{50}},
	} {
		now := t0
		a := newAdaptiveRate(tc.perMinute, func() time.Time { return now }, zerolog.Nop())
		for i, want := range tc.want {
			now = now.Add(time.Second)
			a.rateLimited(now, tc.header)
			if got := a.perMinute(); got != want {
				t.Errorf("%s: after 429 #%d rate = %v/min, want %v", tc.name, i+1, got, want)
			}
			wantLim := rate.Limit(want / 60)
			if want == 0 {
				wantLim = rate.Inf
			}
			if got := a.lim.Limit(); got != wantLim {
				t.Errorf("%s: after 429 #%d limiter = %v/s, want %v", tc.name, i+1, got, wantLim)
			}
		}
	}
}

func TestAdaptiveRateStaleSend(t *testing.T) {
	t0 := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	now := t0
	a := newAdaptiveRate(600, func() time.Time { return now }, zerolog.Nop())
	sent := now
	now = now.Add(time.Second)
	a.rateLimited(sent, "")
	a.rateLimited(sent, "") // in flight at the old rate: no second halving
	if got := a.perMinute(); got != 300 {
		t.Fatalf("rate = %v, want 300", got)
	}
	now = now.Add(20 * time.Second)
	a.rateLimited(sent, "") // still stale, but it resets the quiet period
	now = now.Add(20 * time.Second)
	if got := a.perMinute(); got != 300 {
		t.Errorf("20s after a stale 429: rate = %v, want 300", got)
	}
	now = now.Add(10 * time.Second)
	if got := a.perMinute(); got != 330 {
		t.Errorf("30s after a stale 429: rate = %v, want 330", got)
	}
}
