package configs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ErrConfig is wrapped by every configuration error: an unknown key, a
// wrong type, a bad value, an unreadable path, a missing credential. main
// maps it to exit code 2.
var ErrConfig = errors.New("configs: invalid configuration")

// Error is one configuration problem. It names the dotted key (or the
// environment variable) and, when it comes from the file, the line.
type Error struct {
	File string // config file; "" for problems not tied to the file
	Line int    // 1-based line in File; 0 when unknown
	Key  string // dotted key ("mapping.max_events_per_request", "sources[1].path") or env var name
	Msg  string
}

// Error formats the problem as "FILE: line N: KEY: MSG".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config")
	if e.File != "" {
		b.WriteString(" ")
		b.WriteString(e.File)
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, ": line %d", e.Line)
	}
	if e.Key != "" {
		b.WriteString(": ")
		b.WriteString(e.Key)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns ErrConfig.
func (e *Error) Unwrap() error { return ErrConfig }

// Defaults (contract §2).
const (
	DefaultTokenEnv                  = "ZENDESK_API_TOKEN"
	DefaultRequestsPerMinute         = 200
	DefaultWriteRequestsPer10Minutes = 300
	DefaultTimeout                   = Duration(30 * time.Second)
	DefaultState                     = "closed"
	DefaultMaxEventsPerRequest       = 50
	DefaultMaxMessageBytes           = ByteSize(25 << 20)
	DefaultAttachmentMaxBytes        = ByteSize(50_000_000)
	DefaultAttachmentOnRefused       = "skip"
	DefaultReuseUploadsFor           = Duration(30 * time.Minute)
	DefaultWorkers                   = 8
	DefaultMaxAttempts               = 8
	DefaultReadChunkMessages         = 500_000
	DefaultCheckpointPath            = "threadlift.db"

	// MaxEventsPerRequestLimit bounds mapping.max_events_per_request. The
	// API documents no per-request event limit; 1000 keeps one request
	// body bounded (a typo like 50000 would otherwise build one giant
	// payload per thread) while leaving far more room than the default.
	// The client halves the chunk on 413 anyway.
	MaxEventsPerRequestLimit = 1000

	// DefaultMaxRetryAfter is zendesk.max_retry_after: the longest
	// Retry-After a run waits for. Zendesk's per-minute limits ask for
	// seconds; the side-conversation write bucket counts per 10 minutes,
	// so a genuine wait can reach 10 minutes.
	DefaultMaxRetryAfter = Duration(15 * time.Minute)

	// DefaultSettle is zendesk.settle: how long a write that got no answer
	// (a timeout, a connection lost after sending, a 504, a run that died
	// with it in flight) is given to land before its ticket is looked up.
	// Zendesk may carry a request out after the client stopped waiting; a
	// lookup made at once would miss it and send it again. Seconds cover
	// a queued request; each such write costs its worker this wait.
	DefaultSettle = Duration(10 * time.Second)

	// Ceilings: a value above one is a config error naming the key. They
	// catch typos (an extra zero, a unit) before they cost memory or hang
	// a run.

	// MaxWorkers bounds pipeline.workers. The account's rate limit, not the
	// workers, bounds throughput: the largest plan allows 2,500 requests a
	// minute (about 42 a second), which a few dozen workers keep busy even
	// at a second per request, while every worker holds a thread in memory
	// and a stop waits for all of them.
	MaxWorkers = 64
	// MaxAttemptsLimit bounds pipeline.max_attempts: 100 attempts with
	// backoff up to a minute already retry one request for over an hour.
	MaxAttemptsLimit = 100
	// MaxRequestsPerMinute bounds zendesk.requests_per_minute and
	// THREADLIFT_REQUESTS_PER_MINUTE: 40 times the largest published plan.
	MaxRequestsPerMinute = 100_000
	// MaxWriteRequestsPer10Minutes bounds zendesk.write_requests_per_10_minutes.
	MaxWriteRequestsPer10Minutes = 1_000_000
	// MaxTimeout bounds zendesk.timeout, which is also how long a stop
	// waits for requests in flight: an hour uploads 50 MB at 120 kbit/s.
	MaxTimeout = Duration(time.Hour)
	// MaxRetryAfterLimit bounds zendesk.max_retry_after.
	MaxRetryAfterLimit = Duration(24 * time.Hour)
	// MaxSettle bounds zendesk.settle.
	MaxSettle = Duration(10 * time.Minute)
	// MaxMessageBytesLimit bounds mapping.max_message_bytes: a message is
	// held in memory while its thread is mapped and posted, by each worker.
	MaxMessageBytesLimit = ByteSize(1 << 30)

	// maxConfigBytes caps the config file: a config is a few KiB.
	maxConfigBytes = 1 << 20
)

// DefaultDenyExtensions are the attachment types never uploaded unless
// mapping.attachments.deny_extensions says otherwise: Windows executables
// and scripts that run when opened. A support archive rarely needs them
// and an agent opening one from a ticket should not.
func DefaultDenyExtensions() []string {
	return []string{"exe", "bat", "cmd", "com", "scr", "pif", "msi", "vbs"}
}

// Environment variables that override the file (contract §2).
const (
	EnvZendeskURL        = "THREADLIFT_ZENDESK_URL"
	EnvZendeskEmail      = "THREADLIFT_ZENDESK_EMAIL"
	EnvWorkers           = "THREADLIFT_WORKERS"
	EnvRequestsPerMinute = "THREADLIFT_REQUESTS_PER_MINUTE"
	EnvCheckpoint        = "THREADLIFT_CHECKPOINT"
	EnvReadChunkMessages = "THREADLIFT_READ_CHUNK_MESSAGES"
)

// FieldNames are the default source field names of contract §3, the only
// keys allowed in sources[].fields.
var fieldNames = [...]string{
	"thread_id", "message_id", "ticket_id", "created_at", "from", "to", "cc",
	"subject", "body", "html_body", "attachments",
}

// FieldNames returns the default field names of contract §3, in order.
func FieldNames() []string { return append([]string(nil), fieldNames[:]...) }

// Config mirrors the YAML file key for key (contract §2). After Load every
// default is applied, every path is absolute and every value is valid.
type Config struct {
	Zendesk    Zendesk    `yaml:"zendesk"`
	Sources    []Source   `yaml:"sources"`
	Mapping    Mapping    `yaml:"mapping"`
	Pipeline   Pipeline   `yaml:"pipeline"`
	Checkpoint Checkpoint `yaml:"checkpoint"`

	// Dir is the absolute folder of the config file; relative paths in the
	// file are resolved against it.
	Dir string `yaml:"-"`
	// Path is the absolute path of the config file.
	Path string `yaml:"-"`
}

// Zendesk is the zendesk: section.
type Zendesk struct {
	URL                       string   `yaml:"url"`   // https://acme.zendesk.com; no trailing slash after Load
	Email                     string   `yaml:"email"` // for API-token auth
	TokenEnv                  string   `yaml:"token_env"`
	OAuthTokenEnv             string   `yaml:"oauth_token_env"`
	OAuthRefreshTokenEnv      string   `yaml:"oauth_refresh_token_env"`
	OAuthClientID             string   `yaml:"oauth_client_id"`
	OAuthClientSecretEnv      string   `yaml:"oauth_client_secret_env"`
	RequestsPerMinute         int      `yaml:"requests_per_minute"`           // 0: no client-side ceiling
	WriteRequestsPer10Minutes int      `yaml:"write_requests_per_10_minutes"` // 0: none
	Timeout                   Duration `yaml:"timeout"`
	// MaxRetryAfter is the longest Retry-After the run waits for; a longer
	// one stops the run cleanly, saying when to run it again. An extension
	// to contract §2.
	MaxRetryAfter Duration `yaml:"max_retry_after"`
	// Settle is how long a write that got no answer is given to land
	// before its ticket is looked up (DefaultSettle). An extension to
	// contract §2.
	Settle Duration `yaml:"settle"`
}

// Source is one entry of sources:.
type Source struct {
	Type   string            `yaml:"type"`   // mbox | csv | json
	Path   string            `yaml:"path"`   // absolute file or glob after Load
	Fields map[string]string `yaml:"fields"` // default field name → name in the file
	// ThreadKeyPrefix goes before the thread_id and message_id of every
	// csv/json record of this source (and into its content hash), so that
	// two exports that both number their conversations 1..N stay apart.
	ThreadKeyPrefix string `yaml:"thread_key_prefix"`

	// Options of one format only (issue 16); Load refuses them on another.

	// Folders (maildir): the Maildir++ folders read, INBOX being the
	// root's own; "all" (a word, or a list of it) reads every folder.
	Folders Names `yaml:"folders"`
	// ThreadBy (mbox): jwz (the default) or gmail (X-GM-THRID).
	ThreadBy string `yaml:"thread_by"`
	// SkipLabels (mbox): messages with one of these X-Gmail-Labels are
	// left out, counted in the report.
	SkipLabels []string `yaml:"skip_labels"`
	// MessagesPath (json): dotted path of a thread object's messages
	// array; default messages.
	MessagesPath string `yaml:"messages_path"`
}

// Names is a list of names that YAML may also give as one word
// ("folders: all").
type Names []string

// Mapping is the mapping: section.
type Mapping struct {
	Ticket              Ticket      `yaml:"ticket"`
	State               string      `yaml:"state"` // open | closed
	AgentsCSV           string      `yaml:"agents_csv"`
	MaxEventsPerRequest int         `yaml:"max_events_per_request"`
	SubjectThreading    bool        `yaml:"subject_threading"`
	MaxMessageBytes     ByteSize    `yaml:"max_message_bytes"`
	Strict              bool        `yaml:"strict"`
	Attachments         Attachments `yaml:"attachments"`
	// DefaultRecipient receives a message that has no valid recipient
	// (mailing-list archives strip To). An extension to contract §2.
	DefaultRecipient Recipient `yaml:"default_recipient"`
}

// Recipient is mapping.default_recipient. In YAML either an address,
// "archive@acme.com" or "Archive <archive@acme.com>", or a mapping:
// {user_id: 123456} for a Zendesk agent, or {email: ..., name: ...}. The
// zero value (the key unset, or "") means none.
type Recipient struct {
	Email  string `yaml:"email"`
	Name   string `yaml:"name"`
	UserID int64  `yaml:"user_id"`
}

// IsZero reports whether no recipient is configured.
func (r Recipient) IsZero() bool { return r == Recipient{} }

// Attachments is mapping.attachments: which attachments are uploaded.
// An extension to contract §2.
type Attachments struct {
	MaxBytes ByteSize `yaml:"max_bytes"` // larger attachments are left out (or reject the thread)
	// AllowExtensions, when not empty, lists the only extensions uploaded;
	// DenyExtensions are never uploaded. Without the dot, any case.
	AllowExtensions []string `yaml:"allow_extensions"`
	DenyExtensions  []string `yaml:"deny_extensions"`
	// OnRefused: "skip" imports the message without the attachment and
	// says so in its body; "reject" rejects the thread.
	OnRefused string `yaml:"on_refused"`
	// ReuseUploadsFor is how long an upload is trusted on a resume before
	// it is uploaded again (upload tokens expire).
	ReuseUploadsFor Duration `yaml:"reuse_uploads_for"`
}

// Ticket is mapping.ticket: how a thread finds its parent ticket.
type Ticket struct {
	Header          string `yaml:"header"`
	SubjectRegex    string `yaml:"subject_regex"` // compiles, ≥1 capture group (checked by Load)
	LookupCSV       string `yaml:"lookup_csv"`
	DefaultTicketID int64  `yaml:"default_ticket_id"` // 0: unmapped threads are rejected
}

// Pipeline is the pipeline: section.
type Pipeline struct {
	Workers     int `yaml:"workers"`
	MaxAttempts int `yaml:"max_attempts"`
	// ReadChunkMessages bounds the messages an import's full read (and
	// validate's and verify's read) holds at once
	// (pipeline.Options.ReadChunk); 0 reads the archive whole.
	ReadChunkMessages int `yaml:"read_chunk_messages"`
}

// Checkpoint is the checkpoint: section.
type Checkpoint struct {
	Path string `yaml:"path"` // absolute after Load
}

// Defaults returns a Config holding every default and nothing else. Its
// paths are relative (Load resolves them).
func Defaults() *Config {
	return &Config{
		Zendesk: Zendesk{
			TokenEnv:                  DefaultTokenEnv,
			RequestsPerMinute:         DefaultRequestsPerMinute,
			WriteRequestsPer10Minutes: DefaultWriteRequestsPer10Minutes,
			Timeout:                   DefaultTimeout,
			MaxRetryAfter:             DefaultMaxRetryAfter,
			Settle:                    DefaultSettle,
		},
		Mapping: Mapping{
			State:               DefaultState,
			MaxEventsPerRequest: DefaultMaxEventsPerRequest,
			MaxMessageBytes:     DefaultMaxMessageBytes,
			Attachments: Attachments{
				MaxBytes:        DefaultAttachmentMaxBytes,
				DenyExtensions:  DefaultDenyExtensions(),
				OnRefused:       DefaultAttachmentOnRefused,
				ReuseUploadsFor: DefaultReuseUploadsFor,
			},
		},
		Pipeline:   Pipeline{Workers: DefaultWorkers, MaxAttempts: DefaultMaxAttempts, ReadChunkMessages: DefaultReadChunkMessages},
		Checkpoint: Checkpoint{Path: DefaultCheckpointPath},
	}
}

// SubjectRegexp returns the compiled mapping.ticket.subject_regex, or nil
// when none is set. Load has already checked that it compiles.
func (c *Config) SubjectRegexp() *regexp.Regexp {
	if c.Mapping.Ticket.SubjectRegex == "" {
		return nil
	}
	return regexp.MustCompile(c.Mapping.Ticket.SubjectRegex)
}

// Load reads the config file at path, decodes it strictly, applies the
// defaults, then the THREADLIFT_* overrides read through getenv (nil: no
// overrides), resolves relative paths against the file's folder and
// validates everything. Every problem found is reported at once; the error
// wraps ErrConfig. Source files are not opened here (see SourceFiles), so
// status/failures work without the archives.
func Load(path string, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, &Error{File: path, Msg: err.Error()}
	}
	f, err := os.Open(abs)
	if err != nil {
		return nil, &Error{File: path, Msg: "cannot read the config file: " + unwrapPathError(err)}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, &Error{File: path, Msg: "cannot read the config file: " + unwrapPathError(err)}
	}
	if len(data) > maxConfigBytes {
		return nil, &Error{File: path, Msg: fmt.Sprintf("larger than %d bytes; is this really a config file?", maxConfigBytes)}
	}
	return load(data, abs, getenv)
}

