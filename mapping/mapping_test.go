package mapping

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/threadlift/threadlift/sources"
)

var now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func message(id, subject string, day int, header map[string][]string) *sources.Message {
	return &sources.Message{
		Envelope: &sources.Envelope{MessageID: id, Subject: subject, Date: time.Date(2024, 1, day, 0, 0, 0, 0, time.UTC),
			Loc: sources.Location{File: "a.mbox", Offset: int64(day * 100)}},
		From: sources.Address{Email: "from@example.com"}, HasFrom: true,
		To:     []sources.Address{{Email: "to@example.com"}},
		Header: header,
		Body:   "hello " + id,
	}
}

func TestTicketRules(t *testing.T) {
	hdr := map[string][]string{"X-Ticket": {"42"}}
	ref := map[string][]string{"X-Ticket": {"ABC-1"}}
	tests := []struct {
		name   string
		rules  TicketRules
		msgs   []*sources.Message
		want   int64
		reason string
	}{
		{"header wins over subject", TicketRules{Header: "x-ticket", SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)},
			[]*sources.Message{message("a", "[#7] hi", 1, hdr)}, 42, ""},
		{"header of a later message", TicketRules{Header: "X-Ticket"},
			[]*sources.Message{message("a", "hi", 1, nil), message("b", "re", 2, hdr)}, 42, ""},
		{"subject of the root message", TicketRules{Header: "X-Ticket", SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)},
			[]*sources.Message{message("a", "[#7] hi", 1, nil), message("b", "[#8] re", 2, nil)}, 7, ""},
		{"lookup maps a reference", TicketRules{Header: "X-Ticket", Lookup: map[string]int64{"ABC-1": 99}},
			[]*sources.Message{message("a", "hi", 1, ref)}, 99, ""},
		// A reference that cannot be used rejects the thread (issue 11):
		// the default is for threads that name no ticket at all.
		{"lookup miss is rejected, not defaulted", TicketRules{Header: "X-Ticket", Lookup: map[string]int64{}, DefaultTicketID: 5},
			[]*sources.Message{message("a", "hi", 1, ref)}, 0, `header X-Ticket "ABC-1" of the message at a.mbox@100 is not in lookup_csv`},
		{"non-numeric without lookup is rejected", TicketRules{Header: "X-Ticket"},
			[]*sources.Message{message("a", "hi", 1, ref)}, 0, `header X-Ticket "ABC-1" of the message at a.mbox@100 is not a ticket id`},
		{"a record's ticket_id comes first", TicketRules{Header: "X-Ticket"},
			[]*sources.Message{func() *sources.Message { m := message("a", "hi", 1, hdr); m.TicketRef = "31"; return m }()}, 31, ""},
		{"nothing matches", TicketRules{},
			[]*sources.Message{message("a", "hi", 1, nil)}, 0, "default_ticket_id is 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New(Options{Ticket: tt.rules, Now: func() time.Time { return now }}).Map("k", tt.msgs, nil)
			if p.TicketID != tt.want {
				t.Errorf("Map(%s).TicketID = %d, want %d (reason %q)", tt.name, p.TicketID, tt.want, p.Reason)
			}
			if tt.reason != "" && !strings.Contains(p.Reason, tt.reason) {
				t.Errorf("Map(%s).Reason = %q, want it to contain %q", tt.name, p.Reason, tt.reason)
			}
			if (tt.want == 0) != (p.Rule == RuleUnmapped || p.Rule == RuleInvalidTicketID) {
				t.Errorf("Map(%s).Rule = %q", tt.name, p.Rule)
			}
		})
	}
}

func TestMapValidation(t *testing.T) {
	m := New(Options{Ticket: TicketRules{DefaultTicketID: 1}, Agents: map[string]int64{"agent@acme.example": 77}, Now: func() time.Time { return now }})

	mixed := message("mixed", "s", 1, nil)
	mixed.To = append(mixed.To, sources.Address{SlackWorkspaceID: "T1", SlackChannelID: "C1"})
	future := message("future", "s", 2, nil)
	future.Date = now.Add(48 * time.Hour)
	cc := message("cc", "s", 3, nil)
	cc.To = []sources.Address{{Email: "agent@acme.example"}}
	cc.Cc = []sources.Address{{Email: "TO@example.com"}, {Email: "to@example.com"}, {Email: "Agent@acme.example"}}
	p := m.Map("k", []*sources.Message{mixed, future, cc}, nil)

	rules := map[string]string{}
	for _, r := range p.Rejected {
		rules[r.Key] = r.Rule
	}
	if rules["mixed"] != RuleMixedParticipants || rules["future"] != RuleDateOutOfRange {
		t.Errorf("rejected = %v, want mixed→%s and future→%s", rules, RuleMixedParticipants, RuleDateOutOfRange)
	}
	if len(p.Events) != 1 {
		t.Fatalf("events = %d, want 1", len(p.Events))
	}
	to := p.Events[0].Event.Message.To
	if len(to) != 2 || to[0].UserID != 77 || to[1].Email != "TO@example.com" {
		t.Errorf("to = %+v, want the agent as user_id 77 then one deduplicated address", to)
	}
	if p.SideConversation.Subject != "s" {
		t.Errorf("subject = %q, want the first importable message's", p.SideConversation.Subject)
	}
}

