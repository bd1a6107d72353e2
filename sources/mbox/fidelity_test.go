package mbox

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/threadlift/threadlift/sources"
)

// The fixtures below are made up for issue 12 (real-mail fidelity): each
// reproduces one class of damage found in real archives, and the
// expectations are what Python's email package (policy=default) decodes
// from the same bytes unless a comment says why threadlift does better.

const fidelityHead = "From a@example.com Mon Mar  4 09:00:00 2024\nFrom: a@example.com\nTo: b@example.com\nSubject: s\nDate: Mon, 4 Mar 2024 10:00:00 +0000\nMessage-ID: <m@example.com>\n"

// loadOne reads an mbox holding one message and loads it.
func loadOne(t *testing.T, mbox string) *sources.Message {
	t.Helper()
	msgs := readAll(t, mbox, sources.Options{})
	if len(msgs) != 1 {
		t.Fatalf("read %d messages, want 1", len(msgs))
	}
	return msgs[0]
}

// wantIssue fails unless m has an issue of rule whose reason holds every
// one of parts.
func wantIssue(t *testing.T, m *sources.Message, sev sources.Severity, rule string, parts ...string) {
	t.Helper()
	for _, is := range m.Issues {
		if is.Rule != rule || is.Severity != sev {
			continue
		}
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(is.Reason, p)
		}
		if ok {
			return
		}
	}
	t.Errorf("no %s %q issue with %q; issues: %v", sev, rule, parts, m.Issues)
}

// Item 5: a part that declares a charset its bytes are not valid in, but
// that are valid UTF-8, is kept as UTF-8 with a warning.
func TestCharsetDeclaredWrongKeptAsUTF8(t *testing.T) {
	const text = "陈华才：你好，世界。这是一封测试邮件。"
	for _, cs := range []string{"GB2312", "big5", "iso-2022-jp", "euc-kr", "windows-1252"} {
		t.Run(cs, func(t *testing.T) {
			m := loadOne(t, fidelityHead+"Content-Type: text/plain; charset="+cs+"\nContent-Transfer-Encoding: 8bit\n\n"+text+"\n")
			if m.Body != text+"\n" {
				t.Errorf("body = %q, want %q", m.Body, text+"\n")
			}
			wantIssue(t, m, sources.SeverityWarning, "charset", cs, "valid UTF-8")
		})
	}
	// An encoded word is decoded by the same rule.
	subj := "=?gb2312?B?" + base64.StdEncoding.EncodeToString([]byte(text)) + "?="
	msgs := readAll(t, strings.Replace(fidelityHead, "Subject: s", "Subject: "+subj, 1)+"\nbody\n", sources.Options{})
	if msgs[0].Subject != text {
		t.Errorf("subject = %q, want %q", msgs[0].Subject, text)
	}
	// Text that is valid in its charset stays decoded by it.
	m := loadOne(t, fidelityHead+"Content-Type: text/plain; charset=iso-8859-1\n\ncaf\xe9\n")
	if m.Body != "café\n" || findIssue(m, "charset") != nil {
		t.Errorf("latin-1 body = %q, issues %v", m.Body, m.Issues)
	}
}

