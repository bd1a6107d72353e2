package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/threadlift/threadlift/pipeline"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// Secret values: mixed case and digits, so that no 6-character piece of
// them can appear in check's own wording.
const (
	oauthAccessValue  = "Qx7vKp2LmZ9wRt4Ns8Hj"
	oauthRefreshValue = "Bf3YcW8dTq6GzM1rVk5P"
	oauthSecretValue  = "Jn4XsE9uLa2DhC7yRw0F"
)

// TestCheckOAuthRefreshLine: check's 'oauth refresh' line is absent with
// API-token auth, a warn when OAuth has no refresh settings, a FAIL that
// lists every missing piece when they are partly set, ok when complete;
// and no secret value is ever printed. The environment is the injected
// getenv, in-process.
func TestCheckOAuthRefreshLine(t *testing.T) {
	const (
		apiToken = "" // token_env: TL_TEST_TOKEN (setup's config)
		access   = "  oauth_token_env: TL_ACCESS\n"
		refresh  = "  oauth_refresh_token_env: TL_REFRESH\n"
		clientID = "  oauth_client_id: threadlift-app\n"
		secret   = "  oauth_client_secret_env: TL_SECRET\n"
	)
	full := map[string]string{"TL_TEST_TOKEN": token, "TL_ACCESS": oauthAccessValue, "TL_REFRESH": oauthRefreshValue, "TL_SECRET": oauthSecretValue}
	without := func(keys ...string) map[string]string {
		m := map[string]string{}
		for k, v := range full {
			m[k] = v
		}
		for _, k := range keys {
			delete(m, k)
		}
		return m
	}
	tests := []struct {
		name    string
		zendesk string // replaces "  token_env: TL_TEST_TOKEN\n"; apiToken keeps it
		env     map[string]string
		status  string   // "" : no oauth refresh line
		detail  []string // all in the line
		absent  []string // none in the line
	}{
		{name: "API token", zendesk: apiToken, env: without("TL_ACCESS", "TL_REFRESH", "TL_SECRET")},
		{name: "OAuth without refresh", zendesk: access, env: without("TL_REFRESH", "TL_SECRET"), status: "warn", detail: []string{"not configured"}},
		{name: "refresh variable unset", zendesk: access + refresh + clientID + secret, env: without("TL_REFRESH"), status: "FAIL",
			detail: []string{"$TL_REFRESH is not set"}, absent: []string{"oauth_client_id", "TL_SECRET"}},
		{name: "client id empty", zendesk: access + refresh + secret, env: full, status: "FAIL",
			detail: []string{"zendesk.oauth_client_id is empty"}, absent: []string{"TL_REFRESH", "TL_SECRET"}},
		{name: "client secret env empty", zendesk: access + refresh + clientID, env: full, status: "FAIL",
			detail: []string{"zendesk.oauth_client_secret_env is empty"}, absent: []string{"TL_REFRESH", "oauth_client_id"}},
		{name: "client secret variable unset", zendesk: access + refresh + clientID + secret, env: without("TL_SECRET"), status: "FAIL",
			detail: []string{"$TL_SECRET is not set"}, absent: []string{"TL_REFRESH", "oauth_client_id"}},
		{name: "everything missing", zendesk: access + refresh, env: without("TL_REFRESH"), status: "FAIL",
			detail: []string{"$TL_REFRESH is not set", "zendesk.oauth_client_id is empty", "zendesk.oauth_client_secret_env is empty"}},
		{name: "complete", zendesk: access + refresh + clientID + secret, env: full, status: "ok",
			detail: []string{"configured (client threadlift-app", "$TL_REFRESH", "not exercised"}},
	}
	lineRE := regexp.MustCompile(`(?m)^.*oauth refresh.*$`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := zendesktest.NewServer(t, zendesktest.Config{
				Email: "agent@example.com", Token: token,
				OAuthToken: oauthAccessValue, OAuthRefreshToken: oauthRefreshValue,
				OAuthClientID: "threadlift-app", OAuthClientSecret: oauthSecretValue,
				AutoCreateTickets: true,
			})
			_, cfg := setup(t, srv.URL)
			setRate(t, cfg, "200")
			if tt.zendesk != apiToken {
				data, _ := os.ReadFile(cfg)
				data = bytes.Replace(data, []byte("  token_env: TL_TEST_TOKEN\n"), []byte(tt.zendesk), 1)
				if err := os.WriteFile(cfg, data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var stdout, stderr bytes.Buffer
			root, _ := newRoot(&stdout, &stderr, func(k string) string { return tt.env[k] })
			root.SetArgs([]string{"check", "-c", cfg})
			root.SetOut(io.Discard)
			root.SetErr(io.Discard)
			err := root.ExecuteContext(context.Background())
			out := stdout.String() + stderr.String()

			lines := lineRE.FindAllString(stdout.String(), -1)
			switch {
			case tt.status == "":
				if len(lines) != 0 || strings.Contains(stdout.String(), "oauth refresh") {
					t.Errorf("API-token auth printed an oauth refresh line: %q\n%s", lines, out)
				}
			case len(lines) != 1:
				t.Fatalf("%d oauth refresh lines, want 1\n%s", len(lines), out)
			default:
				l := checkLine(stdout.String(), "oauth refresh")
				if !strings.HasPrefix(l, tt.status+" ") {
					t.Errorf("oauth refresh line = %q, want %s\n%s", l, tt.status, out)
				}
				for _, d := range tt.detail {
					if !strings.Contains(l, d) {
						t.Errorf("oauth refresh line = %q, want %q in it", l, d)
					}
				}
				for _, d := range tt.absent {
					if strings.Contains(l, d) {
						t.Errorf("oauth refresh line = %q lists %q, which is set", l, d)
					}
				}
			}
			switch tt.status {
			case "FAIL":
				if err == nil {
					t.Errorf("check with a FAIL line returned no error\n%s", out)
				}
			case "ok", "warn", "":
				if err != nil {
					t.Errorf("check: %v, want success\n%s", err, out)
				}
			}
			// No secret, nor any 6-character piece of one, is printed.
			for name, v := range tt.env {
				for i := 0; i+6 <= len(v); i++ {
					if piece := v[i : i+6]; strings.Contains(out, piece) {
						t.Errorf("output contains %q, a piece of $%s\n%s", piece, name, out)
						break
					}
				}
			}
		})
	}
}

