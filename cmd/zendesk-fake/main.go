// Command zendesk-fake serves an in-memory fake of the Zendesk Support
// side-conversation API (zendesktest.Fake) for demos and rehearsals.
//
//	zendesk-fake --addr 127.0.0.1:0 --print-url --email me@example.com --token-env FAKE_TOKEN --dump out.json
//
// With --load FILE it starts from a state in the --dump format (plant
// duplicates or foreign side conversations there); --role, --no-side-conversations
// and --rate-limit-header shape what 'threadlift check' finds.
//
// With --oauth-token-env, --oauth-refresh-token-env, --oauth-client-id and
// --oauth-client-secret-env it also accepts a Bearer token and renews it at
// POST /oauth/tokens (grant_type=refresh_token). Secrets are only ever read
// from the environment variables named, never from the command line.
//
// On SIGINT or SIGTERM it stops, writes every side conversation with its
// events to --dump (if set), and exits 0.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run serves until ctx is done; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("zendesk-fake", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var (
		addr        = fl.String("addr", "127.0.0.1:8089", "listen address")
		allowRemote = fl.Bool("allow-remote", false, "allow listening on a non-loopback address")
		email       = fl.String("email", "", "accepted API-token email (with --token or --token-env)")
		token       = fl.String("token", "", "accepted API token (visible in ps: prefer --token-env)")
		tokenEnv    = fl.String("token-env", "", "name of an environment variable holding the accepted API token")
		oauthEnv    = fl.String("oauth-token-env", "", "name of an environment variable holding an accepted OAuth bearer token")
		refreshEnv  = fl.String("oauth-refresh-token-env", "", "name of an environment variable holding the OAuth refresh token that POST /oauth/tokens accepts")
		clientID    = fl.String("oauth-client-id", "", "OAuth client id that POST /oauth/tokens accepts")
		secretEnv   = fl.String("oauth-client-secret-env", "", "name of an environment variable holding the OAuth client secret")
		rateLimit   = fl.Int("rate-limit", 0, "requests per minute before 429 (0 = unlimited)")
		latency     = fl.Duration("latency", 0, "latency added to every request")
		autoCreate  = fl.Bool("auto-create-tickets", true, "every ticket id exists")
		seed        = fl.Int64("seed", 1, "seed for the fault probabilities")
		printURL    = fl.Bool("print-url", false, "print the listening URL as one line on stdout once ready")
		dump        = fl.String("dump", "", "on SIGINT/SIGTERM write all side conversations with events to this JSON file")
		maxEvents   = fl.Int("max-events-per-request", 0, "answer 413 to imports with more events (0 = no limit)")
		maxAttach   = fl.Int64("max-attachment-bytes", 0, "upload size cap (0 = 50 MiB)")
		conflicts   = fl.Bool("conflict-on-concurrent-writes", false, "answer 409 to a write on a ticket with a write in flight")
		verbose     = fl.Bool("verbose", false, "log every request to stderr")
		cpuProfile  = fl.String("cpuprofile", "", "write a pprof CPU profile to this file until stopped (for performance work)")
		role        = fl.String("role", "admin", "role GET /api/v2/users/me gives the user: admin, agent or end-user")
		noSC        = fl.Bool("no-side-conversations", false, "answer 403 to every side-conversation endpoint, as an account without the add-on")
		rateHeader  = fl.Int("rate-limit-header", 0, "X-Rate-Limit to announce when --rate-limit is 0 (default 700)")
		load        = fl.String("load", "", "start with the tickets and side conversations of this JSON file (the --dump format: {\"tickets\":[...]}), e.g. to plant duplicates or foreign side conversations")
		fs          zendesktest.Faults
	)
	fl.Float64Var(&fs.P500, "fault-500", 0, "probability of a 500")
	fl.Float64Var(&fs.P502, "fault-502", 0, "probability of a 502 (HTML body)")
	fl.Float64Var(&fs.P503RetryAfter, "fault-503", 0, "probability of a 503 with Retry-After")
	fl.Float64Var(&fs.P429, "fault-429", 0, "probability of a 429 with Retry-After seconds")
	fl.Float64Var(&fs.P429Date, "fault-429-date", 0, "probability of a 429 with an HTTP-date Retry-After")
	fl.Float64Var(&fs.P429NoRetryAfter, "fault-429-no-retry-after", 0, "probability of a 429 without Retry-After")
	fl.Float64Var(&fs.PResetBeforeCommit, "fault-reset", 0, "probability of closing the connection before applying the request")
	fl.Float64Var(&fs.PCommitThenDrop, "fault-commit-drop", 0, "probability of applying the request, then closing the connection without a response")
	fl.Float64Var(&fs.PSlowAfterCommit, "fault-slow", 0, "probability of applying the request, then answering after --fault-slow-for")
	fl.Float64Var(&fs.PLatency, "fault-latency", 0, "probability of an extra --fault-latency-for delay")
	fl.BoolVar(&fs.WritesOnly, "fault-writes-only", false, "inject random faults into POST/PUT requests only")
	fl.DurationVar(&fs.RetryAfter, "fault-retry-after", time.Second, "Retry-After of injected 429/503")
	fl.DurationVar(&fs.Slow, "fault-slow-for", 35*time.Second, "delay of --fault-slow")
	fl.DurationVar(&fs.Latency, "fault-latency-for", 2*time.Second, "delay of --fault-latency")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(stderr, "zendesk-fake: unexpected arguments: %s\n", strings.Join(fl.Args(), " "))
		return 2
	}
	log := zerolog.New(stderr).With().Timestamp().Str("component", "zendesk-fake").Logger()
	if !*verbose {
		log = log.Level(zerolog.InfoLevel)
	}

	cfg := zendesktest.Config{
		Email:                      *email,
		Token:                      *token,
		AutoCreateTickets:          *autoCreate,
		RequestsPerMinute:          *rateLimit,
		Latency:                    *latency,
		Seed:                       *seed,
		MaxEventsPerRequest:        *maxEvents,
		MaxAttachmentBytes:         *maxAttach,
		ConflictOnConcurrentWrites: *conflicts,
		Logger:                     log,
		Role:                       *role,
		NoSideConversations:        *noSC,
		RateLimitHeader:            *rateHeader,
	}
	switch *role {
	case "admin", "agent", "end-user":
	default:
		fmt.Fprintf(stderr, "zendesk-fake: --role %q: want admin, agent or end-user\n", *role)
		return 2
	}
	if *tokenEnv != "" {
		cfg.Token = os.Getenv(*tokenEnv)
		if cfg.Token == "" {
			fmt.Fprintf(stderr, "zendesk-fake: environment variable %s is empty\n", *tokenEnv)
			return 2
		}
	}
	if *oauthEnv != "" {
		cfg.OAuthToken = os.Getenv(*oauthEnv)
		if cfg.OAuthToken == "" {
			fmt.Fprintf(stderr, "zendesk-fake: environment variable %s is empty\n", *oauthEnv)
			return 2
		}
	}
	for _, e := range []struct {
		name string
		dst  *string
	}{{*refreshEnv, &cfg.OAuthRefreshToken}, {*secretEnv, &cfg.OAuthClientSecret}} {
		if e.name == "" {
			continue
		}
		*e.dst = os.Getenv(e.name)
		if *e.dst == "" {
			fmt.Fprintf(stderr, "zendesk-fake: environment variable %s is empty\n", e.name)
			return 2
		}
	}
	cfg.OAuthClientID = *clientID
	if (cfg.OAuthRefreshToken != "" || cfg.OAuthClientSecret != "" || cfg.OAuthClientID != "") &&
		(cfg.OAuthToken == "" || cfg.OAuthRefreshToken == "" || cfg.OAuthClientID == "") {
		fmt.Fprintln(stderr, "zendesk-fake: OAuth refresh needs --oauth-token-env, --oauth-refresh-token-env and --oauth-client-id (and usually --oauth-client-secret-env)")
		return 2
	}
	if (cfg.Token == "") != (cfg.Email == "") {
		fmt.Fprintln(stderr, "zendesk-fake: --email and a token (--token or --token-env) go together")
		return 2
	}
	if !*allowRemote && !loopbackAddr(*addr) {
		fmt.Fprintf(stderr, "zendesk-fake: refusing to listen on non-loopback address %q without --allow-remote\n", *addr)
		return 2
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(stderr, "zendesk-fake: --cpuprofile: %v\n", err)
			return 2
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}

	fake := zendesktest.New(cfg)
	fake.SetFaults(fs)
	if *load != "" {
		if err := loadDump(*load, fake); err != nil {
			fmt.Fprintf(stderr, "zendesk-fake: --load: %v\n", err)
			return 2
		}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "zendesk-fake: %v\n", err)
		return 1
	}
	srv := &http.Server{Handler: fake, ReadHeaderTimeout: 30 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	url := "http://" + ln.Addr().String()
	if *printURL {
		fmt.Fprintln(stdout, url)
	}
	log.Info().Str("url", url).Bool("auth", cfg.Token != "" || cfg.OAuthToken != "").Bool("oauth_refresh", cfg.OAuthRefreshToken != "").Int("rate_limit", *rateLimit).Msg("serving")

	select {
	case <-ctx.Done():
	case err := <-served:
		fmt.Fprintf(stderr, "zendesk-fake: %v\n", err)
		return 1
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		_ = srv.Close()
	}
	<-served
	if *dump != "" {
		if err := writeDump(*dump, fake); err != nil {
			fmt.Fprintf(stderr, "zendesk-fake: dump: %v\n", err)
			return 1
		}
		log.Info().Str("file", *dump).Msg("dumped side conversations")
	}
	return 0
}

func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loadDump reads a --dump file (or one written by hand in its format) into
// the fake.
func loadDump(path string, fake *zendesktest.Fake) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var d struct {
		Tickets []zendesktest.TicketDump `json:"tickets"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return fake.Load(d.Tickets)
}

// writeDump writes {"tickets":[...]} atomically: temp file, sync, rename.
func writeDump(path string, fake *zendesktest.Fake) error {
	b, err := json.MarshalIndent(map[string]any{"tickets": fake.Dump()}, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