func load(data []byte, abs string, getenv func(string) string) (*Config, error) {
	c, set, errs := parse(data, abs)
	if c == nil {
		return nil, joinErrors(errs)
	}
	c.Path = abs
	c.Dir = filepath.Dir(abs)
	c.resolvePaths()
	errs = append(errs, c.validate(set)...)
	errs = append(errs, c.applyEnv(getenv)...)
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	return c, nil
}

// applyEnv applies the THREADLIFT_* overrides.
func (c *Config) applyEnv(getenv func(string) string) []*Error {
	var errs []*Error
	if v := getenv(EnvZendeskURL); v != "" {
		u, err := checkURL(v)
		if err != nil {
			errs = append(errs, &Error{Key: EnvZendeskURL, Msg: err.Error()})
		} else {
			c.Zendesk.URL = u
		}
	}
	if v := getenv(EnvZendeskEmail); v != "" {
		c.Zendesk.Email = v
	}
	if v := getenv(EnvWorkers); v != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 || n > MaxWorkers {
			errs = append(errs, &Error{Key: EnvWorkers, Msg: fmt.Sprintf("want a whole number between 1 and %d, got %q: %s", MaxWorkers, v, workersWhy)})
		} else {
			c.Pipeline.Workers = n
		}
	}
	if v := getenv(EnvReadChunkMessages); v != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			errs = append(errs, &Error{Key: EnvReadChunkMessages, Msg: fmt.Sprintf("want a whole number ≥ 0 (0: read the archive whole), got %q", v)})
		} else {
			c.Pipeline.ReadChunkMessages = n
		}
	}
	if v := getenv(EnvRequestsPerMinute); v != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 || n > MaxRequestsPerMinute {
			errs = append(errs, &Error{Key: EnvRequestsPerMinute, Msg: fmt.Sprintf("want a whole number ≥ 0 and at most %d, got %q", MaxRequestsPerMinute, v)})
		} else {
			c.Zendesk.RequestsPerMinute = n
		}
	}
	if v := getenv(EnvCheckpoint); v != "" {
		// A path given in the environment is relative to the working
		// directory, like any path typed in a shell.
		p, err := filepath.Abs(v)
		if err != nil {
			errs = append(errs, &Error{Key: EnvCheckpoint, Msg: err.Error()})
		} else {
			c.Checkpoint.Path = p
		}
	}
	return errs
}

