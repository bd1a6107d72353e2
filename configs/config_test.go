package configs

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// writeConfig writes body as threadlift.yaml in a new temp dir and returns
// its path.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "threadlift.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadDefaults(t *testing.T) {
	p := writeConfig(t, "zendesk:\n  url: https://acme.zendesk.com/\n")
	c, err := Load(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(p)
	want := &Config{
		Zendesk: Zendesk{
			URL:                       "https://acme.zendesk.com",
			TokenEnv:                  "ZENDESK_API_TOKEN",
			RequestsPerMinute:         200,
			WriteRequestsPer10Minutes: 300,
			Timeout:                   Duration(30 * time.Second),
			MaxRetryAfter:             Duration(15 * time.Minute),
			Settle:                    Duration(10 * time.Second),
		},
		Mapping: Mapping{
			State:               "closed",
			MaxEventsPerRequest: 50,
			MaxMessageBytes:     25 << 20,
			Attachments:         Attachments{MaxBytes: 50_000_000, DenyExtensions: []string{"exe", "bat", "cmd", "com", "scr", "pif", "msi", "vbs"}, OnRefused: "skip", ReuseUploadsFor: Duration(30 * time.Minute)},
		},
		Pipeline:   Pipeline{Workers: 8, MaxAttempts: 8, ReadChunkMessages: 500_000},
		Checkpoint: Checkpoint{Path: filepath.Join(dir, "threadlift.db")},
		Dir:        dir,
		Path:       p,
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("Load defaults (-want +got):\n%s", diff)
	}
}

func TestLoadEmptyFile(t *testing.T) {
	for _, body := range []string{"", "\n\n", "# only a comment\n", "---\n"} {
		c, err := Load(writeConfig(t, body), nil)
		if err != nil {
			t.Fatalf("Load(%q): %v", body, err)
		}
		if c.Pipeline.Workers != 8 {
			t.Errorf("Load(%q).Pipeline.Workers = %d, want 8", body, c.Pipeline.Workers)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), nil)
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("Load(missing) = %v, want ErrConfig naming the file", err)
	}
}

