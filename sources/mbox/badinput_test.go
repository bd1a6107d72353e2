package mbox

import (
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/threadlift/threadlift/sources"
)

// readAll reads every envelope of an mbox given as a string and loads each
// message; it fails the test on any Go error: bad input is never an error.
func readAll(t *testing.T, content string, opts sources.Options) []*sources.Message {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bad.mbox")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if opts.Now == nil {
		opts.Now = func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
	}
	r, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []*sources.Message
	for {
		env, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if env.Rejected() {
			out = append(out, &sources.Message{Envelope: env, Issues: env.Issues})
			continue
		}
		msg, err := r.Load(env)
		if err != nil {
			t.Fatalf("Load %s: %v", env.Loc, err)
		}
		out = append(out, msg)
	}
}

func hdr(extra string) string {
	return "From a@example.com Mon Mar  4 09:00:00 2024\nFrom: a@example.com\nTo: b@example.com\nSubject: s\nDate: Mon, 4 Mar 2024 10:00:00 +0000\nMessage-ID: <m@example.com>\n" + extra
}

func findIssue(m *sources.Message, rule string) *sources.Issue {
	for i := range m.Issues {
		if m.Issues[i].Rule == rule {
			return &m.Issues[i]
		}
	}
	return nil
}

// TestBadInput covers the damage real archives have (contract §9): each
// case is reported with its rule, severity and a specific reason, and
// what can be kept is kept.
func TestBadInput(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString([]byte("the attachment content, long enough to be cut in the middle"))
	deep := ""
	for i := 0; i < 50; i++ {
		deep += "Content-Type: multipart/mixed; boundary=\"b" + strings.Repeat("x", i) + "\"\n\n--b" + strings.Repeat("x", i) + "\n"
	}
	deep += "Content-Type: text/plain\n\ndeep text\n"
	const clBody = "body\n\nFrom the body, not split\n"
	tests := []struct {
		name     string
		mbox     string
		opts     sources.Options
		n        int    // messages expected
		rule     string // on the first message; "" = none expected
		severity sources.Severity
		reason   string // substring of the reason
		body     string // substring of the first message's body
	}{
		{name: "header line without a colon", mbox: hdr("this line has no colon\n\nbody\n"), n: 1,
			rule: "header-no-colon", severity: sources.SeverityWarning, reason: "this line has no colon", body: "body"},
		{name: "multipart whose boundary never occurs", mbox: hdr("Content-Type: multipart/mixed; boundary=\"nope\"\n\nthe text is still here\n"), n: 1,
			rule: "no-boundary", severity: sources.SeverityWarning, body: "the text is still here"},
		{name: "missing closing boundary", mbox: hdr("Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\nfirst part\n"), n: 1,
			body: "first part"},
		{name: "NUL bytes", mbox: hdr("\nhel\x00lo\n"), n: 1, rule: "nul-bytes", severity: sources.SeverityWarning, body: "hello"},
		{name: "truncated base64", mbox: hdr("Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n" + base64.StdEncoding.EncodeToString([]byte("decodable part of the text"))[:20] + "!!\n"), n: 1,
			rule: "bad-encoding", severity: sources.SeverityWarning, body: "decodable"},
		{name: "invalid quoted-printable", mbox: hdr("Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\nkept =ZZ text =\n"), n: 1,
			body: "kept"},
		{name: "unknown charset", mbox: hdr("Content-Type: text/plain; charset=x-no-such-charset\n\ncaf\xe9\n"), n: 1,
			rule: "charset", severity: sources.SeverityWarning, reason: "x-no-such-charset", body: "café"},
		{name: "over max_message_bytes", mbox: hdr("\n" + strings.Repeat("x", 2000) + "\n"), opts: sources.Options{MaxMessageBytes: 1000}, n: 1,
			rule: "too-large", severity: sources.SeverityError, reason: "over max_message_bytes 1000"},
		{name: "nested 50 levels deep", mbox: hdr(deep), n: 1},
		{name: "file truncated mid-message", mbox: hdr("Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\nkept text\n--b\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=a.pdf\nContent-Transfer-Encoding: base64\n\n" + b64[:30]), n: 1,
			body: "kept text"},
		{name: "date at the Unix epoch", mbox: strings.Replace(hdr("\nx\n"), "Mon, 4 Mar 2024 10:00:00 +0000", "Thu, 1 Jan 1970 00:00:00 +0000", 1), n: 1,
			rule: "date-fallback", severity: sources.SeverityWarning},
		{name: "date before 1970", mbox: strings.Replace(hdr("\nx\n"), "Mon, 4 Mar 2024", "Mon, 4 Mar 1968", 1), n: 1,
			rule: "date-out-of-range", severity: sources.SeverityError, reason: "before 1970"},
		{name: "date in the future", mbox: strings.Replace(hdr("\nx\n"), "Mon, 4 Mar 2024", "Mon, 4 Mar 2030", 1), n: 1,
			rule: "date-out-of-range", severity: sources.SeverityError, reason: "more than a day after now"},
		{name: "some invalid addresses", mbox: strings.Replace(hdr("\nx\n"), "To: b@example.com", "To: b@example.com, not an address, c@", 1), n: 1,
			rule: "invalid-address", severity: sources.SeverityWarning, reason: "not an address"},
		{name: "all addresses invalid", mbox: strings.Replace(hdr("\nx\n"), "To: b@example.com", "To: nobody, c@", 1), n: 1,
			rule: "no-recipient", severity: sources.SeverityError},
		{name: "UTF-8 BOM before the first From", mbox: "\ufeff" + hdr("\nx\n") + "\n" + strings.Replace(hdr("\ny\n"), "<m@", "<n@", 1), n: 2, body: "x"},
		{name: "Content-Length mbox keeps a From line in the body", mbox: hdr(fmt.Sprintf("Content-Length: %d\n\n%s", len(clBody), clBody)), n: 1,
			body: "From the body, not split"},
		{name: "bare CR line endings", mbox: strings.ReplaceAll(hdr("\nline one\nline two\n")+"\n"+strings.Replace(hdr("\nsecond\n"), "<m@", "<n@", 1), "\n", "\r"), n: 2,
			rule: "bare-cr", severity: sources.SeverityWarning, body: "line one\nline two"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs := readAll(t, tt.mbox, tt.opts)
			if len(msgs) != tt.n {
				t.Fatalf("read %d messages, want %d", len(msgs), tt.n)
			}
			m := msgs[0]
			if tt.rule != "" {
				is := findIssue(m, tt.rule)
				if is == nil {
					t.Fatalf("no %q issue; issues: %v", tt.rule, m.Issues)
				}
				if is.Severity != tt.severity || !strings.Contains(is.Reason, tt.reason) {
					t.Errorf("issue = %v, want severity %s and a reason containing %q", *is, tt.severity, tt.reason)
				}
				if strings.Contains(strings.ToLower(is.Reason), "parse error") {
					t.Errorf("reason %q is not specific", is.Reason)
				}
			}
			if tt.body != "" && !strings.Contains(m.Body, tt.body) {
				t.Errorf("body = %q, want it to contain %q", m.Body, tt.body)
			}
		})
	}
}
