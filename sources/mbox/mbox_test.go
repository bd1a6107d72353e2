package mbox

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/threadlift/threadlift/sources"

	"github.com/google/go-cmp/cmp"

	"github.com/threadlift/threadlift/internal/fixtures"
)

var testNow = func() time.Time { return time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC) }

// readMbox reads every envelope of path and loads each.
func readMbox(t testing.TB, path string, opts sources.Options) ([]*sources.Envelope, []*sources.Message) {
	t.Helper()
	if opts.Now == nil {
		opts.Now = testNow
	}
	r, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	defer r.Close()
	var envs []*sources.Envelope
	for {
		env, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next(%s) after %d envelopes: %v", path, len(envs), err)
		}
		envs = append(envs, env)
	}
	msgs := make([]*sources.Message, len(envs))
	for i, env := range envs {
		m, err := r.Load(env)
		if err != nil {
			t.Fatalf("Load(%s): %v", env.Loc, err)
		}
		msgs[i] = m
	}
	return envs, msgs
}

func issueList(is []sources.Issue) []string {
	out := []string{}
	for _, i := range is {
		out = append(out, string(i.Severity)+" "+i.Rule)
	}
	return out
}

type wantEnv struct {
	id      string
	subject string
	date    string // RFC 3339, "" for none
	refs    []string
	issues  []string // "severity rule" of the envelope
}