// Item 6: a boundary delimiter line written twice in a row loses no part.
func TestMultipartRepeatedBoundary(t *testing.T) {
	mixed := "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
	pdf := "Content-Type: application/pdf\nContent-Disposition: attachment; filename=a.pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0=\n"
	text := "Content-Type: text/plain\n\nhello\n"
	for name, body := range map[string]string{
		"doubled at the start":  "--b\n--b\n" + text + "--b\n" + pdf + "--b--\n",
		"doubled in the middle": "--b\n" + text + "--b\n--b\n" + pdf + "--b--\n",
		"tripled, CRLF":         strings.ReplaceAll("--b\n"+text+"--b\n--b\n--b\n"+pdf+"--b--\n", "\n", "\r\n"),
		"doubled before a last part": "--b\n" + text + "--b\n" + pdf + "--b\n--b\nContent-Type: image/png\nContent-Disposition: attachment; filename=p.png\n" +
			"Content-Transfer-Encoding: base64\n\niVBORw==\n--b--\n",
	} {
		t.Run(name, func(t *testing.T) {
			m := loadOne(t, fidelityHead+mixed+body)
			if strings.TrimSpace(m.Body) != "hello" {
				t.Errorf("body = %q, want hello", m.Body)
			}
			if len(m.Attachments) == 0 || m.Attachments[0].Name != "a.pdf" || m.Attachments[0].Size != 5 {
				t.Fatalf("attachments = %+v, want a.pdf of 5 bytes first", m.Attachments)
			}
			if strings.Contains(name, "last part") && (len(m.Attachments) != 2 || m.Attachments[1].Name != "p.png") {
				t.Errorf("attachments = %+v, want p.png too", m.Attachments)
			}
			wantIssue(t, m, sources.SeverityWarning, "bad-multipart", "repeated")
			for i := range m.Attachments {
				checkOpenAttachment(t, m, i)
			}
		})
	}
}

