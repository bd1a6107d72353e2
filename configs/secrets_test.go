package configs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// A token pasted into a *_env key passes the env-name check (40
// alphanumerics are a valid name) and must never be echoed back: not in
// the "not set" error, not in any other config error. Each case checks
// that no 6-character piece of the value appears anywhere in the text,
// and that a name that looks like a token gets a hint.
func TestCheckImportNeverPrintsTheValueOfTokenEnvKeys(t *testing.T) {
	const token = "Ab3dEf9hJk2mNp4qRs6tUv8wXy0zAb1cDe5fGh7j" // 40 alphanumerics, as Zendesk API tokens are
	tests := []struct {
		name, body, key string
		env             map[string]string
	}{
		{"token_env", "zendesk: {url: 'https://a.zendesk.com', email: a@b.c, token_env: " + token + "}\n", "zendesk.token_env", nil},
		{"oauth_token_env", "zendesk: {url: 'https://a.zendesk.com', email: a@b.c, oauth_token_env: " + token + "}\n", "zendesk.oauth_token_env", nil},
		{"oauth_refresh_token_env", "zendesk: {url: 'https://a.zendesk.com', email: a@b.c, oauth_token_env: OAT, oauth_refresh_token_env: " + token +
			", oauth_client_id: cid, oauth_client_secret_env: OCS}\n", "zendesk.oauth_refresh_token_env", map[string]string{"OAT": "x", "OCS": "y"}},
		{"oauth_client_secret_env", "zendesk: {url: 'https://a.zendesk.com', email: a@b.c, oauth_token_env: OAT, oauth_refresh_token_env: ORT" +
			", oauth_client_id: cid, oauth_client_secret_env: " + token + "}\n", "zendesk.oauth_client_secret_env", map[string]string{"OAT": "x", "ORT": "y"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := env(tt.env)
			c, err := Load(writeConfig(t, tt.body), getenv)
			if err != nil {
				assertNoPiece(t, err.Error(), token)
				t.Fatalf("Load: %v", err)
			}
			err = c.CheckImport(getenv)
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("CheckImport = %v, want ErrConfig", err)
			}
			msg := err.Error()
			assertNoPiece(t, msg, token)
			for _, want := range []string{"the variable named in " + tt.key + " is not set", "looks like a secret"} {
				if !strings.Contains(msg, want) {
					t.Errorf("CheckImport = %q, want it to contain %q", msg, want)
				}
			}
		})
	}

	// A real variable name that is not set: the same words, no hint.
	c, err := Load(writeConfig(t, "zendesk: {url: 'https://a.zendesk.com', email: a@b.c, token_env: MY_TOKEN}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	msg := c.CheckImport(env(nil)).Error()
	if !strings.Contains(msg, "the variable named in zendesk.token_env is not set") || strings.Contains(msg, "looks like") {
		t.Errorf("CheckImport = %q, want the plain not-set message", msg)
	}

	// A value that fails the name check (a token with a dash) is not
	// echoed by Load either.
	const dashed = "s3cr3t-TOKEN-abcdefghijklmnop"
	_, err = Load(writeConfig(t, "zendesk: {token_env: "+dashed+"}\n"), nil)
	if err == nil {
		t.Fatal("Load accepted a token_env that is not a variable name")
	}
	assertNoPiece(t, err.Error(), dashed)
}

// assertNoPiece fails when any 6-byte piece of secret appears in s.
func assertNoPiece(t *testing.T, s, secret string) {
	t.Helper()
	for i := 0; i+6 <= len(secret); i++ {
		if p := secret[i : i+6]; strings.Contains(s, p) {
			t.Errorf("error text %q holds %q, a piece of the secret", s, p)
			return
		}
	}
}

func TestThreadKeyPrefixReachesSourceFiles(t *testing.T) {
	p := writeConfig(t, "sources:\n  - type: csv\n    path: a.csv\n    thread_key_prefix: 'crm-2019:'\n  - type: json\n    path: b.jsonl\n")
	dir := filepath.Dir(p)
	for _, f := range []string{"a.csv", "b.jsonl"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, err := Load(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	files, err := c.SourceFiles()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0].ThreadKeyPrefix != "crm-2019:" || files[1].ThreadKeyPrefix != "" {
		t.Errorf("SourceFiles = %+v, want the prefix on the csv source only", files)
	}
}

// TestExampleShowsTheDefaults: the example says every key it shows holds
// its default unless the comment says otherwise. deny_extensions showed
// [exe, bat, cmd, scr] while the default was empty.
func TestExampleShowsTheDefaults(t *testing.T) {
	ex, _, errs := parse(Example, "threadlift.example.yaml")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	def := Defaults()
	// Keys whose comment says they have no default, or that the example
	// fills in on purpose.
	ex.Mapping.Ticket = def.Mapping.Ticket
	ex.Zendesk.URL, ex.Zendesk.Email = "", ""
	ex.Sources = nil
	if diff := cmp.Diff(def, ex, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("example vs defaults (-default +example):\n%s", diff)
	}
	if len(def.Mapping.Attachments.DenyExtensions) == 0 {
		t.Errorf("the default deny_extensions is empty; want the executable types")
	}
}

// TestEmptyDenyListDeniesNothing: deny_extensions: [] turns the default
// list off.
func TestEmptyDenyListDeniesNothing(t *testing.T) {
	c, err := Load(writeConfig(t, "mapping:\n  attachments:\n    deny_extensions: []\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(c.Mapping.Attachments.DenyExtensions); n != 0 {
		t.Errorf("deny_extensions: [] gives %v, want none", c.Mapping.Attachments.DenyExtensions)
	}
}