func TestUnsetVersusZero(t *testing.T) {
	c, err := Load(writeConfig(t, "zendesk:\n  write_requests_per_10_minutes: 0\n  requests_per_minute: 0\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Zendesk.WriteRequestsPer10Minutes != 0 || c.Zendesk.RequestsPerMinute != 0 {
		t.Errorf("explicit 0 = %d/%d, want 0/0", c.Zendesk.WriteRequestsPer10Minutes, c.Zendesk.RequestsPerMinute)
	}
	// A key with no value keeps its default.
	c, err = Load(writeConfig(t, "zendesk:\n  write_requests_per_10_minutes:\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Zendesk.WriteRequestsPer10Minutes != 300 {
		t.Errorf("null write_requests_per_10_minutes = %d, want default 300", c.Zendesk.WriteRequestsPer10Minutes)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []string // substrings of the error, key and line included
	}{
		{"unknown top-level key", "zendsk:\n  url: x\n", []string{"line 1", "zendsk", "unknown key", "did you mean zendesk?"}},
		{"unknown nested key", "zendesk:\n  url: https://a.zendesk.com\n  tokn_env: X\n", []string{"line 3", "zendesk.tokn_env", "did you mean zendesk.token_env?"}},
		{"unknown deep key", "mapping:\n  ticket:\n    hedaer: X\n", []string{"line 3", "mapping.ticket.hedaer"}},
		{"unknown key in source", "sources:\n  - type: mbox\n    path: a.mbox\n    pth: b\n", []string{"line 4", "sources[0].pth"}},
		{"wrong type int", "mapping:\n  max_events_per_request: lots\n", []string{"line 2", "mapping.max_events_per_request", "want a whole number", `"lots"`}},
		{"wrong type float", "pipeline:\n  workers: 2.5\n", []string{"line 2", "pipeline.workers", "whole number"}},
		{"wrong type bool", "mapping:\n  strict: maybe\n", []string{"line 2", "mapping.strict", "true or false"}},
		{"wrong type section", "zendesk: https://acme\n", []string{"line 1", "zendesk", "want a mapping"}},
		{"wrong type list", "sources:\n  type: mbox\n", []string{"line 2", "sources", "want a list"}},
		{"wrong type string", "zendesk:\n  email: [a, b]\n", []string{"line 2", "zendesk.email", "want a string"}},
		{"wrong type fields", "sources:\n  - type: csv\n    path: a.csv\n    fields: [a]\n", []string{"line 4", "sources[0].fields", "want a mapping"}},
		{"int out of range", "pipeline:\n  workers: 99999999999999999999\n", []string{"line 2", "pipeline.workers"}},
		{"duplicate key", "pipeline:\n  workers: 2\n  workers: 3\n", []string{"line 3", "pipeline.workers", "set twice (first on line 2)"}},
		{"bad yaml", "zendesk:\n  url: [\n", []string{"invalid YAML"}},
		{"bad yaml tab", "zendesk:\n\turl: x\n", []string{"line 2", "invalid YAML"}},
		{"two documents", "pipeline: {workers: 2}\n---\npipeline: {workers: 3}\n", []string{"line 2", "second YAML document"}},
		{"not a mapping", "- a\n- b\n", []string{"line 1", "want a mapping with the sections"}},
		{"merge key", "base: &b {workers: 2}\npipeline:\n  <<: *b\n", []string{"line 1", "base"}},
		{"bad byte size", "mapping:\n  max_message_bytes: 25 parsecs\n", []string{"line 2", "mapping.max_message_bytes", "25MiB"}},
		{"zero byte size", "mapping:\n  max_message_bytes: 0\n", []string{"line 2", "mapping.max_message_bytes", "at least 1 byte"}},
		{"attachment policy", "mapping:\n  attachments:\n    on_refused: drop\n", []string{"line 3", "mapping.attachments.on_refused", "skip or reject"}},
		{"attachment extension", "mapping:\n  attachments:\n    deny_extensions: [\"*.exe\"]\n", []string{"line 3", "mapping.attachments.deny_extensions", "not a file extension"}},
		{"bad duration", "zendesk:\n  timeout: soon\n", []string{"line 2", "zendesk.timeout", "30s"}},
		{"duration without unit", "zendesk:\n  timeout: 30\n", []string{"line 2", "zendesk.timeout", "unit"}},
		{"negative duration", "zendesk:\n  timeout: -1s\n", []string{"line 2", "zendesk.timeout", "positive"}},
		{"source type", "sources:\n  - type: pst\n    path: a\n", []string{"line 2", "sources[0].type", "mbox, csv, json, maildir, eml"}},
		{"source type missing", "sources:\n  - path: a\n", []string{"sources[0].type", "required"}},
		{"source path missing", "sources:\n  - type: mbox\n", []string{"sources[0].path", "required"}},
		{"source empty entry", "sources:\n  -\n", []string{"sources[0]", "empty entry"}},
		{"source bad glob", "sources:\n  - type: mbox\n    path: 'a/[x.mbox'\n", []string{"line 3", "sources[0].path", "bad glob"}},
		{"unknown field", "sources:\n  - type: csv\n    path: a.csv\n    fields: {thread: conv}\n", []string{"line 4", "sources[0].fields.thread", "unknown field"}},
		{"fields on mbox", "sources:\n  - type: mbox\n    path: a.mbox\n    fields: {body: text}\n", []string{"line 4", "sources[0].fields", "csv and json"}},
		{"fields duplicate column", "sources:\n  - type: csv\n    path: a.csv\n    fields: {body: text, html_body: text}\n", []string{"sources[0].fields.html_body", "already the name of body"}},
		{"fields empty column", "sources:\n  - type: csv\n    path: a.csv\n    fields: {body: ''}\n", []string{"sources[0].fields.body", "empty"}},
		{"thread_key_prefix on mbox", "sources:\n  - type: mbox\n    path: a.mbox\n    thread_key_prefix: a-\n", []string{"line 4", "sources[0].thread_key_prefix", "csv and json"}},
		{"thread_key_prefix with a space", "sources:\n  - type: csv\n    path: a.csv\n    thread_key_prefix: 'export a:'\n", []string{"line 4", "sources[0].thread_key_prefix", "white space"}},
		{"state", "mapping:\n  state: pending\n", []string{"line 2", "mapping.state", "open or closed"}},
		{"regex does not compile", "mapping:\n  ticket:\n    subject_regex: '[#(\\d+'\n", []string{"line 3", "mapping.ticket.subject_regex", "does not compile"}},
		{"regex without group", "mapping:\n  ticket:\n    subject_regex: '#\\d+'\n", []string{"line 3", "mapping.ticket.subject_regex", "capture group"}},
		{"header", "mapping:\n  ticket:\n    header: 'X Ticket:'\n", []string{"line 3", "mapping.ticket.header"}},
		{"lookup_csv unreadable", "mapping:\n  ticket:\n    lookup_csv: refs.csv\n", []string{"line 3", "mapping.ticket.lookup_csv", "refs.csv", "no such file"}},
		{"agents_csv unreadable", "mapping:\n  agents_csv: agents.csv\n", []string{"line 2", "mapping.agents_csv", "agents.csv"}},
		{"agents_csv directory", "mapping:\n  agents_csv: .\n", []string{"line 2", "mapping.agents_csv", "directory"}},
		{"default ticket negative", "mapping:\n  ticket:\n    default_ticket_id: -1\n", []string{"line 3", "mapping.ticket.default_ticket_id"}},
		{"events zero", "mapping:\n  max_events_per_request: 0\n", []string{"line 2", "mapping.max_events_per_request", "between 1 and 1000"}},
		{"events too many", "mapping:\n  max_events_per_request: 5000\n", []string{"line 2", "mapping.max_events_per_request", "got 5000"}},
		{"workers zero", "pipeline:\n  workers: 0\n", []string{"line 2", "pipeline.workers", "between 1 and 64"}},
		{"attempts zero", "pipeline:\n  max_attempts: 0\n", []string{"line 2", "pipeline.max_attempts"}},
		{"read chunk negative", "pipeline:\n  read_chunk_messages: -1\n", []string{"line 2", "pipeline.read_chunk_messages", "0 (read the archive whole)"}},
		{"rpm negative", "zendesk:\n  requests_per_minute: -5\n", []string{"line 2", "zendesk.requests_per_minute"}},
		{"write negative", "zendesk:\n  write_requests_per_10_minutes: -1\n", []string{"line 2", "zendesk.write_requests_per_10_minutes"}},
		{"http refused", "zendesk:\n  url: http://acme.zendesk.com\n", []string{"line 2", "zendesk.url", "http:// is refused"}},
		{"url garbage", "zendesk:\n  url: acme\n", []string{"line 2", "zendesk.url", "https://acme.zendesk.com"}},
		{"url credentials", "zendesk:\n  url: https://me:secret@acme.zendesk.com\n", []string{"line 2", "zendesk.url", "credentials"}},
		{"token in token_env", "zendesk:\n  token_env: abc/def:123\n", []string{"line 2", "zendesk.token_env", "NAME"}},
		{"refresh without oauth", "zendesk:\n  oauth_refresh_token_env: R\n", []string{"line 2", "zendesk.oauth_refresh_token_env"}},
		{"checkpoint empty", "checkpoint:\n  path: ''\n", []string{"line 2", "checkpoint.path"}},
		{"bad key type", "zendesk:\n  [a]: b\n", []string{"line 2", "plain name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, tt.body), nil)
			if err == nil {
				t.Fatalf("Load(%q) = nil error, want one containing %q", tt.body, tt.want)
			}
			if !errors.Is(err, ErrConfig) {
				t.Errorf("Load(%q) error %v does not wrap ErrConfig", tt.body, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load(%q) = %q, want it to contain %q", tt.body, err, w)
				}
			}
		})
	}
}

func TestLoadReportsAllErrors(t *testing.T) {
	body := "zendesk:\n  urll: x\n  emial: y\nmapping:\n  max_events: 3\n  state: shut\npipeline:\n  workers: many\n"
	_, err := Load(writeConfig(t, body), nil)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, w := range []string{"line 2: zendesk.urll", "line 3: zendesk.emial", "line 5: mapping.max_events", "line 6: mapping.state", "line 8: pipeline.workers"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("Load = %q, want it to contain %q", err, w)
		}
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.Line != 2 {
		t.Errorf("errors.As(*Error) = %+v, want the first error (line 2)", ce)
	}
	// Value checks too are all reported together.
	_, err = Load(writeConfig(t, "pipeline:\n  workers: 0\n  max_attempts: 0\nmapping:\n  state: x\n"), nil)
	for _, w := range []string{"pipeline.workers", "pipeline.max_attempts", "mapping.state"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Load = %v, want it to contain %q", err, w)
		}
	}
}

func TestLoopbackHTTP(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8089", "http://127.1.2.3", "http://[::1]:80", "http://localhost:9000/", "https://acme.zendesk.com"} {
		c, err := Load(writeConfig(t, "zendesk:\n  url: '"+u+"'\n"), nil)
		if err != nil {
			t.Errorf("Load(url %s): %v", u, err)
			continue
		}
		if strings.HasSuffix(c.Zendesk.URL, "/") {
			t.Errorf("URL %q kept its trailing slash", c.Zendesk.URL)
		}
	}
	for _, u := range []string{"http://10.0.0.1", "http://localhost.evil.com", "http://[::2]", "ftp://127.0.0.1"} {
		if _, err := Load(writeConfig(t, "zendesk:\n  url: '"+u+"'\n"), nil); err == nil {
			t.Errorf("Load(url %s) = nil error, want refusal", u)
		}
	}
}