// resolvePaths makes every path of the file absolute, relative to c.Dir.
// The checkpoint path may already be absolute (THREADLIFT_CHECKPOINT).
func (c *Config) resolvePaths() {
	for i := range c.Sources {
		if c.Sources[i].Path != "" {
			c.Sources[i].Path = c.abs(c.Sources[i].Path)
		}
	}
	if c.Mapping.Ticket.LookupCSV != "" {
		c.Mapping.Ticket.LookupCSV = c.abs(c.Mapping.Ticket.LookupCSV)
	}
	if c.Mapping.AgentsCSV != "" {
		c.Mapping.AgentsCSV = c.abs(c.Mapping.AgentsCSV)
	}
	if c.Checkpoint.Path != "" {
		c.Checkpoint.Path = c.abs(c.Checkpoint.Path)
	}
}

func (c *Config) abs(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(c.Dir, p)
}

// Credentials returns the email and the secrets read from the environment
// variables the config names: the API token (token_env) and the OAuth
// access token (oauth_token_env, "" when not configured). The caller must
// never log them.
func (c *Config) Credentials(getenv func(string) string) (email, token, oauthToken string) {
	email = c.Zendesk.Email
	if c.Zendesk.TokenEnv != "" {
		token = getenv(c.Zendesk.TokenEnv)
	}
	if c.Zendesk.OAuthTokenEnv != "" {
		oauthToken = getenv(c.Zendesk.OAuthTokenEnv)
	}
	return email, token, oauthToken
}

