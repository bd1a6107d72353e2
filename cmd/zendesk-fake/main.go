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
	f, code, ok := parseFlags(args, stderr)
	if !ok {
		return code
	}
	log := zerolog.New(stderr).With().Timestamp().Str("component", "zendesk-fake").Logger()
	if !f.verbose {
		log = log.Level(zerolog.InfoLevel)
	}
	cfg, err := f.config(log)
	if err != nil {
		fmt.Fprintf(stderr, "zendesk-fake: %v\n", err)
		return 2
	}
	if f.cpuProfile != "" {
		stop, err := startCPUProfile(f.cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "zendesk-fake: --cpuprofile: %v\n", err)
			return 2
		}
		defer stop()
	}

	fake := zendesktest.New(cfg)
	fake.SetFaults(f.faults)
	if f.load != "" {
		if err := loadDump(f.load, fake); err != nil {
			fmt.Fprintf(stderr, "zendesk-fake: --load: %v\n", err)
			return 2
		}
	}
	return serve(ctx, f, cfg, fake, log, stdout, stderr)
}

// fakeFlags are zendesk-fake's flags.
type fakeFlags struct {
	addr        string
	allowRemote bool
	email       string
	token       string
	tokenEnv    string
	oauthEnv    string
	refreshEnv  string
	clientID    string
	secretEnv   string
	rateLimit   int
	latency     time.Duration
	autoCreate  bool
	seed        int64
	printURL    bool
	dump        string
	maxEvents   int
	maxAttach   int64
	conflicts   bool
	verbose     bool
	cpuProfile  string
	role        string
	noSC        bool
	rateHeader  int
	load        string
	faults      zendesktest.Faults
}

// parseFlags parses args; when ok is false, run exits with code (0 for
// -h, 2 for a usage error, said on stderr).
func parseFlags(args []string, stderr io.Writer) (f *fakeFlags, code int, ok bool) {
	f = &fakeFlags{}
	fl := flag.NewFlagSet("zendesk-fake", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.StringVar(&f.addr, "addr", "127.0.0.1:8089", "listen address")
	fl.BoolVar(&f.allowRemote, "allow-remote", false, "allow listening on a non-loopback address")
	fl.StringVar(&f.email, "email", "", "accepted API-token email (with --token or --token-env)")
	fl.StringVar(&f.token, "token", "", "accepted API token (visible in ps: prefer --token-env)")
	fl.StringVar(&f.tokenEnv, "token-env", "", "name of an environment variable holding the accepted API token")
	fl.StringVar(&f.oauthEnv, "oauth-token-env", "", "name of an environment variable holding an accepted OAuth bearer token")
	fl.StringVar(&f.refreshEnv, "oauth-refresh-token-env", "", "name of an environment variable holding the OAuth refresh token that POST /oauth/tokens accepts")
	fl.StringVar(&f.clientID, "oauth-client-id", "", "OAuth client id that POST /oauth/tokens accepts")
	fl.StringVar(&f.secretEnv, "oauth-client-secret-env", "", "name of an environment variable holding the OAuth client secret")
	fl.IntVar(&f.rateLimit, "rate-limit", 0, "requests per minute before 429 (0 = unlimited)")
	fl.DurationVar(&f.latency, "latency", 0, "latency added to every request")
	fl.BoolVar(&f.autoCreate, "auto-create-tickets", true, "every ticket id exists")
	fl.Int64Var(&f.seed, "seed", 1, "seed for the fault probabilities")
	fl.BoolVar(&f.printURL, "print-url", false, "print the listening URL as one line on stdout once ready")
	fl.StringVar(&f.dump, "dump", "", "on SIGINT/SIGTERM write all side conversations with events to this JSON file")
	fl.IntVar(&f.maxEvents, "max-events-per-request", 0, "answer 413 to imports with more events (0 = no limit)")
	fl.Int64Var(&f.maxAttach, "max-attachment-bytes", 0, "upload size cap (0 = 50 MiB)")
	fl.BoolVar(&f.conflicts, "conflict-on-concurrent-writes", false, "answer 409 to a write on a ticket with a write in flight")
	fl.BoolVar(&f.verbose, "verbose", false, "log every request to stderr")
	fl.StringVar(&f.cpuProfile, "cpuprofile", "", "write a pprof CPU profile to this file until stopped (for performance work)")
	fl.StringVar(&f.role, "role", "admin", "role GET /api/v2/users/me gives the user: admin, agent or end-user")
	fl.BoolVar(&f.noSC, "no-side-conversations", false, "answer 403 to every side-conversation endpoint, as an account without the add-on")
	fl.IntVar(&f.rateHeader, "rate-limit-header", 0, "X-Rate-Limit to announce when --rate-limit is 0 (default 700)")
	fl.StringVar(&f.load, "load", "", "start with the tickets and side conversations of this JSON file (the --dump format: {\"tickets\":[...]}), e.g. to plant duplicates or foreign side conversations")
	faultFlags(fl, &f.faults)
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, 0, false
		}
		return nil, 2, false
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(stderr, "zendesk-fake: unexpected arguments: %s\n", strings.Join(fl.Args(), " "))
		return nil, 2, false
	}
	return f, 0, true
}

