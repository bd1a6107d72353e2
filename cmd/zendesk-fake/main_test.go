package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/threadlift/threadlift/zendesk"
)

func TestServeImportAndDump(t *testing.T) {
	t.Setenv("FAKE_TOKEN", "tok-123")
	dump := filepath.Join(t.TempDir(), "dump.json")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr strings.Builder
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--print-url", "--email", "me@example.com",
			"--token-env", "FAKE_TOKEN", "--dump", dump}, pw, &stderr)
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the URL: %v", err)
	}
	url := strings.TrimSpace(line)
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("printed %q, want http://127.0.0.1:PORT", url)
	}

	c, err := zendesk.New(zendesk.Options{BaseURL: url, Email: "me@example.com", Token: "tok-123"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Import(ctx, 77, &zendesk.ImportRequest{
		SideConversation: zendesk.ImportSideConversation{Subject: "Hello", ExternalIDs: map[string]string{zendesk.ThreadKeyField: "t-1"}},
		Events: []zendesk.ImportEvent{{CreatedAt: time.Now().Add(-time.Hour), Message: zendesk.Message{
			Body: "hi", To: []zendesk.Participant{{Email: "x@example.com"}}}}},
	})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	bad, _ := zendesk.New(zendesk.Options{BaseURL: url, Email: "me@example.com", Token: "wrong"})
	if _, err := bad.GetTicket(ctx, 77); !zendesk.IsStatus(err, 401) {
		t.Errorf("wrong token: %v, want 401", err)
	}

	cancel() // as SIGTERM does
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("run = %d, want 0; stderr: %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after the signal")
	}
	b, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Tickets []struct {
			ID                int64 `json:"id"`
			SideConversations []struct {
				Subject     string            `json:"subject"`
				ExternalIDs map[string]string `json:"external_ids"`
				Events      []zendesk.Event   `json:"events"`
			} `json:"side_conversations"`
		} `json:"tickets"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dump %s: %v", b, err)
	}
	if len(d.Tickets) != 1 || d.Tickets[0].ID != 77 || len(d.Tickets[0].SideConversations) != 1 {
		t.Fatalf("dump = %s", b)
	}
	sc := d.Tickets[0].SideConversations[0]
	if sc.Subject != "Hello" || sc.ExternalIDs[zendesk.ThreadKeyField] != "t-1" || len(sc.Events) != 1 || sc.Events[0].Message.Body != "hi" {
		t.Errorf("dumped side conversation = %+v", sc)
	}
	if strings.Contains(stderr.String(), "tok-123") {
		t.Errorf("stderr contains the token: %s", stderr.String())
	}
}

func TestRefusesRemoteAndBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--addr", "0.0.0.0:0"},
		{"--addr", ":0"},
		{"--addr", "192.0.2.1:0"},
		{"--no-such-flag"},
		{"--email", "a@b.c"},
		{"--token-env", "THREADLIFT_SURELY_UNSET_VAR"},
		{"--oauth-refresh-token-env", "THREADLIFT_SURELY_UNSET_VAR"},
		{"--oauth-client-id", "cid"}, // refresh without tokens
		{"extra"},
	} {
		var stderr strings.Builder
		if code := run(t.Context(), args, io.Discard, &stderr); code != 2 {
			t.Errorf("run(%q) = %d, want 2 (stderr %s)", args, code, stderr.String())
		}
	}
	for _, tc := range []struct {
		addr string
		ok   bool
	}{{"127.0.0.1:8089", true}, {"[::1]:0", true}, {"localhost:1", true}, {"example.com:80", false}, {"nonsense", false}} {
		if got := loopbackAddr(tc.addr); got != tc.ok {
			t.Errorf("loopbackAddr(%q) = %v, want %v", tc.addr, got, tc.ok)
		}
	}
}

func TestServeOAuthRefresh(t *testing.T) {
	t.Setenv("FAKE_ACCESS", "acc-SECRET-1")
	t.Setenv("FAKE_REFRESH", "ref-SECRET-1")
	t.Setenv("FAKE_CLIENT_SECRET", "cs-SECRET-1")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr lockedBuilder // --verbose logs from the handlers
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--print-url", "--oauth-token-env", "FAKE_ACCESS",
			"--oauth-refresh-token-env", "FAKE_REFRESH", "--oauth-client-id", "cid",
			"--oauth-client-secret-env", "FAKE_CLIENT_SECRET", "--verbose"}, pw, &stderr)
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the URL: %v", err)
	}
	url := strings.TrimSpace(line)
	refreshed := 0
	// A stale access token with the right refresh settings: one refresh.
	c, err := zendesk.New(zendesk.Options{BaseURL: url, OAuthToken: "stale",
		OAuthRefresh:   &zendesk.OAuthRefresh{RefreshToken: "ref-SECRET-1", ClientID: "cid", ClientSecret: "cs-SECRET-1"},
		OnTokenRefresh: func(string, string) { refreshed++ }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetTicket(ctx, 5); err != nil {
		t.Fatalf("GetTicket: %v", err)
	}
	if refreshed != 1 {
		t.Errorf("refreshed %d times, want 1", refreshed)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("run = %d; stderr: %s", code, stderr.String())
	}
	for _, sec := range []string{"acc-SECRET-1", "ref-SECRET-1", "cs-SECRET-1", "fake-access", "fake-refresh"} {
		if strings.Contains(stderr.String(), sec) {
			t.Errorf("stderr contains %s: %s", sec, stderr.String())
		}
	}
}

type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startFake runs the fake with args on a free port and returns its URL;
// it stops with the test.
func startFake(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	var stderr strings.Builder
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"--addr", "127.0.0.1:0", "--print-url"}, args...), pw, &stderr)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the URL: %v (stderr: %s)", err, stderr.String())
	}
	go io.Copy(io.Discard, pr)
	return strings.TrimSpace(line)
}

// TestLoadPlantsAndAccountFlags: --load starts from a hand-written state
// (a duplicate and a side conversation without keys); --role,
// --rate-limit-header and --no-side-conversations shape what check sees.
func TestLoadPlantsAndAccountFlags(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.json")
	os.WriteFile(state, []byte(`{"tickets":[{"id":5,"side_conversations":[
	  {"id":"a","subject":"s","external_ids":{"threadlift_thread_key":"t1"},"events":[{"message":{"external_ids":{"threadlift_message_key":"m1"}}}]},
	  {"id":"b","subject":"s","external_ids":{"threadlift_thread_key":"t1"},"events":[{"message":{"external_ids":{"threadlift_message_key":"m1"}}}]},
	  {"id":"c","subject":"made in the UI","events":[]}]}]}`), 0o644)
	url := startFake(t, "--load", state, "--role", "agent", "--rate-limit-header", "200")
	c, err := zendesk.New(zendesk.Options{BaseURL: url, Email: "me@example.com", Token: "any"})
	if err != nil {
		t.Fatal(err)
	}
	scs, evs, err := c.ListSideConversations(t.Context(), 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(scs) != 3 || len(evs) != 2 || evs[1].SideConversationID != "b" {
		t.Errorf("loaded %d side conversations, %d events (%+v); want 3, 2", len(scs), len(evs), evs)
	}
	u, err := c.Me(t.Context())
	if err != nil || u.Role != "agent" {
		t.Errorf("Me = %+v, %v; want role agent", u, err)
	}
	if rl := c.RateLimit(); rl.Limit != 200 {
		t.Errorf("X-Rate-Limit = %d, want 200", rl.Limit)
	}

	url = startFake(t, "--no-side-conversations")
	c, _ = zendesk.New(zendesk.Options{BaseURL: url, Email: "me@example.com", Token: "any"})
	if _, _, err := c.ListSideConversations(t.Context(), 5); !zendesk.IsStatus(err, 403) {
		t.Errorf("--no-side-conversations: list = %v, want 403", err)
	}
}
