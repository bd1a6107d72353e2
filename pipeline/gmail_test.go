package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/pipeline/report"
	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/zendesk"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// takeoutMessage is one message of a Takeout-shaped mbox: Gmail's own
// From line, X-GM-THRID and X-Gmail-Labels first.
func takeoutMessage(thrid, labels, id, refs, subject string, day int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From 1%s@xxx Wed Aug 18 07:56:10 +0000 2021\n", thrid)
	if thrid != "" {
		fmt.Fprintf(&b, "X-GM-THRID: %s\n", thrid)
	}
	fmt.Fprintf(&b, "X-Gmail-Labels: %s\nFrom: a@example.com\nTo: b@example.com\nSubject: %s\n", labels, subject)
	fmt.Fprintf(&b, "Date: Mon, %d Mar 2024 10:00:00 +0000\nMessage-ID: <%s>\n", day, id)
	if refs != "" {
		fmt.Fprintf(&b, "References: <%s>\n", refs)
	}
	fmt.Fprintf(&b, "\nbody of %s\n\n", id)
	return b.String()
}

// takeout is a Takeout export: conversation 100 has three messages of
// which the reply has no References (Gmail still knows it is one
// conversation, JWZ would not); conversation 200 one message in Spam;
// conversation 300 one in Inbox.
func takeout() string {
	return takeoutMessage("100", "Inbox,Important", "a1@x", "", "[#7] order", 1) +
		takeoutMessage("100", "Inbox", "a2@x", "", "Re: [#7] order", 2) +
		takeoutMessage("100", "Sent", "a3@x", "a1@x", "Re: [#7] order", 3) +
		takeoutMessage("200", "Spam,Unread", "s1@x", "", "[#7] win a prize", 4) +
		takeoutMessage("300", "Inbox", "c1@x", "", "[#7] other", 5)
}

func conversationsOf(f *zendesktest.Fake, ticket int64) map[string][]string {
	out := map[string][]string{}
	for _, c := range f.SideConversations(ticket) {
		k := c.SideConversation.ExternalIDs[zendesk.ThreadKeyField]
		for _, e := range c.Events {
			if e.Message != nil {
				out[k] = append(out[k], e.Message.ExternalIDs[zendesk.MessageKeyField])
			}
		}
	}
	return out
}

// TestGmailTakeoutThreadsByThrid: with thread_by gmail, Gmail's
// conversations are the threads, keyed gmail:<X-GM-THRID>, even where
// References are missing; skip_labels leaves Spam out, counted and
// reported. A backfill that brings a new message of conversation 100 (no
// References at all) appends it to that side conversation; a message
// without X-GM-THRID is threaded by JWZ, with a warning.
func TestGmailTakeoutThreadsByThrid(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, filepath.Join(dir, "All mail.mbox"), takeout())
	opts := testOptions("", mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
	src := Source{Type: "mbox", Path: path, Name: "All mail.mbox",
		Format: sources.FormatOptions{ThreadBy: sources.ThreadByGmail, SkipLabels: []string{"spam", "Trash"}}}
	opts.Sources = []Source{src}

	rep, err := Validate(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Threads != 2 || rep.Messages != 4 || len(rep.Sources) != 1 || rep.Sources[0].Skipped != 1 {
		t.Errorf("validate: %d threads, %d messages, sources %+v; want 2, 4, 1 skipped", rep.Threads, rep.Messages, rep.Sources)
	}
	i := slices.IndexFunc(rep.Issues, func(is report.Issue) bool { return is.Rule == RuleSkipped })
	if i < 0 || !strings.Contains(rep.Issues[i].Message, "label spam: 1") || rep.Issues[i].Source != "All mail.mbox" {
		t.Errorf("issues %+v: want a skipped warning naming label spam", rep.Issues)
	}

	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	store := newStore(t)
	if _, err := Import(context.Background(), newClient(t, srv), store, opts); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"gmail:100": {"a1@x", "a2@x", "a3@x"}, "gmail:300": {"c1@x"}}
	if got := conversationsOf(srv.Fake, 7); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ticket 7 holds %v, want %v", got, want)
	}

	// Backfill: Takeout again, with a new message of conversation 100
	// that references nothing, and one without X-GM-THRID replying to c1.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(takeoutMessage("100", "Inbox", "a4@x", "", "Re: [#7] order", 6) +
		takeoutMessage("", "Inbox", "n1@x", "c1@x", "Re: [#7] other", 7) +
		takeoutMessage("100", "Spam", "s2@x", "", "Re: [#7] order", 8))
	f.Close()
	var log bytes.Buffer
	opts.Logger = zerolog.New(&log)
	sum, err := Import(context.Background(), newClient(t, srv), store, opts)
	if err != nil {
		t.Fatal(err)
	}
	// The backfill reads only the appended bytes; the Spam message among
	// them is counted and reported as a full read would.
	if !strings.Contains(log.String(), "read only what was appended") || !strings.Contains(log.String(), "label spam: 1") {
		t.Errorf("backfill log: want an appended read reporting 1 skipped spam message:\n%s", log.String())
	}
	want["gmail:100"] = append(want["gmail:100"], "a4@x")
	want["c1@x"] = []string{"n1@x"} // JWZ: keyed by the id it references
	if got := conversationsOf(srv.Fake, 7); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after the backfill ticket 7 holds %v, want %v", got, want)
	}
	if sum.EventsImported != 2 {
		t.Errorf("the backfill imported %d events, want 2", sum.EventsImported)
	}
	assertExactlyOnce(t, srv.Fake, 6)
}

// TestGmailTakeoutDefaultIsJWZ: without thread_by the same file threads
// by References as before (issue 16 keeps keys stable: no automatic
// switch), so the reply without References is a thread of its own.
func TestGmailTakeoutDefaultIsJWZ(t *testing.T) {
	path := writeFile(t, filepath.Join(t.TempDir(), "t.mbox"), takeout())
	opts := testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
	rep, err := Validate(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Threads != 4 || rep.Messages != 5 {
		t.Errorf("%d threads, %d messages; want 4 (a1+a3, a2, s1, c1) and 5", rep.Threads, rep.Messages)
	}
}