func TestEnvOverrides(t *testing.T) {
	p := writeConfig(t, "zendesk:\n  url: https://file.zendesk.com\n  email: file@acme.com\n")
	wd, _ := os.Getwd()
	c, err := Load(p, env(map[string]string{
		EnvZendeskURL:        "https://env.zendesk.com/",
		EnvZendeskEmail:      "env@acme.com",
		EnvWorkers:           "3",
		EnvRequestsPerMinute: "0",
		EnvCheckpoint:        "state/cp.db",
		EnvReadChunkMessages: "1000",
	}))
	if err != nil {
		t.Fatal(err)
	}
	got := []any{c.Zendesk.URL, c.Zendesk.Email, c.Pipeline.Workers, c.Zendesk.RequestsPerMinute, c.Checkpoint.Path, c.Pipeline.ReadChunkMessages}
	want := []any{"https://env.zendesk.com", "env@acme.com", 3, 0, filepath.Join(wd, "state/cp.db"), 1000}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("env overrides (-want +got):\n%s", diff)
	}

	bad := []struct{ name, value string }{
		{EnvWorkers, "0"}, {EnvWorkers, "eight"}, {EnvRequestsPerMinute, "-1"},
		{EnvRequestsPerMinute, "fast"}, {EnvZendeskURL, "http://example.com"},
		{EnvReadChunkMessages, "-5"}, {EnvReadChunkMessages, "lots"},
	}
	for _, b := range bad {
		_, err := Load(p, env(map[string]string{b.name: b.value}))
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), b.name) {
			t.Errorf("Load with %s=%q = %v, want ErrConfig naming the variable", b.name, b.value, err)
		}
	}
}