func TestMboxEnvelopes(t *testing.T) {
	tests := []struct {
		file string
		want []wantEnv
	}{
		{"basic.mbox", []wantEnv{
			{id: "msg1@example.com", subject: "Café au lait", date: "2006-06-09T00:44:16-07:00"},
			{subject: "Re: Cafe au lait", date: "2006-06-10T10:00:00Z",
				refs: []string{"root@example.com", "msg1@example.com"}, issues: []string{"warning no-message-id"}},
			{id: "msg3@example.com", subject: "no date header", date: "2006-06-11T11:59:00Z",
				issues: []string{"warning date-fallback"}},
		}},
		{"mboxrd.mbox", []wantEnv{
			{id: "rd1@example.com", subject: "escaped", date: "2006-06-09T00:44:16-07:00"},
			{id: "rd2@example.com", subject: "second", date: "2006-06-09T00:45:16-07:00"},
		}},
		{"crlf_bom.mbox", []wantEnv{
			{id: "crlf1@example.com", subject: "crlf one", date: "2001-09-17T00:00:00Z"},
			{id: "crlf2@example.com", subject: "crlf two", date: "2001-09-18T00:00:00Z"},
		}},
		{"dates.mbox", []wantEnv{
			{id: "d1@example.com", subject: "from line date", date: "2000-02-09T22:02:00Z", issues: []string{"warning date-fallback"}},
			{id: "d2@example.com", subject: "epoch date", date: "2000-02-10T08:00:00Z", issues: []string{"warning date-fallback"}},
			{id: "d3@example.com", subject: "no date at all", issues: []string{"error no-date"}},
			{id: "d4@example.com", subject: "future", date: "2100-01-01T00:00:00Z", issues: []string{"error date-out-of-range"}},
			{id: "d5@example.com", subject: "before 1970", date: "1955-01-01T00:00:00Z", issues: []string{"error date-out-of-range"}},
			{id: "d6@example.com", subject: "obsolete date", date: "2000-02-10T08:00:00-05:00", issues: []string{"warning date-repaired"}},
		}},
		{"mime.mbox", []wantEnv{
			{id: "html@example.com", subject: "html only", date: "2001-09-17T00:00:00Z"},
			{id: "alt@example.com", subject: "alternative", date: "2001-09-17T00:00:00Z"},
			{id: "att@example.com", subject: "attachment", date: "2001-09-17T00:00:00Z"},
			{id: "cs@example.com", subject: "unknown charset and no colon", date: "2001-09-17T00:00:00Z", issues: []string{"warning header-no-colon"}},
			{id: "nob@example.com", subject: "no boundary", date: "2001-09-17T00:00:00Z"},
			{id: "b64@example.com", subject: "bad base64 and NUL", date: "2001-09-17T00:00:00Z"},
			{id: "addr@example.com", subject: "addresses", date: "2001-09-17T00:00:00Z"},
			{id: "nosend@example.com", subject: "no sender, no recipient", date: "2001-09-17T00:00:00Z"},
			{issues: []string{"error no-header"}},
			{id: "8bit@example.com", subject: "8bit Grüße", date: "2001-09-17T00:00:00Z", issues: []string{"warning 8bit-header"}},
		}},
		{"single.eml", []wantEnv{
			{id: "eml@example.com", subject: "a single message", date: "2001-09-17T00:00:00Z"},
		}},
		{"mboxcl.mbox", []wantEnv{
			{id: "cl1@example.com", date: "2001-09-17T00:00:00Z"},
			{id: "cl2@example.com", date: "2001-09-17T00:00:00Z", issues: []string{"warning content-length-ignored"}},
			{id: "cl3@example.com", date: "2001-09-17T00:00:00Z"},
			{id: "cl4@example.com", date: "2001-09-17T00:00:00Z"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", tt.file)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			envs, _ := readMbox(t, path, sources.Options{})
			var got []wantEnv
			var end int64
			for i, e := range envs {
				if e.Seq != i {
					t.Errorf("envelope %d: Seq = %d", i, e.Seq)
				}
				if e.Loc.File != path {
					t.Errorf("envelope %d: Loc.File = %q, want %q", i, e.Loc.File, path)
				}
				if i > 0 && e.Loc.Offset != end {
					t.Errorf("envelope %d: Offset = %d, want %d (end of the previous one)", i, e.Loc.Offset, end)
				}
				if !strings.HasSuffix(tt.file, ".eml") && !bytes.HasPrefix(data[e.Loc.Offset:], []byte("From ")) {
					t.Errorf("envelope %d: bytes at offset %d are %q, want a From line", i, e.Loc.Offset, data[e.Loc.Offset:min(int(e.Loc.Offset)+20, len(data))])
				}
				end = e.Loc.Offset + e.Size
				if !strings.HasPrefix(e.ContentKey, "sha256:") || len(e.ContentKey) != 7+64 {
					t.Errorf("envelope %d: ContentKey = %q", i, e.ContentKey)
				}
				w := wantEnv{id: e.MessageID, subject: e.Subject, refs: e.References, issues: issueList(e.Issues)}
				if !e.Date.IsZero() {
					w.date = e.Date.Format(time.RFC3339)
				}
				if len(w.issues) == 0 {
					w.issues = nil
				}
				got = append(got, w)
			}
			if end != int64(len(data)) && !strings.HasPrefix(tt.file, "crlf_bom") {
				t.Errorf("last envelope ends at %d, file is %d bytes", end, len(data))
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(wantEnv{})); diff != "" {
				t.Errorf("envelopes of %s (-want +got):\n%s", tt.file, diff)
			}
		})
	}
}

func TestMboxCRLFBOMOffsets(t *testing.T) {
	// BOM (3 bytes) + "\r\n" + "  \r\n" before the first From line.
	envs, _ := readMbox(t, "testdata/crlf_bom.mbox", sources.Options{})
	if len(envs) != 2 || envs[0].Loc.Offset != 9 {
		t.Fatalf("got %d envelopes, first at %d; want 2, first at 9", len(envs), envs[0].Loc.Offset)
	}
}

func TestMboxContentKey(t *testing.T) {
	// The content key hashes the header block as written, CRLF as LF, so
	// the LF and CRLF versions of one message share it.
	lf := "From a Mon Sep 17 00:00:00 2001\nFrom: a@example.com\nTo: b@example.com\nSubject: k\n\nbody\n"
	crlf := strings.ReplaceAll(lf, "\n", "\r\n")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "lf.mbox"), []byte(lf), 0o644)
	os.WriteFile(filepath.Join(dir, "crlf.mbox"), []byte(crlf), 0o644)
	a, _ := readMbox(t, filepath.Join(dir, "lf.mbox"), sources.Options{})
	b, _ := readMbox(t, filepath.Join(dir, "crlf.mbox"), sources.Options{})
	want := "sha256:" + sha256Hex("From: a@example.com\nTo: b@example.com\nSubject: k\n")
	if a[0].ContentKey != want || b[0].ContentKey != want {
		t.Errorf("ContentKey = %s (LF), %s (CRLF), want %s", a[0].ContentKey, b[0].ContentKey, want)
	}
	if a[0].Key() != want {
		t.Errorf("Key() = %s, want the content key", a[0].Key())
	}
}

