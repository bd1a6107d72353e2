package zendesk_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"

	"github.com/threadlift/threadlift/zendesk"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// clock is a manual clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func wantRate(t *testing.T, c *zendesk.Client, want float64, when string) {
	t.Helper()
	if got := c.Stats().EffectiveRatePerMinute; got < want-0.01 || got > want+0.01 {
		t.Errorf("%s: EffectiveRatePerMinute = %v, want %v", when, got, want)
	}
}

// tooMany answers every request 429 with Retry-After 0 (so the gate stays
// open) and, if limit > 0, X-Rate-Limit.
func tooMany(t *testing.T, limit int) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	h := tooManyHandler(limit)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	return hs, &n
}

// tooManyHandler is tooMany's answer.
func tooManyHandler(limit int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if limit > 0 {
			w.Header().Set("X-Rate-Limit", fmt.Sprint(limit))
		}
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, "Too Many Requests")
	})
}

// TestAdaptiveRateLowersAndRecovers: a 429 halves the rate, every 30 s
// without one adds 5% back. Virtual time: the Retry-After is not slept.
func TestAdaptiveRateLowersAndRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := &clock{t: t0}
		var logs syncBuffer
		srv := bubbleFake()
		srv.SetFaults(zendesktest.Faults{RetryAfter: time.Second})
		var next atomic.Int32 // the fault of the next request
		srv.SetHook(func(*http.Request) zendesktest.Fault { return zendesktest.Fault(next.Swap(0)) })
		c := bubbleClient(t, srv, func(o *zendesk.Options) {
			o.RequestsPerMinute = 600
			o.Now = clk.Now
			o.Logger = zerolog.New(&logs).Level(zerolog.DebugLevel)
		})
		ctx := t.Context()
		wantRate(t, c, 600, "start")
		next.Store(int32(zendesktest.Fault429))
		if _, err := c.GetTicket(ctx, 1); !zendesk.IsStatus(err, 429) {
			t.Fatalf("GetTicket = %v, want 429", err)
		}
		wantRate(t, c, 300, "after a 429")
		if !strings.Contains(logs.String(), "429: lowering request rate to 300/min") {
			t.Errorf("no info line about lowering the rate:\n%s", logs.String())
		}
		clk.Add(29 * time.Second)
		wantRate(t, c, 300, "29s later")
		clk.Add(time.Second)
		wantRate(t, c, 330, "30s later")
		if !strings.Contains(logs.String(), "raising request rate to 330/min") {
			t.Errorf("no debug line about raising the rate:\n%s", logs.String())
		}
		// Requests go through meanwhile (after the 1s Retry-After) and do not
		// disturb the climb.
		if _, err := c.GetTicket(ctx, 1); err != nil {
			t.Fatal(err)
		}
		clk.Add(4 * time.Minute)
		wantRate(t, c, 570, "4.5 min later") // 300 + 9 steps of 30
		clk.Add(30 * time.Second)
		wantRate(t, c, 600, "5 min later")
		clk.Add(time.Hour)
		wantRate(t, c, 600, "an hour later: never above the configured rate")

		// A 429 in the middle of the climb resets the quiet period.
		next.Store(int32(zendesktest.Fault429))
		if _, err := c.GetTicket(ctx, 1); !zendesk.IsStatus(err, 429) {
			t.Fatalf("GetTicket = %v, want 429", err)
		}
		wantRate(t, c, 300, "second 429")
		clk.Add(45 * time.Second)
		wantRate(t, c, 330, "45s after the second 429")
		next.Store(int32(zendesktest.Fault429))
		if _, err := c.GetTicket(ctx, 1); !zendesk.IsStatus(err, 429) {
			t.Fatalf("GetTicket = %v, want 429", err)
		}
		wantRate(t, c, 165, "third 429")
		clk.Add(29 * time.Second)
		wantRate(t, c, 165, "29s after the third 429")
	})
}

// TestAdaptiveRateConcurrent429sHalveOnce: 429s for requests that were sent
// before the rate went down lower it no further.
func TestAdaptiveRateConcurrent429sHalveOnce(t *testing.T) {
	clk := &clock{t: t0}
	srv := newServer(t, zendesktest.Config{})
	srv.SetFaults(zendesktest.Faults{RetryAfter: time.Second})
	const n = 4
	var arrived sync.WaitGroup
	arrived.Add(n)
	var once sync.Once
	srv.SetHook(func(*http.Request) zendesktest.Fault {
		arrived.Done()
		arrived.Wait()                           // all were sent before any answer
		once.Do(func() { clk.Add(time.Second) }) // answers come later than the sends
		return zendesktest.Fault429
	})
	c := newClient(t, srv, func(o *zendesk.Options) {
		o.RequestsPerMinute = 60000 // no client-side wait between the four
		o.Now = clk.Now
	})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { _, _ = c.GetTicket(t.Context(), 1) })
	}
	wg.Wait()
	if st := c.Stats(); st.RateLimited != n {
		t.Fatalf("RateLimited = %d, want %d", st.RateLimited, n)
	}
	wantRate(t, c, 30000, "after 4 simultaneous 429s")
}

