package pipeline

import (
	"context"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// attachmentMsg is an mbox message with one text attachment whose
// Content-Disposition carries dispo.
func attachmentMsg(id, dispo string) string {
	return "From a@example.com Mon Mar  4 09:00:00 2024\nFrom: a@example.com\nTo: b@example.com\nSubject: [#5] " + id +
		"\nDate: Mon, 4 Mar 2024 10:00:00 +0000\nMessage-ID: <" + id + ">\nMIME-Version: 1.0\n" +
		"Content-Type: multipart/mixed; boundary=XX\n\n--XX\nContent-Type: text/plain\n\nsee attached\n" +
		"--XX\nContent-Type: application/octet-stream\nContent-Disposition: attachment; " + dispo +
		"\nContent-Transfer-Encoding: base64\n\naGVsbG8=\n--XX--\n"
}

// TestControlCharactersLeaveAttachmentNames: a NUL, other control
// characters and a bidi override in an attachment's file name are removed
// before the upload (contract §9) with a warning; a name left empty gets a
// fallback name. The fake refuses such names with 400, as the API does:
// before, the NUL failed the whole thread.
func TestControlCharactersLeaveAttachmentNames(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.mbox")
	writeMbox(t, path,
		attachmentMsg("nul", `filename*=UTF-8''nul%00byte.txt`),
		attachmentMsg("ctl", `filename*=UTF-8''tab%09bell%07del%7Fc1%C2%85.txt`),
		attachmentMsg("bidi", `filename*=UTF-8''invoice%E2%80%AEfdp.txt`),
		attachmentMsg("empty", `filename*=UTF-8''%00%01%02`),
	)
	opts := testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
	rep, err := Validate(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	warned := map[string]bool{}
	for _, is := range rep.Issues {
		if is.Rule == mapping.RuleAttachmentNameRepaired {
			warned[is.MessageKey] = true
			if strings.ContainsRune(is.Message, 0) || strings.ContainsRune(is.Message, '\u202e') {
				t.Errorf("the issue shows the raw name: %q", is.Message)
			}
		}
	}
	if len(warned) != 4 {
		t.Errorf("%s warnings for %v, want all 4 messages", mapping.RuleAttachmentNameRepaired, warned)
	}

	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	sum, err := Import(context.Background(), newClient(t, srv), newStore(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Failed != 0 || sum.EventsImported != 4 {
		t.Fatalf("failed %d, events %d; want 0 and 4", sum.Failed, sum.EventsImported)
	}
	var names []string
	for k, v := range landed(t, srv.Fake) {
		for _, a := range v {
			names = append(names, k+": "+strings.Fields(a)[0])
		}
	}
	sort.Strings(names)
	want := []string{"bidi: invoicefdp.txt", "ctl: tabbelldelc1.txt", "empty: attachment-1.bin", "nul: nulbyte.txt"}
	if strings.Join(names, "|") != strings.Join(want, "|") {
		t.Errorf("uploaded names %q, want %q", names, want)
	}
}

// TestDenyListSeesThroughDisguisedExtensions: trailing dots and spaces
// (Windows drops them), invisible characters, other cases and compatibility
// forms do not hide an extension from deny_extensions.
func TestDenyListSeesThroughDisguisedExtensions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.mbox")
	var msgs []string
	for i, dispo := range []string{`filename="evil.exe."`, `filename="evil.exe "`, `filename*=UTF-8''evil.scr%E2%80%8B`,
		`filename="EVIL.EXE"`, `filename*=UTF-8''evil.%EF%BD%85%EF%BD%98%EF%BD%85`, `filename*=UTF-8''evil.exe%00`,
		`filename="evil.exe. . ."`, `filename="report.pdf"`} {
		msgs = append(msgs, attachmentMsg("m"+string(rune('a'+i)), dispo))
	}
	writeMbox(t, path, msgs...)
	opts := testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
	opts.Mapper = mapping.New(mapping.Options{Ticket: opts.Mapper.Options().Ticket, Now: opts.Mapper.Options().Now,
		Attachments: mapping.AttachmentPolicy{Deny: []string{"exe", "scr"}}})
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	if _, err := Import(context.Background(), newClient(t, srv), newStore(t), opts); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range landed(t, srv.Fake) {
		for _, a := range v {
			got = append(got, strings.Fields(a)[0])
		}
	}
	if len(got) != 1 || got[0] != "report.pdf" {
		t.Errorf("uploaded %q, want only report.pdf", got)
	}
}