func TestMboxMessages(t *testing.T) {
	type att struct {
		Name, ContentType string
		Size              int64
		Inline            bool
		ContentID         string
	}
	type want struct {
		from     string // "Name <email>"
		to, cc   []string
		body     string
		html     string
		atts     []att
		issues   []string // Load issues (envelope's included)
		reasonIn string   // a substring of some issue's reason
	}
	addr := func(a sources.Address) string {
		if a.Name == "" {
			return a.Email
		}
		return a.Name + " <" + a.Email + ">"
	}
	tests := []struct {
		file string
		seq  int
		want want
	}{
		{"basic.mbox", 0, want{from: "Alice <alice@example.com>", to: []string{"Bob <bob@example.com>"},
			body: "First line.\nFrom here the body goes on: this line does not split.\nFrom escaped once\nLast line.\n"}},
		{"basic.mbox", 1, want{from: "Bob B. <bob@example.com>", to: []string{"alice@example.com"}, cc: []string{"carol@example.com"},
			body: "Hello Alice, café is good.\n", issues: []string{"warning no-message-id"}}},
		{"mboxrd.mbox", 0, want{from: "w <w@example.com>", to: []string{"r@example.com"},
			body: "From the beginning\n>From twice\n>>From thrice\n >From not at line start\n>From\nFrom not preceded by a blank line\n"}},
		{"crlf_bom.mbox", 0, want{from: "A <a@example.com>", to: []string{"b@example.com"},
			body: "line one\nFrom inside, no blank line before\n"}},
		{"mime.mbox", 0, want{from: "A <a@example.com>", to: []string{"b@example.com"},
			body: "Hello *HTML* world", html: "<html><body><p>Hello <b>HTML</b> world</p></body></html>\n"}},
		{"mime.mbox", 1, want{from: "A <a@example.com>", to: []string{"b@example.com"},
			body: "Grüße aus Köln, a very long line that is soft-broken."}},
		{"mime.mbox", 2, want{from: "A <a@example.com>", to: []string{"b@example.com"}, body: "See attached.",
			atts: []att{
				{"résumé.pdf", "application/pdf", 48, false, ""},
				{"logoé.png", "image/png", 8, true, "logo@example.com"},
				{"attachment-3.eml", "message/rfc822", 50, false, ""},
			}}},
		{"mime.mbox", 3, want{from: "A <a@example.com>", to: []string{"b@example.com"}, body: "This line has no colon\n\nfirst\n\ncafé and naïve",
			issues:   []string{"warning header-no-colon", "warning charset"},
			reasonIn: "unknown charset x-no-such-charset in part 2"}},
		{"mime.mbox", 4, want{from: "A <a@example.com>", to: []string{"b@example.com"},
			body: "This text has no boundary at all.\nIt must be kept.\n", issues: []string{"warning no-boundary"}}},
		{"mime.mbox", 5, want{from: "A <a@example.com>", to: []string{"b@example.com"}, body: "Hello World",
			issues: []string{"warning bad-encoding"}, reasonIn: "invalid base64 in the body"}},
		{"mime.mbox", 6, want{from: "A <a@example.com>", to: []string{"b@example.com", "C <c@example.com>"}, body: "nul in text\n",
			issues: []string{"warning invalid-address", "warning invalid-address", "warning nul-bytes"}, reasonIn: `"@@bad@@" from To`}},
		{"mime.mbox", 7, want{body: "x\n", issues: []string{"error no-sender", "warning invalid-address", "error no-recipient"}}},
		{"mime.mbox", 8, want{issues: []string{"error no-header"}}},
		{"mime.mbox", 9, want{from: "A <a@example.com>", to: []string{"b@example.com"}, body: "8bit header\n", issues: []string{"warning 8bit-header"}}},
		{"single.eml", 0, want{from: "A <a@example.com>", to: []string{"b@example.com"},
			body: "Body of an .eml file.\n\nFrom here on, this is not a separator: the file is one message.\n"}},
		{"mboxcl.mbox", 0, want{from: "a@example.com", to: []string{"b@example.com"}, body: "cl body\n\nFrom inside the counted body\nend\n"}},
		{"dates.mbox", 3, want{from: "x@example.com", to: []string{"y@example.com"}, body: "future\n",
			issues: []string{"error date-out-of-range"}, reasonIn: "2100-01-01T00:00:00Z"}},
	}
	cache := map[string][]*sources.Message{}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s#%d", tt.file, tt.seq), func(t *testing.T) {
			msgs, ok := cache[tt.file]
			if !ok {
				_, msgs = readMbox(t, filepath.Join("testdata", tt.file), sources.Options{})
				cache[tt.file] = msgs
			}
			m := msgs[tt.seq]
			got := want{body: m.Body, html: m.HTMLBody, issues: issueList(m.Issues), reasonIn: tt.want.reasonIn}
			if m.HasFrom {
				got.from = addr(m.From)
			}
			for _, a := range m.To {
				got.to = append(got.to, addr(a))
			}
			for _, a := range m.Cc {
				got.cc = append(got.cc, addr(a))
			}
			for _, a := range m.Attachments {
				got.atts = append(got.atts, att{a.Name, a.ContentType, a.Size, a.Inline, a.ContentID})
			}
			if len(got.issues) == 0 {
				got.issues = nil
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("Load(%s #%d) (-want +got):\n%s", tt.file, tt.seq, diff)
			}
			if tt.want.reasonIn != "" {
				found := false
				for _, i := range m.Issues {
					if strings.Contains(i.Reason, tt.want.reasonIn) {
						found = true
					}
				}
				if !found {
					t.Errorf("no issue reason contains %q: %v", tt.want.reasonIn, m.Issues)
				}
			}
		})
	}
}

