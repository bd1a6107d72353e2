package zendesk

import (
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
)

// The adaptive account rate: additive increase, multiplicative decrease.
// A 429 halves the client's own request rate (never below the floor); each
// rateIncreaseInterval without a 429 adds rateIncreaseFraction of the
// ceiling back, up to the ceiling (Options.RequestsPerMinute).
const (
	// rateDecreaseFactor multiplies the current rate on a 429.
	rateDecreaseFactor = 0.5
	// rateIncreaseInterval is how long the client must go without a 429
	// before it raises its rate by one step.
	rateIncreaseInterval = 30 * time.Second
	// rateIncreaseFraction is one step, as a fraction of the ceiling.
	rateIncreaseFraction = 0.05
	// rateFloorFraction is the lowest rate, as a fraction of the ceiling,
	// but never below minRatePerMinute (unless the ceiling is).
	rateFloorFraction = 0.05
	// minRatePerMinute is the absolute floor of the adaptive rate: one
	// request per 10 s.
	minRatePerMinute = 6.0
	// rateFromHeaderFraction is the share of the server's X-Rate-Limit an
	// unlimited client (RequestsPerMinute 0) adopts after its first 429.
	rateFromHeaderFraction = 0.9
)

// adaptiveRate owns the account limiter and moves its limit. The limiter
// is always there (rate.Inf while unlimited), so that callers can wait on
// it without holding mu; rate.Limiter is safe for concurrent use.
type adaptiveRate struct {
	lim *rate.Limiter
	now func() time.Time
	log zerolog.Logger

	mu      sync.Mutex
	ceiling float64   // requests per second; 0 while unlimited
	cur     float64   // requests per second; 0 = unlimited
	quiet   time.Time // start of the current stretch without a 429
	lowered time.Time // when the rate was last lowered
}

func newAdaptiveRate(perMinute int, now func() time.Time, log zerolog.Logger) *adaptiveRate {
	a := &adaptiveRate{now: now, log: log}
	if perMinute > 0 {
		a.ceiling = float64(perMinute) / 60
		a.cur = a.ceiling
		a.lim = rate.NewLimiter(rate.Limit(a.cur), 1)
	} else {
		a.lim = rate.NewLimiter(rate.Inf, 1)
	}
	return a
}

// floor is the lowest rate the decrease may reach. Called with mu held.
func (a *adaptiveRate) floor() float64 {
	return math.Min(a.ceiling, math.Max(a.ceiling*rateFloorFraction, minRatePerMinute/60))
}

// rateLimited lowers the rate after a 429 for a request sent at sentAt;
// header is the response's X-Rate-Limit. A 429 for a request sent before
// the last decrease was caused by the old rate and lowers nothing more, so
// that a burst of 429s from concurrent workers halves the rate once.
func (a *adaptiveRate) rateLimited(sentAt time.Time, header string) {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.quiet = now
	old := a.cur
	switch {
	case a.cur == 0:
		n, err := strconv.Atoi(strings.TrimSpace(header))
		if err != nil || n <= 0 {
			return // nothing to go by: the gate's pause is all there is
		}
		a.ceiling = rateFromHeaderFraction * float64(n) / 60
		a.cur = a.ceiling
	case sentAt.Before(a.lowered):
		return
	default:
		a.cur = math.Max(a.cur*rateDecreaseFactor, a.floor())
	}
	a.lowered = now
	if a.cur == old {
		return
	}
	a.lim.SetLimit(rate.Limit(a.cur))
	a.log.Info().Float64("requests_per_minute", round1(a.cur*60)).
		Msgf("429: lowering request rate to %s/min", fmtRate(a.cur*60))
}

// raise applies the additive increases due by now.
func (a *adaptiveRate) raise() {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cur == 0 || a.cur >= a.ceiling {
		return
	}
	steps := now.Sub(a.quiet) / rateIncreaseInterval
	if steps <= 0 {
		return
	}
	a.quiet = a.quiet.Add(steps * rateIncreaseInterval)
	a.cur = math.Min(a.ceiling, a.cur+float64(steps)*rateIncreaseFraction*a.ceiling)
	a.lim.SetLimit(rate.Limit(a.cur))
	a.log.Debug().Float64("requests_per_minute", round1(a.cur*60)).
		Msgf("raising request rate to %s/min", fmtRate(a.cur*60))
}

// perMinute is the current rate in requests per minute; 0 = unlimited.
func (a *adaptiveRate) perMinute() float64 {
	a.raise()
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cur * 60
}

func round1(x float64) float64 { return math.Round(x*10) / 10 }

func fmtRate(perMinute float64) string {
	return strconv.FormatFloat(round1(perMinute), 'f', -1, 64)
}