// OAuthRefresh returns what an OAuth refresh needs: the refresh token, the
// client id and the client secret (each "" when not configured).
func (c *Config) OAuthRefresh(getenv func(string) string) (refreshToken, clientID, clientSecret string) {
	if c.Zendesk.OAuthRefreshTokenEnv != "" {
		refreshToken = getenv(c.Zendesk.OAuthRefreshTokenEnv)
	}
	if c.Zendesk.OAuthClientSecretEnv != "" {
		clientSecret = getenv(c.Zendesk.OAuthClientSecretEnv)
	}
	return refreshToken, c.Zendesk.OAuthClientID, clientSecret
}

// CheckImport checks what only import needs: zendesk.url and
// zendesk.email (the env overrides count) and a non-empty secret in the
// environment variable the config names — oauth_token_env when set, else
// token_env. Errors name the config key, never its value: a token pasted
// where the variable's name belongs passes the name check, and must not
// be echoed to a terminal or a CI log.
func (c *Config) CheckImport(getenv func(string) string) error {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	var errs []*Error
	if c.Zendesk.URL == "" {
		errs = append(errs, &Error{File: c.Path, Key: "zendesk.url", Msg: "required for import (or set " + EnvZendeskURL + ")"})
	}
	if c.Zendesk.Email == "" {
		errs = append(errs, &Error{File: c.Path, Key: "zendesk.email", Msg: "required for import (or set " + EnvZendeskEmail + ")"})
	}
	z := c.Zendesk
	unset := func(key, name string) {
		if getenv(name) == "" {
			errs = append(errs, &Error{File: c.Path, Key: key, Msg: envUnset(key, name)})
		}
	}
	if z.OAuthTokenEnv != "" {
		unset("zendesk.oauth_token_env", z.OAuthTokenEnv)
		if z.OAuthRefreshTokenEnv != "" {
			unset("zendesk.oauth_refresh_token_env", z.OAuthRefreshTokenEnv)
			if z.OAuthClientID == "" {
				errs = append(errs, &Error{File: c.Path, Key: "zendesk.oauth_client_id", Msg: "required with zendesk.oauth_refresh_token_env"})
			}
			if z.OAuthClientSecretEnv == "" {
				errs = append(errs, &Error{File: c.Path, Key: "zendesk.oauth_client_secret_env", Msg: "required with zendesk.oauth_refresh_token_env"})
			} else {
				unset("zendesk.oauth_client_secret_env", z.OAuthClientSecretEnv)
			}
		}
	} else {
		if z.TokenEnv == "" {
			errs = append(errs, &Error{File: c.Path, Key: "zendesk.token_env", Msg: "empty: name the environment variable holding the API token, or set zendesk.oauth_token_env"})
		} else {
			unset("zendesk.token_env", z.TokenEnv)
		}
	}
	if len(errs) > 0 {
		return joinErrors(errs)
	}
	return nil
}