func TestRelativePaths(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "conf")
	must(t, os.MkdirAll(filepath.Join(sub, "data"), 0o755))
	must(t, os.WriteFile(filepath.Join(sub, "data", "refs.csv"), []byte("reference,ticket_id\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "agents.csv"), []byte("email,user_id\n"), 0o644))
	body := `sources:
  - type: mbox
    path: data/*.mbox
  - type: csv
    path: /abs/x.csv
mapping:
  ticket:
    lookup_csv: data/refs.csv
  agents_csv: ../agents.csv
checkpoint:
  path: ./state/../cp.db
`
	p := filepath.Join(sub, "t.yaml")
	must(t, os.WriteFile(p, []byte(body), 0o644))
	// Load from another working directory: paths must not depend on it.
	t.Chdir(dir)
	c, err := Load("conf/t.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{c.Path, c.Dir, c.Sources[0].Path, c.Sources[1].Path, c.Mapping.Ticket.LookupCSV, c.Mapping.AgentsCSV, c.Checkpoint.Path}
	want := []string{p, sub, filepath.Join(sub, "data/*.mbox"), "/abs/x.csv", filepath.Join(sub, "data/refs.csv"), filepath.Join(dir, "agents.csv"), filepath.Join(sub, "cp.db")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("resolved paths (-want +got):\n%s", diff)
	}
}

func TestSourceFiles(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"archive/b.mbox", "archive/a.mbox", "archive/c.txt", "exports/m.csv"} {
		must(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755))
		must(t, os.WriteFile(filepath.Join(dir, f), nil, 0o644))
	}
	body := `sources:
  - type: mbox
    path: archive/*.mbox
  - type: csv
    path: exports/m.csv
    fields: {thread_id: conversation}
  - type: mbox
    path: archive/a.mbox
`
	p := filepath.Join(dir, "t.yaml")
	must(t, os.WriteFile(p, []byte(body), 0o644))
	c, err := Load(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	files, err := c.SourceFiles()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.Type+" "+strings.TrimPrefix(f.Path, dir+"/"))
	}
	want := []string{"mbox archive/a.mbox", "mbox archive/b.mbox", "csv exports/m.csv"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SourceFiles (-want +got):\n%s", diff)
	}
	if files[0].Fields != nil {
		t.Errorf("mbox Fields = %v, want nil", files[0].Fields)
	}
	if f := files[2].Fields; f["thread_id"] != "conversation" || f["body"] != "body" || len(f) != len(fieldNames) {
		t.Errorf("csv Fields = %v, want every field with thread_id renamed", f)
	}

	// Errors: nothing matched, missing file, unreadable file — all at once.
	must(t, os.WriteFile(filepath.Join(dir, "secret.csv"), nil, 0o000))
	body = `sources:
  - type: mbox
    path: nothing/*.mbox
  - type: csv
    path: missing.csv
  - type: csv
    path: secret.csv
`
	must(t, os.WriteFile(p, []byte(body), 0o644))
	c, err = Load(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.SourceFiles()
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("SourceFiles = %v, want ErrConfig", err)
	}
	wants := []string{"sources[0].path", "nothing/*.mbox: matches no file", "sources[1].path", "missing.csv: no such file"}
	if os.Geteuid() != 0 { // root reads anything
		wants = append(wants, "sources[2].path", "secret.csv: permission denied")
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("SourceFiles = %q, want it to contain %q", err, w)
		}
	}

	c.Sources = nil
	if _, err := c.SourceFiles(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "sources") {
		t.Errorf("SourceFiles with no sources = %v, want ErrConfig naming sources", err)
	}
}