func TestMboxHeaderFields(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "h.mbox")
	os.WriteFile(p, []byte("From a Mon Sep 17 00:00:00 2001\nFrom: a@example.com\nTo: b@example.com\nDate: Mon, 17 Sep 2001 00:00:00 +0000\n"+
		"X-Zendesk-Ticket-Id: 42\nx-custom:  =?utf-8?q?caf=C3=A9?=\nReceived: one\nReceived: two\n\nbody\n"), 0o644)
	_, msgs := readMbox(t, p, sources.Options{})
	h := msgs[0].Header
	if got := h["X-Zendesk-Ticket-Id"]; !cmp.Equal(got, []string{"42"}) {
		t.Errorf("Header[X-Zendesk-Ticket-Id] = %q, want [42]", got)
	}
	if got := h["X-Custom"]; !cmp.Equal(got, []string{"café"}) {
		t.Errorf("Header[X-Custom] = %q, want [café]", got)
	}
	if got := h["Received"]; !cmp.Equal(got, []string{"one", "two"}) {
		t.Errorf("Header[Received] = %q, want [one two] in order", got)
	}
}

func TestMboxTooLargeAndLongLines(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "big.mbox")
	long := strings.Repeat("x", 200<<10) // longer than the scan buffer
	var b strings.Builder
	b.WriteString("From a Mon Sep 17 00:00:00 2001\nFrom: a@example.com\nTo: b@example.com\nDate: Mon, 17 Sep 2001 00:00:00 +0000\n")
	b.WriteString("X-Long: " + long + "\n\n" + long + "\n\n")
	b.WriteString("From b Mon Sep 17 00:00:00 2001\nFrom: b@example.com\nTo: a@example.com\nDate: Mon, 17 Sep 2001 00:00:00 +0000\n")
	for i := 0; i < 5; i++ { // header over the 256 KiB cap
		b.WriteString("X-Pad: " + long[:100<<10] + "\n")
	}
	b.WriteString("Subject: after the cap\n\nsmall\n")
	os.WriteFile(p, []byte(b.String()), 0o644)
	envs, msgs := readMbox(t, p, sources.Options{MaxMessageBytes: 450 << 10})
	if len(envs) != 2 {
		t.Fatalf("got %d envelopes, want 2", len(envs))
	}
	if msgs[0].Body != long+"\n" {
		t.Errorf("body of message 0 is %d bytes, want %d", len(msgs[0].Body), len(long)+1)
	}
	if got := issueList(envs[1].Issues); !cmp.Equal(got, []string{"warning header-too-large", "error too-large", "warning no-message-id"}) {
		t.Errorf("issues of message 1 = %v", envs[1].Issues)
	}
	if !strings.Contains(envs[1].Issues[1].Reason, "over max_message_bytes 460800") {
		t.Errorf("too-large reason = %q", envs[1].Issues[1].Reason)
	}
}