// envUnset says that the variable named in key is not set, without
// printing its name, and hints when the name looks like a secret itself.
func envUnset(key, name string) string {
	msg := "the variable named in " + key + " is not set or empty"
	if looksLikeSecret(name) {
		msg += "; the name given there looks like a secret itself (long, mixed letters and digits, no underscore): " +
			"put the secret in an environment variable and write that variable's NAME in " + key +
			" (and revoke the secret if this file was shared)"
	}
	return msg
}

// looksLikeSecret reports whether an environment variable name looks
// like a token pasted in its place. Variable names are upper-case words
// joined by underscores (ZENDESK_API_TOKEN); API and OAuth tokens are
// long runs of mixed-case letters and digits.
func looksLikeSecret(name string) bool {
	if len(name) < 16 || strings.Contains(name, "_") {
		return false
	}
	var lower, upper, digit bool
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z':
			lower = true
		case r >= 'A' && r <= 'Z':
			upper = true
		case r >= '0' && r <= '9':
			digit = true
		}
	}
	return (lower && upper) || (digit && (lower || upper))
}

// joinErrors returns one error for many, in line order; errors.Is(err,
// ErrConfig) holds. errors.As(err, **Error) finds the first.
func joinErrors(errs []*Error) error {
	sortErrors(errs)
	if len(errs) == 1 {
		return errs[0]
	}
	all := make([]error, len(errs))
	for i, e := range errs {
		all[i] = e
	}
	return errors.Join(all...)
}

func unwrapPathError(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