func TestCheckImport(t *testing.T) {
	const secret = "s3cr3t-token-value"
	tests := []struct {
		name    string
		body    string
		env     map[string]string
		wantErr []string // substrings; nil: no error
	}{
		{"token ok", "zendesk: {url: 'https://a.zendesk.com', email: a@b.c}\n", map[string]string{"ZENDESK_API_TOKEN": secret}, nil},
		{"env url and email count", "", map[string]string{EnvZendeskURL: "https://a.zendesk.com", EnvZendeskEmail: "a@b.c", "ZENDESK_API_TOKEN": secret}, nil},
		{"no url no email", "", map[string]string{"ZENDESK_API_TOKEN": secret}, []string{"zendesk.url", "zendesk.email"}},
		{"token missing", "zendesk: {url: 'https://a.zendesk.com', email: a@b.c, token_env: MY_TOKEN}\n", nil, []string{"zendesk.token_env", "not set"}},
		{"oauth ok", "zendesk: {url: 'https://a.zendesk.com', email: a@b.c, oauth_token_env: OAT}\n", map[string]string{"OAT": secret}, nil},
		{"oauth missing", "zendesk: {url: 'https://a.zendesk.com', email: a@b.c, oauth_token_env: OAT}\n", map[string]string{"ZENDESK_API_TOKEN": secret}, []string{"zendesk.oauth_token_env"}},
		{"refresh incomplete", "zendesk: {url: 'https://a.zendesk.com', email: a@b.c, oauth_token_env: OAT, oauth_refresh_token_env: ORT}\n",
			map[string]string{"OAT": secret, "ORT": secret}, []string{"zendesk.oauth_client_id", "zendesk.oauth_client_secret_env"}},
		{"refresh ok", "zendesk: {url: 'https://a.zendesk.com', email: a@b.c, oauth_token_env: OAT, oauth_refresh_token_env: ORT, oauth_client_id: cid, oauth_client_secret_env: OCS}\n",
			map[string]string{"OAT": secret, "ORT": secret, "OCS": secret}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := env(tt.env)
			c, err := Load(writeConfig(t, tt.body), getenv)
			if err != nil {
				t.Fatal(err)
			}
			err = c.CheckImport(getenv)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("CheckImport = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("CheckImport = %v, want ErrConfig", err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("CheckImport = %q, want it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("CheckImport error leaks a secret: %q", err)
			}
		})
	}
}