// faultFlags declares the fault injection flags into fs.
func faultFlags(fl *flag.FlagSet, fs *zendesktest.Faults) {
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
}

// config is the fake's configuration from the flags, secrets read from
// the environment variables they name; an error is a usage error.
func (f *fakeFlags) config(log zerolog.Logger) (zendesktest.Config, error) {
	cfg := zendesktest.Config{
		Email:                      f.email,
		Token:                      f.token,
		AutoCreateTickets:          f.autoCreate,
		RequestsPerMinute:          f.rateLimit,
		Latency:                    f.latency,
		Seed:                       f.seed,
		MaxEventsPerRequest:        f.maxEvents,
		MaxAttachmentBytes:         f.maxAttach,
		ConflictOnConcurrentWrites: f.conflicts,
		Logger:                     log,
		Role:                       f.role,
		NoSideConversations:        f.noSC,
		RateLimitHeader:            f.rateHeader,
	}
	switch f.role {
	case "admin", "agent", "end-user":
	default:
		return cfg, fmt.Errorf("--role %q: want admin, agent or end-user", f.role)
	}
	if err := f.secrets(&cfg); err != nil {
		return cfg, err
	}
	cfg.OAuthClientID = f.clientID
	if (cfg.OAuthRefreshToken != "" || cfg.OAuthClientSecret != "" || cfg.OAuthClientID != "") &&
		(cfg.OAuthToken == "" || cfg.OAuthRefreshToken == "" || cfg.OAuthClientID == "") {
		return cfg, errors.New("OAuth refresh needs --oauth-token-env, --oauth-refresh-token-env and --oauth-client-id (and usually --oauth-client-secret-env)")
	}
	if (cfg.Token == "") != (cfg.Email == "") {
		return cfg, errors.New("--email and a token (--token or --token-env) go together")
	}
	if !f.allowRemote && !loopbackAddr(f.addr) {
		return cfg, fmt.Errorf("refusing to listen on non-loopback address %q without --allow-remote", f.addr)
	}
	return cfg, nil
}

// secrets reads the token, OAuth token, refresh token and client secret
// from the environment variables the flags name; a named one that is
// empty is an error.
func (f *fakeFlags) secrets(cfg *zendesktest.Config) error {
	for _, e := range []struct {
		name string
		dst  *string
	}{{f.tokenEnv, &cfg.Token}, {f.oauthEnv, &cfg.OAuthToken}, {f.refreshEnv, &cfg.OAuthRefreshToken}, {f.secretEnv, &cfg.OAuthClientSecret}} {
		if e.name == "" {
			continue
		}
		*e.dst = os.Getenv(e.name)
		if *e.dst == "" {
			return fmt.Errorf("environment variable %s is empty", e.name)
		}
	}
	return nil
}

// startCPUProfile starts a pprof CPU profile into path; stop ends it.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// serve serves fake on --addr until ctx is done, then writes --dump; it
// returns the exit code.
func serve(ctx context.Context, f *fakeFlags, cfg zendesktest.Config, fake *zendesktest.Fake, log zerolog.Logger, stdout, stderr io.Writer) int {
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		fmt.Fprintf(stderr, "zendesk-fake: %v\n", err)
		return 1
	}
	srv := &http.Server{Handler: fake, ReadHeaderTimeout: 30 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	url := "http://" + ln.Addr().String()
	if f.printURL {
		fmt.Fprintln(stdout, url)
	}
	log.Info().Str("url", url).Bool("auth", cfg.Token != "" || cfg.OAuthToken != "").Bool("oauth_refresh", cfg.OAuthRefreshToken != "").Int("rate_limit", f.rateLimit).Msg("serving")

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
	if f.dump != "" {
		if err := writeDump(f.dump, fake); err != nil {
			fmt.Fprintf(stderr, "zendesk-fake: dump: %v\n", err)
			return 1
		}
		log.Info().Str("file", f.dump).Msg("dumped side conversations")
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