func TestAdaptiveRateFloorAndEffect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := &clock{t: t0}
		var mu sync.Mutex
		var sent []time.Time // when each request reached the server (virtual time)
		c := bubbleClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			sent = append(sent, time.Now())
			mu.Unlock()
			tooManyHandler(0).ServeHTTP(w, r)
		}), func(o *zendesk.Options) {
			o.RequestsPerMinute = 6000
			o.Now = clk.Now
		})
		want := []float64{3000, 1500, 750, 375, 300, 300} // floor: 5% of 6000
		for i, w := range want {
			clk.Add(time.Second) // each request is sent after the last decrease
			if _, err := c.GetTicket(t.Context(), 1); !zendesk.IsStatus(err, 429) {
				t.Fatalf("GetTicket = %v, want 429", err)
			}
			wantRate(t, c, w, fmt.Sprintf("after 429 #%d", i+1))
		}
		// The limiter really runs at 300/min now: one request per 200ms.
		for range 3 {
			_, _ = c.GetTicket(t.Context(), 1)
		}
		last := sent[len(sent)-3:]
		for i := 1; i < len(last); i++ {
			if gap := last[i].Sub(last[i-1]); gap != 200*time.Millisecond {
				t.Errorf("requests at 300/min %v apart, want 200ms", gap)
			}
		}
	})
}

func TestAdaptiveRateUnlimited(t *testing.T) {
	t.Run("X-Rate-Limit from the fake", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			clk := &clock{t: t0}
			var logs syncBuffer
			srv := bubbleFake() // unlimited: reports X-Rate-Limit 700
			srv.SetFaults(zendesktest.Faults{RetryAfter: time.Second})
			var first atomic.Bool
			first.Store(true)
			srv.SetHook(func(*http.Request) zendesktest.Fault {
				if first.Swap(false) {
					return zendesktest.Fault429
				}
				return zendesktest.FaultNone
			})
			c := bubbleClient(t, srv, func(o *zendesk.Options) {
				o.Now = clk.Now
				o.Logger = zerolog.New(&logs).Level(zerolog.InfoLevel)
			})
			wantRate(t, c, 0, "start (unlimited)")
			if _, err := c.GetTicket(t.Context(), 1); !zendesk.IsStatus(err, 429) {
				t.Fatalf("GetTicket = %v, want 429", err)
			}
			wantRate(t, c, 630, "after a 429 with X-Rate-Limit 700")
			if !strings.Contains(logs.String(), "429: lowering request rate to 630/min") {
				t.Errorf("no info line about the new rate:\n%s", logs.String())
			}
			clk.Add(time.Hour)
			wantRate(t, c, 630, "an hour later: the header's 90% is the ceiling")
			if _, err := c.GetTicket(t.Context(), 1); err != nil { // after the 1s gate
				t.Fatal(err)
			}
		})
	})
	t.Run("no X-Rate-Limit", func(t *testing.T) {
		clk := &clock{t: t0}
		hs, _ := tooMany(t, 0)
		c, err := zendesk.New(zendesk.Options{BaseURL: hs.URL, OAuthToken: "x", Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			clk.Add(time.Second)
			if _, err := c.GetTicket(t.Context(), 1); !zendesk.IsStatus(err, 429) {
				t.Fatalf("GetTicket = %v, want 429", err)
			}
		}
		wantRate(t, c, 0, "429s without X-Rate-Limit: still unlimited")
	})
	t.Run("X-Rate-Limit then halving", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) { // the limiter's waits are virtual
			clk := &clock{t: t0}
			c := bubbleClient(t, tooManyHandler(200), func(o *zendesk.Options) {
				o.Email, o.Token, o.OAuthToken, o.Now = "", "", "x", clk.Now
			})
			for _, w := range []float64{180, 90, 45} {
				clk.Add(time.Second)
				_, _ = c.GetTicket(t.Context(), 1)
				wantRate(t, c, w, "after a 429")
			}
			clk.Add(2 * time.Minute) // 4 steps of 5% of 180
			wantRate(t, c, 81, "two quiet minutes later")
		})
	})
}