func TestCredentials(t *testing.T) {
	c, err := Load(writeConfig(t, "zendesk: {email: a@b.c, token_env: T, oauth_token_env: O, oauth_refresh_token_env: R, oauth_client_id: cid, oauth_client_secret_env: S}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	getenv := env(map[string]string{"T": "tok", "O": "oat", "R": "rt", "S": "sec"})
	email, token, oauth := c.Credentials(getenv)
	rt, cid, sec := c.OAuthRefresh(getenv)
	if diff := cmp.Diff([]string{"a@b.c", "tok", "oat", "rt", "cid", "sec"}, []string{email, token, oauth, rt, cid, sec}); diff != "" {
		t.Errorf("Credentials/OAuthRefresh (-want +got):\n%s", diff)
	}
}

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
	}{
		{"25MiB", 25 << 20}, {"25MB", 25e6}, {"1GiB", 1 << 30}, {"512KiB", 512 << 10},
		{"1048576", 1 << 20}, {"10 MB", 10e6}, {"10mb", 10e6}, {"1kb", 1000}, {"1K", 1000},
		{"2 B", 2}, {"1.5KiB", 1536}, {" 3GB ", 3e9}, {"1TiB", 1 << 40},
	}
	for _, tt := range tests {
		got, err := ParseByteSize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "MiB", "-1MiB", "0", "10 parsecs", "1e3", "1.2.3MB", "99999999999TiB", "0.1"} {
		if got, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) = %d, nil; want an error", in, got)
		}
	}
	if s := ByteSize(25 << 20).String(); s != "25MiB" {
		t.Errorf("ByteSize.String() = %q, want 25MiB", s)
	}
	// In the file, a plain YAML integer is bytes too.
	c, err := Load(writeConfig(t, "mapping:\n  max_message_bytes: 1048576\n"), nil)
	if err != nil || c.Mapping.MaxMessageBytes != 1<<20 {
		t.Errorf("max_message_bytes: 1048576 = %v, %v", c, err)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"30s": 30 * time.Second, "2m": 2 * time.Minute, "1m30s": 90 * time.Second, "500ms": 500 * time.Millisecond} {
		got, err := ParseDuration(in)
		if err != nil || time.Duration(got) != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "30", "0s", "-5s", "soon"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = nil error, want one", in)
		}
	}
}

