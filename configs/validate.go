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

	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/formats"
)

// validate checks every value that came from the file (c's paths already
// resolved). set maps the dotted keys the file sets to their lines.
func (c *Config) validate(set map[string]int) []*Error {
	v := &checker{c: c, set: set}
	v.zendesk()
	for i := range c.Sources {
		v.source(i)
	}
	v.ticket()
	v.mapping()
	v.attachments()
	v.recipient()
	v.pipeline()
	return v.errs
}

// checker collects the problems validate finds.
type checker struct {
	c    *Config
	set  map[string]int
	errs []*Error
}

func (v *checker) fail(key, format string, args ...any) {
	v.errs = append(v.errs, &Error{File: v.c.Path, Line: v.set[key], Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (v *checker) zendesk() {
	z := &v.c.Zendesk
	if z.URL != "" {
		if u, err := checkURL(z.URL); err != nil {
			v.fail("zendesk.url", "%v", err)
		} else {
			z.URL = u
		}
	}
	for key, val := range map[string]string{
		"zendesk.token_env":               z.TokenEnv,
		"zendesk.oauth_token_env":         z.OAuthTokenEnv,
		"zendesk.oauth_refresh_token_env": z.OAuthRefreshTokenEnv,
		"zendesk.oauth_client_secret_env": z.OAuthClientSecretEnv,
	} {
		if val != "" && !envName.MatchString(val) {
			v.fail(key, "want the NAME of an environment variable (letters, digits, _), got something else; never put a secret in the config")
		}
	}
	if z.OAuthRefreshTokenEnv != "" && z.OAuthTokenEnv == "" {
		v.fail("zendesk.oauth_refresh_token_env", "needs zendesk.oauth_token_env")
	}
	v.zendeskLimits()
}

func (v *checker) zendeskLimits() {
	z := &v.c.Zendesk
	if z.RequestsPerMinute < 0 || z.RequestsPerMinute > MaxRequestsPerMinute {
		v.fail("zendesk.requests_per_minute", "must be ≥ 0 (0: no client-side limit) and at most %d (the largest plan allows 2500), got %d", MaxRequestsPerMinute, z.RequestsPerMinute)
	}
	if z.WriteRequestsPer10Minutes < 0 || z.WriteRequestsPer10Minutes > MaxWriteRequestsPer10Minutes {
		v.fail("zendesk.write_requests_per_10_minutes", "must be ≥ 0 (0: none) and at most %d, got %d", MaxWriteRequestsPer10Minutes, z.WriteRequestsPer10Minutes)
	}
	if z.Timeout > MaxTimeout {
		v.fail("zendesk.timeout", "must be at most %s (it is also how long a stop waits for requests in flight), got %s", MaxTimeout, z.Timeout)
	}
	if z.MaxRetryAfter < Duration(time.Second) || z.MaxRetryAfter > MaxRetryAfterLimit {
		v.fail("zendesk.max_retry_after", "must be between 1s and %s, got %s", MaxRetryAfterLimit, z.MaxRetryAfter)
	}
	if z.Settle < 0 || z.Settle > MaxSettle {
		v.fail("zendesk.settle", "must be between 0s and %s, got %s", MaxSettle, z.Settle)
	}
}

// source checks sources[i]: its type against the registry of formats,
// its path, and the keys only some formats take.
func (v *checker) source(i int) {
	src := &v.c.Sources[i]
	key := fmt.Sprintf("sources[%d]", i)
	if _, ok := v.set[key]; !ok {
		v.fail(key, "empty entry: want type and path")
		return
	}
	reg := formats.Registry()
	names := strings.Join(reg.Names(), ", ")
	f, known := reg.Lookup(src.Type)
	switch {
	case src.Type == "":
		v.fail(key+".type", "required: one of %s", names)
	case !known:
		v.fail(key+".type", "want one of %s, got %q", names, src.Type)
	}
	if src.Path == "" {
		v.fail(key+".path", "required: a file or a glob")
	} else if _, err := globMatch(src.Path); err != nil {
		v.fail(key+".path", "bad glob pattern %q", src.Path)
	}
	if known {
		v.formatKeys(key, src, f, reg)
	}
	v.fields(key, src, known && f.Paths)
	v.formatValues(key, src, known && !f.Records)
}

// formatKeys refuses the keys src's format does not take, naming the
// formats that do.
func (v *checker) formatKeys(key string, src *Source, f sources.Format, reg *sources.Registry) {
	if !f.Records {
		if len(src.Fields) > 0 {
			v.fail(key+".fields", "renames fields of %s sources only", recordFormats(reg))
		}
		if src.ThreadKeyPrefix != "" {
			v.fail(key+".thread_key_prefix", "applies to %s sources only (%s threads are keyed by Message-ID, which is global)", recordFormats(reg), f.Name)
		}
	}
	for k, isSet := range map[string]bool{
		"folders": len(src.Folders) > 0, "thread_by": src.ThreadBy != "",
		"skip_labels": len(src.SkipLabels) > 0, "messages_path": src.MessagesPath != "",
	} {
		if isSet && !slices.Contains(f.Keys, k) {
			v.fail(key+"."+k, "applies to %s sources only", formatsTaking(reg, k))
		}
	}
}

// recordFormats names the formats whose records are field records.
func recordFormats(reg *sources.Registry) string {
	var out []string
	for _, n := range reg.Names() {
		if f, _ := reg.Lookup(n); f.Records {
			out = append(out, n)
		}
	}
	return strings.Join(out, " and ")
}

// formatsTaking names the formats that take source key k.
func formatsTaking(reg *sources.Registry, k string) string {
	var out []string
	for _, n := range reg.Names() {
		if f, _ := reg.Lookup(n); slices.Contains(f.Keys, k) {
			out = append(out, n)
		}
	}
	return strings.Join(out, " and ")
}

// formatValues checks the values of the keys of one format.
// noPrefix says the format refuses thread_key_prefix (formatKeys said so).
func (v *checker) formatValues(key string, src *Source, noPrefix bool) {
	if p := src.ThreadKeyPrefix; p != "" && !noPrefix {
		switch {
		case strings.IndexFunc(p, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
			v.fail(key+".thread_key_prefix", "must not hold white space or control characters")
		case len(p) > 64:
			v.fail(key+".thread_key_prefix", "at most 64 bytes, got %d", len(p))
		}
	}
	switch src.ThreadBy {
	case "", sources.ThreadByJWZ, sources.ThreadByGmail:
	default:
		v.fail(key+".thread_by", "want %s (Message-ID, References) or %s (Gmail Takeout's X-GM-THRID), got %q", sources.ThreadByJWZ, sources.ThreadByGmail, src.ThreadBy)
	}
	for j, l := range src.SkipLabels {
		if strings.TrimSpace(l) == "" || strings.Contains(l, ",") {
			v.fail(fmt.Sprintf("%s.skip_labels[%d]", key, j), "want one Gmail label such as Spam, got %q", l)
		}
	}
	for j, f := range src.Folders {
		switch {
		case strings.EqualFold(f, "all") && len(src.Folders) > 1:
			v.fail(fmt.Sprintf("%s.folders[%d]", key, j), "all reads every folder: give it alone")
		case strings.TrimSpace(f) == "" || strings.ContainsAny(f, `/\`) || f == "..":
			v.fail(fmt.Sprintf("%s.folders[%d]", key, j), "want INBOX, all, or a Maildir++ folder name such as .Sent, got %q", f)
		}
	}
	if p := src.MessagesPath; p != "" && !validPath(p) {
		v.fail(key+".messages_path", "want a dotted path of object keys such as item.threads, got %q", p)
	}
}

// validPath reports whether p is a dotted path of non-empty keys.
func validPath(p string) bool {
	for k := range strings.SplitSeq(p, ".") {
		if k == "" || strings.Contains(k, "[") {
			return false
		}
	}
	return true
}

// fields checks sources[i].fields: known field names, one name each.
// paths says the format reads fields by path: two may name one value.
func (v *checker) fields(key string, src *Source, paths bool) {
	byCol := map[string]string{}
	for _, f := range sortedKeys(src.Fields) {
		col := src.Fields[f]
		fk := key + ".fields." + f
		if !slices.Contains(fieldNames[:], f) {
			v.fail(fk, "unknown field; the fields are %s", strings.Join(fieldNames[:], ", "))
			continue
		}
		if col == "" {
			v.fail(fk, "empty column name")
			continue
		}
		if other, dup := byCol[col]; dup && !paths {
			v.fail(fk, "%q is already the name of %s", col, other)
			continue
		}
		byCol[col] = f
	}
}

func (v *checker) ticket() {
	t := &v.c.Mapping.Ticket
	if t.Header != "" && !headerName.MatchString(t.Header) {
		v.fail("mapping.ticket.header", "want a header name such as X-Zendesk-Ticket-Id, got %q", t.Header)
	}
	if t.SubjectRegex != "" {
		re, err := regexp.Compile(t.SubjectRegex)
		switch {
		case err != nil:
			v.fail("mapping.ticket.subject_regex", "does not compile: %s", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		case re.NumSubexp() < 1:
			v.fail("mapping.ticket.subject_regex", "needs a capture group around the ticket reference, e.g. '\\[#(\\d+)\\]'")
		}
	}
	if t.LookupCSV != "" {
		if err := readable(t.LookupCSV); err != nil {
			v.fail("mapping.ticket.lookup_csv", "%s: %v", t.LookupCSV, err)
		}
	}
	if t.DefaultTicketID < 0 {
		v.fail("mapping.ticket.default_ticket_id", "must be ≥ 0 (0: none), got %d", t.DefaultTicketID)
	}
}

func (v *checker) mapping() {
	m := &v.c.Mapping
	switch m.State {
	case "open", "closed":
	default:
		v.fail("mapping.state", "want open or closed, got %q", m.State)
	}
	if m.AgentsCSV != "" {
		if err := readable(m.AgentsCSV); err != nil {
			v.fail("mapping.agents_csv", "%s: %v", m.AgentsCSV, err)
		}
	}
	if m.MaxEventsPerRequest < 1 || m.MaxEventsPerRequest > MaxEventsPerRequestLimit {
		v.fail("mapping.max_events_per_request", "must be between 1 and %d, got %d", MaxEventsPerRequestLimit, m.MaxEventsPerRequest)
	}
	if m.MaxMessageBytes > MaxMessageBytesLimit {
		v.fail("mapping.max_message_bytes", "must be at most %s (each worker holds a message of this size in memory), got %s", MaxMessageBytesLimit, m.MaxMessageBytes)
	}
}

func (v *checker) attachments() {
	m := &v.c.Mapping
	if a := m.Attachments; a.OnRefused != "skip" && a.OnRefused != "reject" {
		v.fail("mapping.attachments.on_refused", "want skip or reject, got %q", a.OnRefused)
	}
	if m.Attachments.MaxBytes < 1 {
		v.fail("mapping.attachments.max_bytes", "must be at least 1 byte")
	}
	for key, exts := range map[string][]string{"mapping.attachments.allow_extensions": m.Attachments.AllowExtensions, "mapping.attachments.deny_extensions": m.Attachments.DenyExtensions} {
		for _, e := range exts {
			if strings.TrimSpace(strings.TrimPrefix(e, ".")) == "" || strings.ContainsAny(e, "/\\ *?") {
				v.fail(key, "%q is not a file extension (write pdf, not *.pdf or a path)", e)
			}
		}
	}
}

func (v *checker) recipient() {
	r := v.c.Mapping.DefaultRecipient
	if r.IsZero() {
		return
	}
	const key = "mapping.default_recipient"
	switch {
	case r.UserID < 0:
		v.fail(key+".user_id", "must be a positive Zendesk user id, got %d", r.UserID)
	case r.UserID > 0 && (r.Email != "" || r.Name != ""):
		v.fail(key, "give user_id (an agent) or email, not both")
	case r.UserID == 0 && r.Email == "":
		v.fail(key, "needs email (or user_id for an agent)")
	case r.UserID == 0:
		if a, err := mail.ParseAddress(r.Email); err != nil || a.Address != r.Email {
			v.fail(key+".email", "%q is not an email address", r.Email)
		}
	}
}

func (v *checker) pipeline() {
	c := v.c
	if c.Pipeline.Workers < 1 || c.Pipeline.Workers > MaxWorkers {
		v.fail("pipeline.workers", "must be between 1 and %d, got %d: %s", MaxWorkers, c.Pipeline.Workers, workersWhy)
	}
	if c.Pipeline.MaxAttempts < 1 || c.Pipeline.MaxAttempts > MaxAttemptsLimit {
		v.fail("pipeline.max_attempts", "must be between 1 and %d, got %d", MaxAttemptsLimit, c.Pipeline.MaxAttempts)
	}
	if c.Pipeline.ReadChunkMessages < 0 {
		v.fail("pipeline.read_chunk_messages", "must be 0 (read the archive whole) or more, got %d", c.Pipeline.ReadChunkMessages)
	}
	if c.Checkpoint.Path == "" {
		v.fail("checkpoint.path", "must not be empty")
	}
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