// lockedClock is a fake clock safe for verify's concurrent workers.
type lockedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *lockedClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *lockedClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// pacedVerifyProgress is verify's progress where each ticket read back
// takes per on the fake clock; after each one it takes the progress log
// line (what a non-terminal run prints every 10 s).
type pacedVerifyProgress struct {
	*progress
	clock *lockedClock
	per   time.Duration
	logs  *bytes.Buffer
	mu    sync.Mutex
	lines []map[string]any
}

func (p *pacedVerifyProgress) TicketDone() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clock.advance(p.per)
	p.progress.TicketDone()
	p.logs.Reset()
	p.progress.logLine()
	var m map[string]any
	if err := json.Unmarshal(p.logs.Bytes(), &m); err == nil {
		p.lines = append(p.lines, m)
	}
}

// TestVerifyProgressETA: verify's read-back phase counts the tickets
// planned (OnPlan) and its ETA is the tickets left over the measured rate,
// not one second per ticket left. Tested on the progress log line and the
// ticket counters, on an injected clock: the terminal bar's ETA column is
// mpb's decor.AverageETA, on mpb's own wall clock, which a test cannot
// drive without a production change.
func TestVerifyProgressETA(t *testing.T) {
	t.Run("pipeline", func(t *testing.T) {
		srv := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", Token: token, AutoCreateTickets: true})
		_, cfgPath := setup(t, srv.URL)
		env := map[string]string{"TL_TEST_TOKEN": token}
		_, g := newRoot(io.Discard, io.Discard, func(k string) string { return env[k] })
		g.config = cfgPath
		cfg, err := g.loadConfig()
		if err != nil {
			t.Fatal(err)
		}
		log := zerolog.Nop()
		opts, err := pipelineOptions(cfg, log)
		if err != nil {
			t.Fatal(err)
		}
		client, err := newZendeskClient(g, cfg, log, true)
		if err != nil {
			t.Fatal(err)
		}
		clock := &lockedClock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
		var logs bytes.Buffer
		const per = 3 * time.Second // 1/3 ticket a second
		prog := &pacedVerifyProgress{progress: newProgressAt(zerolog.New(&logs), "verify", 0, clock.now), clock: clock, per: per, logs: &logs}
		var plan pipeline.VerifyPlan
		_, err = pipeline.Verify(context.Background(), client, pipeline.VerifyOptions{
			Options: opts, Progress: prog,
			OnPlan: func(p pipeline.VerifyPlan) { plan = p },
		})
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		if plan.Tickets < 2 {
			t.Fatalf("plan has %d tickets, want several", plan.Tickets)
		}
		if got := prog.tickets.Load(); got != int64(plan.Tickets) {
			t.Errorf("progress total = %d tickets, want the %d planned", got, plan.Tickets)
		}
		if len(prog.lines) != plan.Tickets {
			t.Fatalf("%d progress lines, want one per ticket (%d)", len(prog.lines), plan.Tickets)
		}
		for i, m := range prog.lines {
			done := i + 1
			left := plan.Tickets - done
			want := (time.Duration(left) * per).String() // left at 1 per 3 s
			if m["tickets_total"] != float64(plan.Tickets) || m["tickets_done"] != float64(done) {
				t.Errorf("line %d: %v, want %d of %d tickets", done, m, done, plan.Tickets)
			}
			if m["eta"] != want {
				t.Errorf("line %d: eta %v, want %s (%d left at 1 per %v; %ds if a second per ticket)", done, m["eta"], want, left, per, left)
			}
		}
	})

	// The rate, not the count left, sets the ETA, whatever the pace.
	tests := []struct {
		total, done int
		per         time.Duration // one ticket per
		want        time.Duration
	}{
		{total: 1000, done: 100, per: 100 * time.Millisecond, want: 90 * time.Second},
		{total: 1000, done: 100, per: time.Second, want: 900 * time.Second},
		{total: 60, done: 20, per: 5 * time.Second, want: 200 * time.Second},
		{total: 10, done: 10, per: time.Second, want: 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d of %d at 1 per %v", tt.done, tt.total, tt.per), func(t *testing.T) {
			c := newFakeClock()
			var logs bytes.Buffer
			pr := newProgressAt(zerolog.New(&logs), "verify", 0, c.now)
			c.advance(time.Minute) // reading the sources: not the tickets' rate
			pr.Tickets(tt.total)
			for range tt.done {
				c.advance(tt.per)
				pr.TicketDone()
			}
			pr.logLine()
			m := logLineOf(t, &logs)
			if m["tickets_total"] != float64(tt.total) || m["tickets_done"] != float64(tt.done) {
				t.Errorf("log line = %v, want %d of %d tickets", m, tt.done, tt.total)
			}
			if m["eta"] != tt.want.String() {
				t.Errorf("eta = %v, want %s", m["eta"], tt.want)
			}
		})
	}
}
