package mbox

import (
	"fmt"
	"strings"
	"testing"

	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/internal/header"
)

// msg is a small mbox message: its From line (without a line end), its
// header fields and its body.
func msg(from, id, body string) string {
	return from + "\nFrom: a@example.com\nTo: b@example.com\nSubject: " + id +
		"\nDate: Mon, 4 Mar 2024 10:00:00 +0000\nMessage-ID: <" + id + "@example.com>\n\n" + body
}

// TestMboxSplitReferee covers contract §3's separator rule (issue 12,
// items 1 to 4): which "From " lines start a message, what each message
// keeps, and the warning for every separator taken without a blank line
// and every Content-Length ignored.
func TestMboxSplitReferee(t *testing.T) {
	const env = "From a@example.com Mon Mar  4 09:00:00 2024"
	multipart := "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nthe text\n--b\n" +
		"Content-Type: application/pdf\nContent-Disposition: attachment; filename=a.pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n--b--\nepilogue line\n"
	mp := func(from, id string) string {
		return from + "\nFrom: a@example.com\nTo: b@example.com\nSubject: " + id +
			"\nDate: Mon, 4 Mar 2024 10:00:00 +0000\nMessage-ID: <" + id + "@example.com>\nMIME-Version: 1.0\n" + multipart
	}
	cl := func(from, id, body string, n int) string {
		return from + "\nFrom: a@example.com\nTo: b@example.com\nSubject: " + id +
			"\nDate: Mon, 4 Mar 2024 10:00:00 +0000\nMessage-ID: <" + id + "@example.com>\n" +
			fmt.Sprintf("Content-Length: %d\n\n", n) + body
	}
	type want struct {
		id     string
		body   string   // substring of the body; "" = not checked
		absent string   // must not be in the body
		issues []string // "rule" of the split warnings (separator, content-length), in order
	}
	tests := []struct {
		name string
		mbox string
		want []want
	}{
		{"item 1: From - right after the last body line, then header fields",
			msg(env, "one", "last line of one\n") + msg("From - Mon Mar  4 09:01:00 2024", "two", "body two\n"),
			[]want{{id: "one", body: "last line of one", absent: "body two"}, {id: "two", body: "body two", issues: []string{string(RuleSeparatorNoBlank)}}}},
		{"item 1: a bare From - with no date, no blank line",
			msg(env, "one", "last line\n") + msg("From - ", "two", "body two\n"),
			[]want{{id: "one", absent: "body two"}, {id: "two", body: "body two", issues: []string{string(RuleSeparatorNoBlank)}}}},
		{"item 1: bare From SENDER, no blank line, CRLF",
			strings.ReplaceAll(msg(env, "one", "last line\n")+msg("From sender@example.com", "two", "body two\n"), "\n", "\r\n"),
			[]want{{id: "one", absent: "body two"}, {id: "two", body: "body two", issues: []string{string(RuleSeparatorNoBlank)}}}},
		{"item 1: a separator inside a multipart epilogue keeps both messages and the attachment",
			mp(env, "one") + msg(env, "two", "body two\n"),
			[]want{{id: "one", body: "the text", absent: "body two"}, {id: "two", body: "body two", issues: []string{string(RuleSeparatorNoBlank)}}}},
		{"item 3: a paragraph starting From after a blank line is body text",
			msg(env, "one", "first paragraph\n\nFrom the first day, we knew.\nSecond line.\n") + "\n" + msg(env, "two", "body two\n"),
			[]want{{id: "one", body: "first paragraph\n\nFrom the first day, we knew.\nSecond line."}, {id: "two", body: "body two"}}},
		{"item 3: From SENDER alone after a blank line, then text, is body text",
			msg(env, "one", "first\n\nFrom someone\nthey wrote this\n"),
			[]want{{id: "one", body: "From someone\nthey wrote this"}}},
		{"item 3: an envelope line without a blank line and without a header after it is body text",
			msg(env, "one", "quoted:\n"+env+"\nnot a header line\n"),
			[]want{{id: "one", body: env + "\nnot a header line"}}},
		{"an envelope line after a blank line starts a message even without a header after it",
			msg(env, "one", "body\n") + "\n" + env + "\nno header here\n",
			[]want{{id: "one", body: "body"}, {}}},
		{"Gmail's envelope with the zone before the year",
			msg(env, "one", "body\n") + "\n" + msg("From 1234@xxx Wed Aug 18 07:56:10 +0000 2021", "two", "body two\n"),
			[]want{{id: "one", absent: "body two"}, {id: "two", body: "body two"}}},
		{"item 2: Content-Length that ends exactly at a From - line without a blank line",
			cl(env, "one", "counted body\n\nFrom the counted body, not split\n"+env+"\nnot a header\nend", len("counted body\n\nFrom the counted body, not split\n"+env+"\nnot a header\nend")) +
				"\n" + msg("From - Mon Mar  4 09:01:00 2024", "two", "body two\n"),
			[]want{{id: "one", body: "From the counted body, not split\n" + env + "\nnot a header\nend", absent: "body two"},
				{id: "two", body: "body two", issues: []string{string(RuleSeparatorNoBlank)}}}},
		{"item 2: Content-Length that ends after two line ends at a separator",
			cl(env, "one", "counted\n\n"+msg(env, "inner", "inner body\n"), len("counted\n\n"+msg(env, "inner", "inner body\n"))) + "\n\n" + msg(env, "two", "body two\n"),
			[]want{{id: "one", body: "inner body"}, {id: "two", body: "body two"}}},
		{"item 2: Content-Length that ends at the end of the file",
			cl(env, "one", "counted\n\n"+msg(env, "inner", "inner body\n"), len("counted\n\n"+msg(env, "inner", "inner body\n"))),
			[]want{{id: "one", body: "inner body"}}},
		{"item 4: a Content-Length that ends elsewhere is ignored with a warning",
			cl(env, "one", "short body\n", 5) + "\n" + msg(env, "two", "body two\n"),
			[]want{{id: "one", body: "short body", issues: []string{string(RuleContentLengthIgnored)}}, {id: "two", body: "body two"}}},
		{"item 4: a Content-Length past the end of the file is ignored with a warning",
			cl(env, "one", "short body\n", 5000),
			[]want{{id: "one", body: "short body", issues: []string{string(RuleContentLengthIgnored)}}}},
		{"item 4: a Content-Length that is not a number is ignored with a warning",
			strings.Replace(cl(env, "one", "body\n", 0), "Content-Length: 0", "Content-Length: twelve", 1),
			[]want{{id: "one", body: "body", issues: []string{string(RuleContentLengthIgnored)}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs := readAll(t, tt.mbox, sources.Options{})
			if len(msgs) != len(tt.want) {
				for _, m := range msgs {
					t.Logf("message at %s: %q", m.Loc, header.Clip([]byte(m.Body), 200))
				}
				t.Fatalf("read %d messages, want %d", len(msgs), len(tt.want))
			}
			var end int64
			for i, w := range tt.want {
				m := msgs[i]
				if m.Loc.Offset != end {
					t.Errorf("message %d at %d, previous ended at %d", i, m.Loc.Offset, end)
				}
				end = m.Loc.Offset + m.Size
				if !strings.HasPrefix(tt.mbox[m.Loc.Offset:], "From ") {
					t.Errorf("message %d at %d does not start at a From line", i, m.Loc.Offset)
				}
				if w.id != "" && m.MessageID != w.id+"@example.com" {
					t.Errorf("message %d id = %q, want %q", i, m.MessageID, w.id)
				}
				if w.body != "" && !strings.Contains(m.Body, w.body) {
					t.Errorf("message %d body = %q, want it to contain %q", i, m.Body, w.body)
				}
				if w.absent != "" && strings.Contains(m.Body, w.absent) {
					t.Errorf("message %d body = %q, want it without %q", i, m.Body, w.absent)
				}
				var got []string
				for _, is := range m.Issues {
					if is.Rule == string(RuleSeparatorNoBlank) || is.Rule == string(RuleContentLengthIgnored) {
						if is.Severity != sources.SeverityWarning || len(is.Reason) < 20 {
							t.Errorf("message %d: issue %v, want a warning with a specific reason", i, is)
						}
						got = append(got, is.Rule)
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(w.issues) {
					t.Errorf("message %d split warnings = %v, want %v (all issues: %v)", i, got, w.issues, m.Issues)
				}
			}
			if end != int64(len(tt.mbox)) {
				t.Errorf("the last message ends at %d, the file is %d bytes", end, len(tt.mbox))
			}
		})
	}
}

// TestMboxSplitAttachmentAfterGluedSeparator: the attachment of a message
// followed by a separator without a blank line is kept (item 1: the next
// message used to vanish into the multipart epilogue).
func TestMboxSplitAttachmentAfterGluedSeparator(t *testing.T) {
	const env = "From a@example.com Mon Mar  4 09:00:00 2024"
	one := env + "\nFrom: a@example.com\nTo: b@example.com\nSubject: one\nDate: Mon, 4 Mar 2024 10:00:00 +0000\nMessage-ID: <one@example.com>\n" +
		"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nthe text\n--b\n" +
		"Content-Type: application/pdf\nContent-Disposition: attachment; filename=a.pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n--b--\n"
	two := msg("From - ", "two", "body two\n")
	msgs := readAll(t, one+two, sources.Options{})
	if len(msgs) != 2 {
		t.Fatalf("read %d messages, want 2", len(msgs))
	}
	if len(msgs[0].Attachments) != 1 || msgs[0].Attachments[0].Name != "a.pdf" || msgs[0].Attachments[0].Size != 9 {
		t.Errorf("attachments of one = %+v, want a.pdf of 9 bytes", msgs[0].Attachments)
	}
	if msgs[1].MessageID != "two@example.com" || !strings.Contains(msgs[1].Body, "body two") {
		t.Errorf("second message = %q %q", msgs[1].MessageID, msgs[1].Body)
	}
}

func TestFromLineKind(t *testing.T) {
	tests := []struct {
		line string
		want fromKind
	}{
		{"From a@example.com Mon Sep 17 00:00:00 2001", fromEnvelope},
		{"From MAILER-DAEMON Fri Jul  8 12:08:34 2011", fromEnvelope},
		{"From - Mon Jan  1 00:00:00 1998", fromEnvelope},
		{"From 1234@xxx Wed Aug 18 07:56:10 +0000 2021", fromEnvelope},
		{"From magick-owner@example.com Wed Feb  9 23:15 MET 2000", fromEnvelope},
		{"From a@example.com Mon Sep 17 00:00:00 2001 +0200", fromEnvelope},
		{"From user at example.com  Fri Apr  6 22:43:55 2007", fromEnvelope},
		{"From a@example.com Mon Sep 17 00:00:00 2001\r", fromEnvelope},
		{"From -", fromBare},
		{"From - ", fromBare},
		{"From sender@example.com", fromBare},
		{"From ", fromBody},
		{"From the first day, we knew", fromBody},
		{"From Mon Sep 17 00:00:00 2001", fromBody}, // no sender
		{"From a@b Mon Sep 17 00:00:00", fromBody},  // no year
		{"From a@b Mon Sep 17 00:00:00 2001 and more words", fromBody},
		{"From a@b Sep 17 00:00:00 2001", fromBody},
	}
	for _, tt := range tests {
		if got := fromLineKind([]byte(tt.line)); got != tt.want {
			t.Errorf("fromLineKind(%q) = %d, want %d", tt.line, got, tt.want)
		}
	}
}