// fakeSources creates an empty file for every source path (or one match of
// every glob) and every CSV path of c, so that an example config loads.
// folderFakes counts the fake files that are inside a source's folder
// (a maildir's, an eml folder's), not sources of their own.
func folderFakes(fakes []string) int {
	n := 0
	for _, f := range fakes {
		if strings.HasPrefix(f, "mail/Maildir/") || strings.HasPrefix(f, "exports/eml/") {
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return n - 2 // the maildir and the eml folder are sources
}

func fakeFiles(t *testing.T, dir string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		p = strings.ReplaceAll(p, "*", "fake")
		full := filepath.Join(dir, p)
		must(t, os.MkdirAll(filepath.Dir(full), 0o755))
		must(t, os.WriteFile(full, nil, 0o644))
	}
}

func TestExamples(t *testing.T) {
	tests := []struct {
		name  string
		data  []byte
		fakes []string // files the example refers to, relative to it
		check func(t *testing.T, c *Config)
	}{
		{"threadlift.example.yaml", Example, []string{"archive/*.mbox", "mail/Maildir/cur/1", "mail/Maildir/.Sent/cur/2", "exports/eml/a.eml", "exports/messages.csv", "exports/threads.jsonl"}, func(t *testing.T, c *Config) {
			if c.Zendesk.URL != "https://acme.zendesk.com" || len(c.Sources) != 5 {
				t.Errorf("example: url %q, %d sources", c.Zendesk.URL, len(c.Sources))
			}
		}},
		{"demo.yaml", Demo, []string{"demo/sample.mbox"}, func(t *testing.T, c *Config) {
			d := filepath.Dir(c.Path)
			got := []any{c.Zendesk.URL, c.Zendesk.Email, c.Zendesk.TokenEnv, c.Sources[0].Path, c.Mapping.Ticket.SubjectRegex,
				c.Mapping.Ticket.Header, c.Mapping.Ticket.DefaultTicketID, c.Checkpoint.Path}
			want := []any{"http://127.0.0.1:8089", "demo@example.com", "THREADLIFT_DEMO_TOKEN", filepath.Join(d, "demo/sample.mbox"), `\[#(\d+)\]`,
				"X-Zendesk-Ticket-Id", int64(1), filepath.Join(filepath.Dir(d), ".demo/threadlift.db")}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("demo (-want +got):\n%s", diff)
			}
			if err := c.CheckImport(env(map[string]string{"THREADLIFT_DEMO_TOKEN": "x"})); err != nil {
				t.Errorf("demo CheckImport: %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The embedded copy is the file on disk.
			disk, err := os.ReadFile(tt.name)
			if err != nil || string(disk) != string(tt.data) {
				t.Fatalf("embedded %s differs from the file on disk (%v)", tt.name, err)
			}
			dir := filepath.Join(t.TempDir(), "configs")
			p := filepath.Join(dir, tt.name)
			fakeFiles(t, dir, tt.fakes...)
			must(t, os.WriteFile(p, tt.data, 0o644))
			c, err := Load(p, nil)
			if err != nil {
				t.Fatalf("Load(%s): %v", tt.name, err)
			}
			files, err := c.SourceFiles()
			if err != nil {
				t.Fatalf("SourceFiles(%s): %v", tt.name, err)
			}
			if len(files) != len(tt.fakes)-folderFakes(tt.fakes) {
				t.Errorf("SourceFiles(%s) = %d files, want %d", tt.name, len(files), len(tt.fakes))
			}
			tt.check(t, c)
		})
	}
}

// TestExampleTeachesEveryKey keeps threadlift.example.yaml complete: every
// key of the schema is present in it.
func TestExampleTeachesEveryKey(t *testing.T) {
	_, set, errs := parse(Example, "threadlift.example.yaml")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var present []string
	for k := range set {
		// sources[2].fields.body → sources.fields
		k = strings.Split(k, "[")[0] + func() string {
			if _, rest, ok := strings.Cut(k, "]"); ok {
				return rest
			}
			return ""
		}()
		if strings.HasPrefix(k, "sources.fields.") {
			k = "sources.fields"
		}
		present = append(present, k)
	}
	for _, key := range schemaKeys(reflect.TypeFor[Config](), "") {
		if !slices.Contains(present, key) {
			t.Errorf("threadlift.example.yaml does not show %s", key)
		}
	}
}

func schemaKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		key := join(prefix, name)
		ft := t.Field(i).Type
		switch {
		case ft.Kind() == reflect.Struct && ft != recipientType: // a recipient is shown as one address
			keys = append(keys, schemaKeys(ft, key)...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			keys = append(keys, schemaKeys(ft.Elem(), key)...)
		default:
			keys = append(keys, key)
		}
	}
	return keys
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// FuzzConfig checks that parsing and validating any input never panics and
// that every error wraps ErrConfig.
func FuzzConfig(f *testing.F) {
	f.Add(Example)
	f.Add(Demo)
	f.Add([]byte("zendesk: {url: x}\nsources: [{type: csv, path: a, fields: {a: b}}]\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("x: &x {y: *x}\nzendesk: *x\n"))
	f.Add([]byte("mapping:\n  max_message_bytes: 1e400\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := load(data, filepath.Join(dir, "fuzz.yaml"), func(string) string { return "" })
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("load error %v does not wrap ErrConfig", err)
			}
			return
		}
		if c.Pipeline.Workers < 1 || c.Mapping.MaxEventsPerRequest < 1 {
			t.Fatalf("load accepted invalid values: %+v", c)
		}
	})
}

// TestJSONFieldRenamedToAnothersDefault: for json, {html_body: body}
// (or its message path) takes "body" from the body field, which then
// reads nothing: an HTML body is not posted as plain text too.
func TestJSONFieldRenamedToAnothersDefault(t *testing.T) {
	for _, src := range []Source{
		{Type: "json", Fields: map[string]string{"html_body": "body"}},
		{Type: "json", MessagesPath: "item.threads", Fields: map[string]string{"html_body": "threads[].body"}},
	} {
		m := src.fieldMap()
		if !strings.HasPrefix(m["body"], unreadField) || m["html_body"] != src.Fields["html_body"] {
			t.Errorf("fieldMap(%v) body %q html_body %q: want body unread", src.Fields, m["body"], m["html_body"])
		}
	}
	csv := Source{Type: "csv", Fields: map[string]string{"html_body": "body"}}
	if m := csv.fieldMap(); m["body"] != "body" {
		t.Errorf("csv fieldMap body = %q, want body as before", m["body"])
	}
}