// checkOpenAttachment reads an attachment back: what Load found, the
// streamed reader finds again.
func checkOpenAttachment(t *testing.T, m *sources.Message, i int) {
	t.Helper()
	r, err := Open(m.Loc.File, sources.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rc, err := r.(sources.AttachmentReader).OpenAttachment(m, i)
	if err != nil {
		t.Fatalf("OpenAttachment(%d): %v", i, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil || int64(len(b)) != m.Attachments[i].Size {
		t.Errorf("attachment %d read back: %d bytes, %v; want %d", i, len(b), err, m.Attachments[i].Size)
	}
}

// Item 7: a part whose body follows its header without a blank line keeps
// its body (from the first line that is not a header field).
func TestPartBodyWithoutBlankLine(t *testing.T) {
	data := []byte("%PDF-1.4 the attachment")
	enc := base64.StdEncoding.EncodeToString(data)
	m := loadOne(t, fidelityHead+"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"+
		"--b\nContent-Type: text/plain\n\nhello\n"+
		"--b\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=a.pdf\nContent-Transfer-Encoding: base64\n"+enc+"\n"+
		"--b\nContent-Type: text/plain\nthe second text has no blank line either\n--b--\n")
	if len(m.Attachments) != 1 || m.Attachments[0].Name != "a.pdf" || m.Attachments[0].Size != int64(len(data)) {
		t.Fatalf("attachments = %+v, want a.pdf of %d bytes", m.Attachments, len(data))
	}
	if !strings.Contains(m.Body, "hello") || !strings.Contains(m.Body, "the second text has no blank line either") {
		t.Errorf("body = %q, want both texts", m.Body)
	}
	wantIssue(t, m, sources.SeverityWarning, "bad-multipart", "part 2", "blank line")
	checkOpenAttachment(t, m, 0)
}

// Item 8: text after a base64 part's padding is not decoded into it.
func TestBase64TextAfterPadding(t *testing.T) {
	data := []byte("hello world, an attachment")
	enc := base64.StdEncoding.EncodeToString(data) // ends with padding
	if !strings.HasSuffix(enc, "=") {
		t.Fatal("fixture must end with padding")
	}
	for name, tail := range map[string]string{
		"a word":             "Cheerio!\n",
		"a word of 4k chars": "Best\n",
		"a list footer":      "_______________________________________________\nList mailing list\nhttps://lists.example.com/list\n",
	} {
		t.Run(name, func(t *testing.T) {
			m := loadOne(t, fidelityHead+"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nsee attached\n"+
				"--b\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=a.bin\nContent-Transfer-Encoding: base64\n\n"+enc+"\n"+tail+"--b--\n")
			if len(m.Attachments) != 1 || m.Attachments[0].Size != int64(len(data)) {
				t.Fatalf("attachments = %+v, want one of %d bytes", m.Attachments, len(data))
			}
			wantIssue(t, m, sources.SeverityWarning, "bad-encoding", "after the base64 padding")
			checkOpenAttachment(t, m, 0)
		})
	}
	// A text part: the same.
	m := loadOne(t, fidelityHead+"Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n"+base64.StdEncoding.EncodeToString([]byte("hi there"))+"\nCheerio!\n")
	if m.Body != "hi there" {
		t.Errorf("body = %q, want %q", m.Body, "hi there")
	}
	// Encoded blocks written one after the other are still all decoded.
	m = loadOne(t, fidelityHead+"Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\naGVsbG8g\nd29ybGQ=\nIGFnYWluIQ==\n")
	if m.Body != "hello world again!" {
		t.Errorf("body = %q, want the concatenated blocks", m.Body)
	}
}

// Item 9: a header line that is not a field, with no field after it,
// ends the header: it and what follows are the body (as Python reads it).
// When fields that matter follow it, they stay fields and the line is
// kept as body text: nothing is dropped.
func TestHeaderLineNotAFieldKeepsText(t *testing.T) {
	m := loadOne(t, fidelityHead+"This body started without a blank line\nand goes on: here\n\nSecond paragraph.\n")
	if want := "This body started without a blank line\nand goes on: here\n\nSecond paragraph.\n"; m.Body != want {
		t.Errorf("body = %q, want %q", m.Body, want)
	}
	wantIssue(t, m, sources.SeverityWarning, "header-no-colon", "This body started", "the header ends there")

	// A folded line that lost its indentation, before the sender.
	m = loadOne(t, "From a@example.com Mon Mar  4 09:00:00 2024\nReceived: from unknown (HELO lists.example.com)\nby localhost with SMTP; 4 Mar 2024 08:46:08 -0000\n"+
		"From: a@example.com\nTo: b@example.com\nSubject: s\nDate: Mon, 4 Mar 2024 10:00:00 +0000\nMessage-ID: <m@example.com>\n\nthe body\n")
	if !m.HasFrom || m.From.Email != "a@example.com" || len(m.To) != 1 || m.Rejected() {
		t.Fatalf("from %v, to %v, issues %v: want the fields after the bad line kept", m.From, m.To, m.Issues)
	}
	if want := "by localhost with SMTP; 4 Mar 2024 08:46:08 -0000\n\nthe body\n"; m.Body != want {
		t.Errorf("body = %q, want %q", m.Body, want)
	}
	wantIssue(t, m, sources.SeverityWarning, "header-no-colon", "by localhost", "kept as body text")
}

// Item 10: dates with malformed zones and two-digit years are read as
// Python reads them, with a warning; 12-hour clocks are read too.
func TestLenientDates(t *testing.T) {
	tests := []struct {
		date, want string
		warn       bool
	}{
		{"Mon, 21 Aug 95 13:30:57 -600", "1995-08-21T13:30:57-06:00", true},
		{"Mon, 21 Aug 1995 13:30:57 +530", "1995-08-21T13:30:57+05:30", true},
		{"21 Aug 95 13:30:57 -0600", "1995-08-21T13:30:57-06:00", true},
		{"Thu, 10 Feb 05 08:00:00 GMT", "2005-02-10T08:00:00Z", true},
		{"Wed 29 May 2019 06:09:22 PM EDT", "2019-05-29T18:09:22-04:00", false},
		{"Wed, 29 May 2019 12:09:22 AM +0000", "2019-05-29T00:09:22Z", false},
		{"Tue, 3 Jun 2008 8:5:3 +0200", "2008-06-03T08:05:03+02:00", false},
		{"Mon, 4 Mar 2024 10:00:00 +0000", "2024-03-04T10:00:00Z", false},
	}
	for _, tt := range tests {
		t.Run(tt.date, func(t *testing.T) {
			m := loadOne(t, strings.Replace(fidelityHead, "Mon, 4 Mar 2024 10:00:00 +0000", tt.date, 1)+"\nx\n")
			if got := m.Date.Format(time.RFC3339); got != tt.want {
				t.Errorf("date = %s, want %s (issues %v)", got, tt.want, m.Issues)
			}
			if findIssue(m, "date-fallback") != nil {
				t.Errorf("the From line's date was used: %v", m.Issues)
			}
			if got := findIssue(m, "date-repaired") != nil; got != tt.warn {
				t.Errorf("date-repaired warning: %v, want %v (issues %v)", got, tt.warn, m.Issues)
			}
		})
	}
}

// Item 11: encoded words inside a quoted display name are decoded.
func TestQuotedEncodedWordNames(t *testing.T) {
	m := loadOne(t, strings.NewReplacer(
		"From: a@example.com", `From: "=?utf-8?B?6ZmI5Y2O5omN?=" <a@example.com>`,
		"To: b@example.com", `To: "=?iso-8859-1?Q?Caf=E9?= Team" <b@example.com>, "Plain, Name" <c@example.com>`,
	).Replace(fidelityHead)+"\nx\n")
	if m.From.Name != "陈华才" || m.From.Email != "a@example.com" {
		t.Errorf("from = %+v, want 陈华才 <a@example.com>", m.From)
	}
	if len(m.To) != 2 || m.To[0].Name != "Café Team" || m.To[1].Name != "Plain, Name" {
		t.Errorf("to = %+v", m.To)
	}
}

// Item 16: two addresses in From without a comma: the first is the sender.
func TestFromTwoAddressesWithoutComma(t *testing.T) {
	m := loadOne(t, strings.Replace(fidelityHead, "From: a@example.com", "From: first@example.com second@example.com", 1)+"\nx\n")
	if !m.HasFrom || m.From.Email != "first@example.com" || m.Rejected() {
		t.Fatalf("from = %+v (has %v), issues %v; want first@example.com", m.From, m.HasFrom, m.Issues)
	}
	wantIssue(t, m, sources.SeverityWarning, "invalid-address", "first@example.com", "comma")
	// In To, both are recipients.
	m = loadOne(t, strings.Replace(fidelityHead, "To: b@example.com", "To: b@example.com c@example.com", 1)+"\nx\n")
	if len(m.To) != 2 || m.To[1].Email != "c@example.com" {
		t.Errorf("to = %+v, want both addresses", m.To)
	}
}

// Item 17: clearer reasons.
func TestHeaderTooLargeNamesLostFields(t *testing.T) {
	pad := strings.Repeat("x", 100<<10)
	var b strings.Builder
	b.WriteString("From a@example.com Mon Mar  4 09:00:00 2024\nFrom: a@example.com\nTo: b@example.com\nDate: Mon, 4 Mar 2024 10:00:00 +0000\n")
	for range 3 {
		b.WriteString("X-Pad: " + pad + "\n")
	}
	b.WriteString("Message-ID: <lost@example.com>\nReferences: <parent@example.com>\nSubject: lost too\n\nbody\n")
	msgs := readAll(t, b.String(), sources.Options{})
	wantIssue(t, msgs[0], sources.SeverityWarning, "header-too-large", "Message-ID", "References", "Subject", "content hash")
}

func TestMultipartTooDeep(t *testing.T) {
	var b strings.Builder
	b.WriteString(fidelityHead + "MIME-Version: 1.0\n")
	for i := range 40 {
		bd := "b" + strings.Repeat("x", i)
		b.WriteString("Content-Type: multipart/mixed; boundary=\"" + bd + "\"\n\n--" + bd + "\n")
	}
	b.WriteString("Content-Type: text/plain\n\ndeep text\n")
	m := loadOne(t, b.String())
	wantIssue(t, m, sources.SeverityWarning, "too-deep", "32")
	if !strings.Contains(m.Body, "deep text") {
		t.Errorf("body = %q, want the deep text kept", m.Body)
	}
}

func TestCompressedMbox(t *testing.T) {
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte(fidelityHead + "\nbody\n"))
	w.Close()
	for kind, data := range map[string][]byte{
		"gzip":  gz.Bytes(),
		"bzip2": []byte("BZh91AY&SY junk"),
		"zstd":  {0x28, 0xb5, 0x2f, 0xfd, 0, 0},
		"xz":    {0xfd, '7', 'z', 'X', 'Z', 0, 0},
	} {
		t.Run(kind, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "archive.mbox")
			os.WriteFile(p, data, 0o644)
			r, err := Open(p, sources.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			_, err = r.Next()
			var re *sources.RecordError
			if !errors.As(err, &re) || re.Rule != RuleCompressed || !strings.Contains(err.Error(), kind+"-compressed") ||
				!strings.Contains(err.Error(), "decompress it first") || re.Loc.String() != p+"@0" {
				t.Fatalf("Next = %v, want a %q RecordError at %s@0 saying to decompress", err, RuleCompressed, p)
			}
			if _, err := r.Next(); err != io.EOF {
				t.Errorf("second Next = %v, want io.EOF", err)
			}
		})
	}
}

// An unknown zone is read as UTC only when nothing better is left: the
// From line's date comes first.
func TestUnknownZoneIsLastResort(t *testing.T) {
	const date = "Tue, 12 Oct 2010 16:21:05 H0500"
	m := loadOne(t, strings.Replace(fidelityHead, "Mon, 4 Mar 2024 10:00:00 +0000", date, 1)+"\nx\n")
	if got := m.Date.Format(time.RFC3339); got != "2024-03-04T09:00:00Z" {
		t.Errorf("date = %s, want the From line's", got)
	}
	wantIssue(t, m, sources.SeverityWarning, "date-fallback", "unknown zone")
	// A single message has no From line: the date is read as UTC.
	single := strings.Replace(strings.TrimPrefix(fidelityHead, "From a@example.com Mon Mar  4 09:00:00 2024\n"), "Mon, 4 Mar 2024 10:00:00 +0000", date, 1) + "\nx\n"
	m = loadOne(t, single)
	if got := m.Date.Format(time.RFC3339); got != "2010-10-12T16:21:05Z" || m.Rejected() {
		t.Errorf("date = %s, issues %v; want 2010-10-12T16:21:05Z", got, m.Issues)
	}
	wantIssue(t, m, sources.SeverityWarning, "date-repaired", "H0500", "UTC")
}

// fidelitySeeds are FuzzMbox seeds for issue 12's cases.
func fidelitySeeds() []string {
	const env = "From a@example.com Mon Mar  4 09:00:00 2024"
	mixed := "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
	return []string{
		msg(env, "one", "last line\n") + msg("From - ", "two", "body two\n"),
		msg(env, "one", "para\n\nFrom the first day, we knew.\n") + "\n" + msg(env, "two", "x\n"),
		msg(env, "one", "Content-Length: 9\n\ncounted\n") + msg("From - Mon Mar  4 09:01:00 2024", "two", "y\n"),
		fidelityHead + mixed + "--b\n--b\nContent-Type: text/plain\n\nhello\n--b\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\nJVBERi0=\nCheerio!\n--b-->\n",
		fidelityHead + "Content-Type: text/plain; charset=gb2312\n\n陈华才\n",
		strings.Replace(fidelityHead, "Mon, 4 Mar 2024 10:00:00 +0000", "Wed 29 May 95 06:09:22 PM -600", 1) + "no blank line\nX: y\n\nbody\n",
		strings.Replace(fidelityHead, "From: a@example.com", `From: "=?utf-8?B?6ZmI5Y2O5omN?=" <a@example.com> b@example.com`, 1) + "\nx\n",
	}
}
