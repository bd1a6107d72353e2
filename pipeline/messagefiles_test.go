package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rs/zerolog"
	"github.com/threadlift/threadlift/internal/fixtures"
	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/pipeline/report"
	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/mbox"
	"github.com/threadlift/threadlift/zendesk"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// Issue 16's done-means: the same messages as a maildir, a folder of
// .eml files and one mbox import exactly once each, with the same
// threads, thread keys, message keys, bodies, senders, recipients and
// attachments.

// splitMbox writes every message of the mbox at path as a file of its
// own, name(i) under dir, and returns how many. keepFrom keeps each
// message's "From " line (its date is the last-resort date of a message
// without Date, and Maildir tools that keep it exist); the separator's
// blank line goes, and mboxrd escaping is undone, as a maildir holds
// the message as it was delivered.
func splitMbox(t testing.TB, path, dir string, keepFrom bool, name func(i int) string) int {
	t.Helper()
	r, err := mbox.Open(path, sources.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	for ; ; n++ {
		env, err := r.Next()
		if err == io.EOF {
			return n
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		raw, err := r.(sources.RawReader).Raw(env)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(raw)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(name(n)))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, messageFile(b, keepFrom), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

var escapedFrom = regexp.MustCompile(`(?m)^>(>*From )`)

// messageFile is one mbox record as a message file.
func messageFile(b []byte, keepFrom bool) []byte {
	if bytes.HasPrefix(b, []byte("From ")) && !keepFrom {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	switch {
	case bytes.HasSuffix(b, []byte("\r\n\r\n")):
		b = b[:len(b)-2]
	case bytes.HasSuffix(b, []byte("\n\n")):
		b = b[:len(b)-1]
	}
	return escapedFrom.ReplaceAll(b, []byte("$1"))
}

// landedMessage is what a message is in Zendesk, for comparisons across
// sources (event ids and attachment ids differ).
type landedMessage struct {
	Thread, Key, Subject, Body, HTML, From string
	To                                     []string
	Attachments                            []string
}

// landedAll lists every message of every side conversation of the fake,
// by ticket, thread key and event order.
func landedAll(f *zendesktest.Fake) []landedMessage {
	var out []landedMessage
	for _, tid := range f.TicketIDs() {
		for _, c := range f.SideConversations(tid) {
			key := fmt.Sprintf("%d/%s", tid, c.SideConversation.ExternalIDs[zendesk.ThreadKeyField])
			for _, ev := range c.Events {
				if ev.Message == nil {
					continue
				}
				m := ev.Message
				lm := landedMessage{Thread: key, Key: m.ExternalIDs[zendesk.MessageKeyField], Subject: m.Subject, Body: m.Body, HTML: m.HTMLBody}
				if m.From != nil {
					lm.From = m.From.Email
				}
				for _, p := range m.To {
					lm.To = append(lm.To, p.Email)
				}
				for _, a := range m.Attachments {
					lm.Attachments = append(lm.Attachments, fmt.Sprintf("%s %d", a.FileName, a.Size))
				}
				out = append(out, lm)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Thread < out[j].Thread })
	return out
}

// importAs imports srcs into a fresh fake and returns what landed.
func importAs(t *testing.T, rules mapping.TicketRules, srcs ...Source) ([]landedMessage, *report.Summary) {
	t.Helper()
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	opts := testOptions("", rules)
	opts.Sources = srcs
	sum, err := Import(context.Background(), newClient(t, srv), newStore(t), opts)
	if err != nil {
		t.Fatalf("import %s: %v", srcs[0].Type, err)
	}
	got := landedAll(srv.Fake)
	keys := map[string]bool{}
	for _, m := range got {
		if keys[m.Key] {
			t.Errorf("%s: message key %s landed twice", srcs[0].Type, m.Key)
		}
		keys[m.Key] = true
	}
	return got, sum
}

// TestMaildirAndEMLImportLikeTheMbox: a generated archive (every charset,
// attachments, long threads, missing roots) as one mbox, as a maildir
// (cur/ and new/, flags in the names, a file in tmp/ that must not be
// read) and as a folder of .eml files nested by year: the three imports
// land the same messages in the same threads, once each.
func TestMaildirAndEMLImportLikeTheMbox(t *testing.T) {
	dir := t.TempDir()
	a := fixtures.Generate(fixtures.Options{Seed: 16, Threads: 40, MaxReplies: 4, LongThreads: 2, LongReplies: 7, MissingRoots: 2,
		AttachmentEvery: 5, Charsets: true})
	mboxPath := fixtures.WriteMbox(t, dir, "all.mbox", a)
	md := filepath.Join(dir, "Maildir")
	n := splitMbox(t, mboxPath, md, false, func(i int) string {
		if i%3 == 0 {
			return fmt.Sprintf("new/%010d.M%dP1.host", 1700000000+i, i)
		}
		return fmt.Sprintf("cur/%010d.M%dP1.host:2,S", 1700000000+i, i)
	})
	if err := os.MkdirAll(filepath.Join(md, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(md, "tmp", "1.partial"), "From: half@example.com\nSubject: being delivered\n")
	emlDir := filepath.Join(dir, "eml")
	splitMbox(t, mboxPath, emlDir, false, func(i int) string { return fmt.Sprintf("%d/%02d/msg-%04d.eml", 2020+i%3, 1+i%12, i) })
	if n != a.Messages() {
		t.Fatalf("split %d messages, the archive has %d", n, a.Messages())
	}

	rules := mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)}
	want, wsum := importAs(t, rules, Source{Type: "mbox", Path: mboxPath, Name: "all.mbox"})
	if len(want) != a.Messages() || wsum.Imported != len(a.Threads) {
		t.Fatalf("mbox: %d messages in %d threads landed, want %d in %d", len(want), wsum.Imported, a.Messages(), len(a.Threads))
	}
	for _, src := range []Source{
		{Type: "maildir", Path: md, Name: "Maildir"},
		{Type: "eml", Path: emlDir, Name: "eml"},
	} {
		got, sum := importAs(t, rules, src)
		if sum.Imported != wsum.Imported || sum.Rejected != 0 || sum.Failed != 0 {
			t.Errorf("%s: imported %d, rejected %d, failed %d; the mbox imported %d", src.Type, sum.Imported, sum.Rejected, sum.Failed, wsum.Imported)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s lands otherwise than the mbox (-mbox +%s):\n%s", src.Type, src.Type, diff)
		}
	}
}

// TestMaildirImportsOnceOnARerun: a second import of the same maildir
// posts nothing; a message delivered since (new/) is appended to its
// thread's side conversation.
func TestMaildirImportsOnceOnARerun(t *testing.T) {
	dir := t.TempDir()
	a := fixtures.Generate(fixtures.Options{Seed: 17, Threads: 6, MaxReplies: 3})
	mboxPath := fixtures.WriteMbox(t, dir, "all.mbox", a)
	md := filepath.Join(dir, "Maildir")
	names := []string{}
	n := splitMbox(t, mboxPath, md, false, func(i int) string {
		names = append(names, fmt.Sprintf("cur/%04d:2,S", i))
		return names[i]
	})
	// Hold back the last message of the first thread with a reply.
	last := -1
	for i, th := range a.Threads {
		if len(th.Messages) > 1 {
			last = 0
			for _, prev := range a.Threads[:i] {
				last += len(prev.Messages)
			}
			last += len(th.Messages) - 1
			break
		}
	}
	held := filepath.Join(md, filepath.FromSlash(names[last]))
	data, err := os.ReadFile(held)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(held)

	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	store := newStore(t)
	opts := testOptions("", mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
	opts.Sources = []Source{{Type: "maildir", Path: md, Name: "Maildir"}}
	if _, err := Import(context.Background(), newClient(t, srv), store, opts); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(md, "new"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(md, "new", "9999.delivered"), string(data))
	var log bytes.Buffer
	opts.Logger = zerolog.New(&log)
	sum, err := Import(context.Background(), newClient(t, srv), store, opts)
	if err != nil {
		t.Fatal(err)
	}
	// A folder is never the base of an appended read: the new file is
	// found because every run reads the folder whole, and says why.
	if !strings.Contains(log.String(), "is a folder of message files") || strings.Contains(log.String(), "read only what was appended") {
		t.Errorf("rerun log: want a whole read of the maildir, saying why:\n%s", log.String())
	}
	if sum.EventsImported != 1 {
		t.Errorf("the rerun imported %d events, want the 1 new message", sum.EventsImported)
	}
	assertExactlyOnce(t, srv.Fake, n)
}

// TestEMLRefusesOutlookMsg: an Outlook binary .msg in an eml folder is
// one unreadable record with the reason, its location the file; the
// other messages are imported.
func TestEMLRefusesOutlookMsg(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.eml"), "From: a@example.com\nTo: b@example.com\nSubject: [#7] hi\nDate: Mon, 1 Jan 2024 10:00:00 +0000\nMessage-ID: <a@x>\n\nhello\n")
	writeFile(t, filepath.Join(dir, "b.msg"), "\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1"+strings.Repeat("\x00", 512))
	opts := testOptions("", mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
	opts.Sources = []Source{{Type: "eml", Path: dir, Name: "exports"}}
	rep, err := Validate(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.ValidThreads != 1 || rep.InvalidThreads != 1 {
		t.Errorf("valid %d, invalid %d threads; want 1 and 1", rep.ValidThreads, rep.InvalidThreads)
	}
	i := slices.IndexFunc(rep.Issues, func(is report.Issue) bool { return is.Rule == "outlook-msg" })
	if i < 0 || rep.Issues[i].Source != "exports/b.msg" || !strings.Contains(rep.Issues[i].Message, "Outlook binary .msg") {
		t.Errorf("issues %+v: want outlook-msg at exports/b.msg", rep.Issues)
	}
	if len(rep.Sources) != 1 || rep.Sources[0].Threads != 2 || rep.Sources[0].Rejected != 1 || rep.Sources[0].Format != "eml" {
		t.Errorf("sources %+v: want the folder with 2 threads, 1 rejected", rep.Sources)
	}
}

// corpusMail is ../shared/corpora/mail, or "" (the test skips).
func corpusMail(t *testing.T) string {
	root := filepath.Join("..", "..", "shared", "corpora", "mail")
	if _, err := os.Stat(root); err != nil {
		t.Skip("../shared/corpora/mail is not here")
	}
	return root
}

// TestCorpusMboxesAsMaildirsAndEML splits the public mboxes of the
// corpus (up to 400 KB each) into one maildir and one .eml folder per
// mbox, each message a file of its own (its "From " line kept: its date
// is the last resort of messages without Date), and imports the three
// renderings: the same messages land in the same threads, once each.
func TestCorpusMboxesAsMaildirsAndEML(t *testing.T) {
	root := corpusMail(t)
	var mboxes []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".mbox") {
			if st, err := os.Stat(p); err == nil && st.Size() <= 400<<10 {
				mboxes = append(mboxes, p)
			}
		}
		return nil
	})
	dir := t.TempDir()
	var asMbox, asMaildir, asEML []Source
	total := 0
	for i, p := range mboxes {
		name := strings.ReplaceAll(strings.TrimPrefix(p, root+string(filepath.Separator)), string(filepath.Separator), "_")
		md := filepath.Join(dir, "maildir", name)
		n := splitMbox(t, p, md, true, func(j int) string { return fmt.Sprintf("cur/%06d.M%dP%d.corpus:2,S", j, j, i) })
		splitMbox(t, p, filepath.Join(dir, "eml", name), true, func(j int) string { return fmt.Sprintf("%06d.eml", j) })
		total += n
		asMbox = append(asMbox, Source{Type: "mbox", Path: p, Name: name})
		asMaildir = append(asMaildir, Source{Type: "maildir", Path: md, Name: name})
		asEML = append(asEML, Source{Type: "eml", Path: filepath.Join(dir, "eml", name), Name: name})
	}
	rules := mapping.TicketRules{DefaultTicketID: 1}
	want, wsum := importAs(t, rules, asMbox...)
	t.Logf("%d mboxes, %d messages: the mbox import landed %d messages in %d threads (%d rejected)", len(mboxes), total, len(want), wsum.Imported, wsum.Rejected)
	for _, srcs := range [][]Source{asMaildir, asEML} {
		got, sum := importAs(t, rules, srcs...)
		t.Logf("%s: %d messages in %d threads, %d rejected, %d failed", srcs[0].Type, len(got), sum.Imported, sum.Rejected, sum.Failed)
		if sum.Imported != wsum.Imported || sum.Rejected != wsum.Rejected {
			t.Errorf("%s: imported %d, rejected %d; the mboxes %d, %d", srcs[0].Type, sum.Imported, sum.Rejected, wsum.Imported, wsum.Rejected)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s lands otherwise than the mboxes (-mbox +%s):\n%s", srcs[0].Type, srcs[0].Type, diff)
		}
	}
}

// TestCorpusEMLFolder validates every .eml file of the corpus as one eml
// source (the folder walked recursively) and reports the counts.
func TestCorpusEMLFolder(t *testing.T) {
	root := corpusMail(t)
	opts := testOptions("", mapping.TicketRules{DefaultTicketID: 1})
	opts.Sources = []Source{{Type: "eml", Path: root, Name: "mail"}}
	rep, err := Validate(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("eml folder %s: %d messages, %d threads (%d valid, %d invalid), %d messages rejected", root, rep.Messages, rep.Threads, rep.ValidThreads, rep.InvalidThreads, rep.RejectedMsgs)
	if rep.Messages == 0 || len(rep.Sources) != 1 || rep.Sources[0].Messages != rep.Messages {
		t.Errorf("sources %+v, %d messages", rep.Sources, rep.Messages)
	}
}
