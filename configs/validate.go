package configs

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
)

// validate checks every value that came from the file (c's paths already
// resolved). set maps the dotted keys the file sets to their lines.
func (c *Config) validate(set map[string]int) []*Error {
	var errs []*Error
	fail := func(key, format string, args ...any) {
		errs = append(errs, &Error{File: c.Path, Line: set[key], Key: key, Msg: fmt.Sprintf(format, args...)})
	}

	z := &c.Zendesk
	if z.URL != "" {
		if u, err := checkURL(z.URL); err != nil {
			fail("zendesk.url", "%v", err)
		} else {
			z.URL = u
		}
	}
	for key, v := range map[string]string{
		"zendesk.token_env":               z.TokenEnv,
		"zendesk.oauth_token_env":         z.OAuthTokenEnv,
		"zendesk.oauth_refresh_token_env": z.OAuthRefreshTokenEnv,
		"zendesk.oauth_client_secret_env": z.OAuthClientSecretEnv,
	} {
		if v != "" && !envName.MatchString(v) {
			fail(key, "want the NAME of an environment variable (letters, digits, _), got something else; never put a secret in the config")
		}
	}
	if z.OAuthRefreshTokenEnv != "" && z.OAuthTokenEnv == "" {
		fail("zendesk.oauth_refresh_token_env", "needs zendesk.oauth_token_env")
	}
	if z.RequestsPerMinute < 0 || z.RequestsPerMinute > MaxRequestsPerMinute {
		fail("zendesk.requests_per_minute", "must be ≥ 0 (0: no client-side limit) and at most %d (the largest plan allows 2500), got %d", MaxRequestsPerMinute, z.RequestsPerMinute)
	}
	if z.WriteRequestsPer10Minutes < 0 || z.WriteRequestsPer10Minutes > MaxWriteRequestsPer10Minutes {
		fail("zendesk.write_requests_per_10_minutes", "must be ≥ 0 (0: none) and at most %d, got %d", MaxWriteRequestsPer10Minutes, z.WriteRequestsPer10Minutes)
	}
	if z.Timeout > MaxTimeout {
		fail("zendesk.timeout", "must be at most %s (it is also how long a stop waits for requests in flight), got %s", MaxTimeout, z.Timeout)
	}
	if z.MaxRetryAfter < Duration(time.Second) || z.MaxRetryAfter > MaxRetryAfterLimit {
		fail("zendesk.max_retry_after", "must be between 1s and %s, got %s", MaxRetryAfterLimit, z.MaxRetryAfter)
	}
	if z.Settle < 0 || z.Settle > MaxSettle {
		fail("zendesk.settle", "must be between 0s and %s, got %s", MaxSettle, z.Settle)
	}

	for i := range c.Sources {
		src := &c.Sources[i]
		key := fmt.Sprintf("sources[%d]", i)
		if _, ok := set[key]; !ok {
			fail(key, "empty entry: want type and path")
			continue
		}
		switch src.Type {
		case "mbox", "csv", "json":
		case "":
			fail(key+".type", "required: mbox, csv or json")
		default:
			fail(key+".type", "want mbox, csv or json, got %q", src.Type)
		}
		if src.Path == "" {
			fail(key+".path", "required: a file or a glob")
		} else if _, err := globMatch(src.Path); err != nil {
			fail(key+".path", "bad glob pattern %q", src.Path)
		}
		if len(src.Fields) > 0 && src.Type == "mbox" {
			fail(key+".fields", "renames fields of csv and json sources only")
		}
		if p := src.ThreadKeyPrefix; p != "" {
			switch {
			case src.Type == "mbox":
				fail(key+".thread_key_prefix", "applies to csv and json sources only (mbox threads are keyed by Message-ID, which is global)")
			case strings.IndexFunc(p, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
				fail(key+".thread_key_prefix", "must not hold white space or control characters")
			case len(p) > 64:
				fail(key+".thread_key_prefix", "at most 64 bytes, got %d", len(p))
			}
		}
		byCol := map[string]string{}
		for _, f := range sortedKeys(src.Fields) {
			col := src.Fields[f]
			fk := key + ".fields." + f
			if !slices.Contains(fieldNames[:], f) {
				fail(fk, "unknown field; the fields are %s", strings.Join(fieldNames[:], ", "))
				continue
			}
			if col == "" {
				fail(fk, "empty column name")
				continue
			}
			if other, dup := byCol[col]; dup {
				fail(fk, "%q is already the name of %s", col, other)
				continue
			}
			byCol[col] = f
		}
	}

	t := &c.Mapping.Ticket
	if t.Header != "" && !headerName.MatchString(t.Header) {
		fail("mapping.ticket.header", "want a header name such as X-Zendesk-Ticket-Id, got %q", t.Header)
	}
	if t.SubjectRegex != "" {
		re, err := regexp.Compile(t.SubjectRegex)
		switch {
		case err != nil:
			fail("mapping.ticket.subject_regex", "does not compile: %s", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		case re.NumSubexp() < 1:
			fail("mapping.ticket.subject_regex", "needs a capture group around the ticket reference, e.g. '\\[#(\\d+)\\]'")
		}
	}
	if t.LookupCSV != "" {
		if err := readable(t.LookupCSV); err != nil {
			fail("mapping.ticket.lookup_csv", "%s: %v", t.LookupCSV, err)
		}
	}
	if t.DefaultTicketID < 0 {
		fail("mapping.ticket.default_ticket_id", "must be ≥ 0 (0: none), got %d", t.DefaultTicketID)
	}
	m := &c.Mapping
	switch m.State {
	case "open", "closed":
	default:
		fail("mapping.state", "want open or closed, got %q", m.State)
	}
	if a := m.Attachments; a.OnRefused != "skip" && a.OnRefused != "reject" {
		fail("mapping.attachments.on_refused", "want skip or reject, got %q", a.OnRefused)
	}
	if m.Attachments.MaxBytes < 1 {
		fail("mapping.attachments.max_bytes", "must be at least 1 byte")
	}
	for key, exts := range map[string][]string{"mapping.attachments.allow_extensions": m.Attachments.AllowExtensions, "mapping.attachments.deny_extensions": m.Attachments.DenyExtensions} {
		for _, e := range exts {
			if strings.TrimSpace(strings.TrimPrefix(e, ".")) == "" || strings.ContainsAny(e, "/\\ *?") {
				fail(key, "%q is not a file extension (write pdf, not *.pdf or a path)", e)
			}
		}
	}
	if m.AgentsCSV != "" {
		if err := readable(m.AgentsCSV); err != nil {
			fail("mapping.agents_csv", "%s: %v", m.AgentsCSV, err)
		}
	}
	if r := m.DefaultRecipient; !r.IsZero() {
		const key = "mapping.default_recipient"
		switch {
		case r.UserID < 0:
			fail(key+".user_id", "must be a positive Zendesk user id, got %d", r.UserID)
		case r.UserID > 0 && (r.Email != "" || r.Name != ""):
			fail(key, "give user_id (an agent) or email, not both")
		case r.UserID == 0 && r.Email == "":
			fail(key, "needs email (or user_id for an agent)")
		case r.UserID == 0:
			if a, err := mail.ParseAddress(r.Email); err != nil || a.Address != r.Email {
				fail(key+".email", "%q is not an email address", r.Email)
			}
		}
	}
	if m.MaxEventsPerRequest < 1 || m.MaxEventsPerRequest > MaxEventsPerRequestLimit {
		fail("mapping.max_events_per_request", "must be between 1 and %d, got %d", MaxEventsPerRequestLimit, m.MaxEventsPerRequest)
	}
	if m.MaxMessageBytes > MaxMessageBytesLimit {
		fail("mapping.max_message_bytes", "must be at most %s (each worker holds a message of this size in memory), got %s", MaxMessageBytesLimit, m.MaxMessageBytes)
	}
	if c.Pipeline.Workers < 1 || c.Pipeline.Workers > MaxWorkers {
		fail("pipeline.workers", "must be between 1 and %d, got %d: %s", MaxWorkers, c.Pipeline.Workers, workersWhy)
	}
	if c.Pipeline.MaxAttempts < 1 || c.Pipeline.MaxAttempts > MaxAttemptsLimit {
		fail("pipeline.max_attempts", "must be between 1 and %d, got %d", MaxAttemptsLimit, c.Pipeline.MaxAttempts)
	}
	if c.Checkpoint.Path == "" {
		fail("checkpoint.path", "must not be empty")
	}
	return errs
}

// workersWhy says why pipeline.workers has a ceiling.
const workersWhy = "the account's rate limit, not the workers, bounds the speed (2500 requests a minute at most), and each worker holds a thread in memory"

var (
	envName    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	headerName = regexp.MustCompile(`^[!#$%&'*+\-.^_` + "`" + `|~0-9A-Za-z]+$`)
)

// checkURL validates zendesk.url and returns it without a trailing slash.
// http:// is accepted only for a loopback host.
func checkURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fmt.Errorf("want a URL such as https://acme.zendesk.com, got %q", raw)
	}
	if u.User != nil {
		return "", errors.New("must not hold credentials; use zendesk.email and zendesk.token_env")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("must not have a query or fragment, got %q", raw)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return "", fmt.Errorf("http:// is refused for %s (tokens would travel in clear); use https://, or http:// only with a loopback host", u.Hostname())
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// readable reports why path cannot be read as a file.
func readable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return errors.New(unwrapPathError(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return errors.New(unwrapPathError(err))
	}
	if st.IsDir() {
		return errors.New("is a directory")
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