func TestStrictTurnsWarningsIntoRejections(t *testing.T) {
	msg := message("a", "s", 1, nil)
	msg.Issues = []sources.Issue{{Severity: sources.SeverityWarning, Rule: "charset", Reason: "unknown charset x"}}
	lax := New(Options{Ticket: TicketRules{DefaultTicketID: 1}, Now: func() time.Time { return now }}).Map("k", []*sources.Message{msg}, nil)
	strict := New(Options{Ticket: TicketRules{DefaultTicketID: 1}, Strict: true, Now: func() time.Time { return now }}).Map("k", []*sources.Message{msg}, nil)
	if !lax.Valid() || len(lax.Events) != 1 {
		t.Errorf("lax: valid=%v events=%d, want a valid thread with 1 event", lax.Valid(), len(lax.Events))
	}
	if strict.Valid() || len(strict.Rejected) != 1 || strict.Rejected[0].Rule != "charset" {
		t.Errorf("strict: valid=%v rejected=%+v, want the message rejected for its charset warning", strict.Valid(), strict.Rejected)
	}
}

func TestChunks(t *testing.T) {
	ev := make([]Event, 7)
	for _, tt := range []struct{ n, want int }{{50, 1}, {3, 3}, {1, 7}, {7, 1}, {0, 7}} {
		got := Chunks(ev, tt.n)
		total := 0
		for _, c := range got {
			total += len(c)
		}
		if len(got) != tt.want || total != 7 {
			t.Errorf("Chunks(7 events, %d) = %d chunks of %d events, want %d chunks", tt.n, len(got), total, tt.want)
		}
	}
}

func TestLoadCSVs(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	agents, err := LoadAgentsCSV(write("agents.csv", "\ufeffuser_id,email\n12,Ann <ANN@acme.example>\n13, bob@acme.example \n"))
	if err != nil || agents["ann@acme.example"] != 12 || agents["bob@acme.example"] != 13 {
		t.Errorf("LoadAgentsCSV = %v, %v", agents, err)
	}
	if _, err := LoadLookupCSV(write("bad.csv", "reference,ticket\nA,1\n")); err == nil || !strings.Contains(err.Error(), `"ticket_id"`) {
		t.Errorf("LoadLookupCSV(missing column) error = %v, want it to name ticket_id", err)
	}
	if _, err := LoadLookupCSV(write("nan.csv", "reference,ticket_id\nA,x\n")); err == nil || !strings.Contains(err.Error(), "nan.csv:2") {
		t.Errorf("LoadLookupCSV(non-number) error = %v, want file:line", err)
	}
}

func TestDuplicates(t *testing.T) {
	m := New(Options{Ticket: TicketRules{DefaultTicketID: 1}, Now: func() time.Time { return now }})
	orig := message("a", "s", 1, nil)
	orig.ContentKey = "sha256:1"
	copyOf := message("a", "s", 1, nil)
	copyOf.ContentKey = "sha256:2" // other Received lines: still a copy
	other := message("a", "another subject", 2, nil)
	other.ContentKey = "sha256:3"
	p := m.Map("k", []*sources.Message{orig}, []*sources.Message{copyOf, other})
	if len(p.Events) != 1 || len(p.Rejected) != 2 {
		t.Fatalf("events %d rejected %+v, want 1 event and 2 rejected", len(p.Events), p.Rejected)
	}
	if r := p.Rejected[0]; !r.Duplicate || r.Rule != RuleDuplicate {
		t.Errorf("copy: %+v, want a plain duplicate", r)
	}
	if r := p.Rejected[1]; r.Duplicate || r.Rule != RuleDuplicateID || r.Key != "sha256:3" || !strings.Contains(r.Reason, "different content") {
		t.Errorf("other message under the same id: %+v, want rejected by %s under its content key", r, RuleDuplicateID)
	}
}

func TestAttachmentPolicy(t *testing.T) {
	msg := func() *sources.Message {
		m := message("a", "s", 1, nil)
		m.Attachments = []sources.Attachment{{Name: "ok.pdf", Size: 10}, {Name: "big.pdf", Size: 1000}, {Name: "run.EXE", Size: 5}}
		return m
	}
	pol := AttachmentPolicy{MaxBytes: 100, Deny: []string{"exe"}}
	p := New(Options{Ticket: TicketRules{DefaultTicketID: 1}, Attachments: pol, Now: func() time.Time { return now }}).Map("k", []*sources.Message{msg()}, nil)
	if !p.Valid() || len(p.Events) != 1 {
		t.Fatalf("skip policy: valid=%v events=%d", p.Valid(), len(p.Events))
	}
	e := p.Events[0]
	if len(e.Upload) != 1 || e.Upload[0] != 0 {
		t.Errorf("Upload = %v, want only attachment 0", e.Upload)
	}
	body := e.Event.Message.Body
	if !strings.Contains(body, `"big.pdf" (1000 bytes) was left out: 1000 bytes, over the 100-byte limit`) || !strings.Contains(body, `"run.EXE"`) {
		t.Errorf("body does not say what was left out:\n%s", body)
	}
	n := 0
	for _, is := range p.Issues {
		if is.Rule == RuleAttachmentLeftOut {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d %s issues, want 2", n, RuleAttachmentLeftOut)
	}

	pol.RejectThread = true
	p = New(Options{Ticket: TicketRules{DefaultTicketID: 1}, Attachments: pol, Now: func() time.Time { return now }}).Map("k", []*sources.Message{msg()}, nil)
	if p.Valid() || p.Rule != RuleAttachmentRefused {
		t.Errorf("reject policy: valid=%v rule=%q, want the thread rejected by %s", p.Valid(), p.Rule, RuleAttachmentRefused)
	}
	pol = AttachmentPolicy{Allow: []string{".PDF"}}
	p = New(Options{Ticket: TicketRules{DefaultTicketID: 1}, Attachments: pol, Now: func() time.Time { return now }}).Map("k", []*sources.Message{msg()}, nil)
	if got := p.Events[0].Upload; len(got) != 2 {
		t.Errorf("allow pdf: Upload = %v, want the two pdfs", got)
	}
}