func TestMboxLoadConcurrent(t *testing.T) {
	r, err := Open("testdata/mime.mbox", sources.Options{Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var envs []*sources.Envelope
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, e)
	}
	_, want := readMbox(t, "testdata/mime.mbox", sources.Options{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := len(envs) - 1; i >= 0; i-- {
				m, err := r.Load(envs[i])
				if err != nil {
					t.Error(err)
					return
				}
				if m.Body != want[i].Body {
					t.Errorf("concurrent Load #%d body = %q, want %q", i, m.Body, want[i].Body)
				}
			}
		}()
	}
	wg.Wait()
}

func TestEmptyFiles(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"empty": "", "blank": "\n\n  \n", "bom": "\xef\xbb\xbf"} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o644)
		envs, _ := readMbox(t, p, sources.Options{})
		if len(envs) != 0 {
			t.Errorf("%s: %d envelopes, want 0", name, len(envs))
		}
	}
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// TestMultiByteCharsets guards the charset package import: without it,
// iso-2022-jp (and every other multi-byte charset) would be "unknown".
// Each charset of the generator, in each transfer encoding, must come
// back as the text that was written: body, subject (RFC 2047) and sender
// name.
func TestMultiByteCharsets(t *testing.T) {
	a := fixtures.Generate(fixtures.Options{Seed: 3, Threads: 3 * len(fixtures.Charsets), Charsets: true})
	path := fixtures.WriteMbox(t, t.TempDir(), "charsets.mbox", a)
	_, msgs := readMbox(t, path, sources.Options{})
	if len(msgs) != a.Messages() {
		t.Fatalf("%d messages, want %d", len(msgs), a.Messages())
	}
	i := 0
	for _, th := range a.Threads {
		for _, want := range th.Messages {
			got := msgs[i]
			i++
			t.Run(want.Charset+"/"+want.Encoding, func(t *testing.T) {
				for _, is := range got.Issues {
					t.Errorf("issue %s", is)
				}
				if g, w := strings.TrimRight(got.Body, "\n"), strings.TrimRight(want.Body, "\n"); g != w {
					t.Errorf("body = %q, want %q", g, w)
				}
				if got.Subject != want.Subject || got.From.Name != want.FromName {
					t.Errorf("subject %q, sender %q; want %q, %q", got.Subject, got.From.Name, want.Subject, want.FromName)
				}
			})
		}
	}
}

// TestMultiByteCharsetsCorpus: a real iso-2022-jp message of the corpus
// layer decodes to Japanese text.
func TestMultiByteCharsetsCorpus(t *testing.T) {
	path := filepath.Join("..", "..", "..", "shared", "corpora", "mail", "mimekit", "messages", "japanese.eml")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("corpus not available: %v", err)
	}
	r, err := Open(path, sources.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	env, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	msg, err := r.Load(env)
	if err != nil {
		t.Fatal(err)
	}
	for _, is := range msg.Issues {
		if is.Rule == "charset" {
			t.Errorf("iso-2022-jp not decoded: %s", is.Reason)
		}
	}
	if !utf8.ValidString(msg.Body) || !strings.ContainsFunc(msg.Body+msg.Subject, func(r rune) bool { return r >= 0x3040 && r <= 0x30ff || r >= 0x4e00 && r <= 0x9fff }) {
		t.Errorf("no Japanese text decoded: subject %q body %q", msg.Subject, msg.Body)
	}
}
