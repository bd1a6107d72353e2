package mapping

import (
	"fmt"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/threadlift/threadlift/sources"
)

// Issue 12, item 12: one empty-body rule for every message, whatever its
// source: a body that is empty or white space only becomes EmptyBody
// (the API refuses a blank body); the warning is given only when the
// message has no text at all, so that validate (which leaves HTML
// unrendered) and import raise the same issues.
func TestEmptyBodyOneRule(t *testing.T) {
	m := New(Options{Ticket: TicketRules{DefaultTicketID: 1}, Now: func() time.Time { return now }})
	tests := []struct {
		name, body, html string
		wantBody         string
		warn             bool
	}{
		{"no text part", "", "", EmptyBody, true},
		{"white space only (an unparseable part decoded to line ends)", "\n\r\n \t\n", "", EmptyBody, true},
		{"html whose text is blank", "", "<html><body><img src=x></body></html>", EmptyBody, false},
		{"html not rendered (validate's light load)", "", "<p>text</p>", EmptyBody, false},
		{"blank html and no text", " ", "  \n", EmptyBody, true},
		{"text", "hello", "", "hello", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := message("e", "s", 1, nil)
			msg.Body, msg.HTMLBody = tt.body, tt.html
			p := m.Map("k", []*sources.Message{msg}, nil)
			if !p.Valid() || len(p.Events) != 1 {
				t.Fatalf("plan not valid: %s %s", p.Rule, p.Reason)
			}
			ev := p.Events[0].Event.Message
			if ev.Body != tt.wantBody || ev.HTMLBody != tt.html {
				t.Errorf("body %q, html %q; want %q, %q", ev.Body, ev.HTMLBody, tt.wantBody, tt.html)
			}
			if got := hasIssue(p, RuleEmptyBody); got != tt.warn {
				t.Errorf("empty-body warning %v, want %v: %v", got, tt.warn, p.Issues)
			}
		})
	}
}

func hasIssue(p *Plan, rule string) bool {
	for _, i := range p.Issues {
		if i.Rule == rule {
			return true
		}
	}
	return false
}

func addrs(prefix string, n int) []sources.Address {
	out := make([]sources.Address, n)
	for i := range out {
		out[i] = sources.Address{Email: fmt.Sprintf("%s%d@example.com", prefix, i)}
	}
	return out
}

// Issue 12, item 14: a message with more recipients than the API takes
// is kept: the sender and the first recipients within the limits (every
// agent, then To before Cc), the rest listed at the end of the body, and
// a recipients-truncated warning.
func TestRecipientsTruncated(t *testing.T) {
	agents := map[string]int64{}
	for i := range 60 {
		agents[fmt.Sprintf("agent%d@acme.example", i)] = int64(1000 + i)
	}
	m := New(Options{Ticket: TicketRules{DefaultTicketID: 1}, Agents: agents, Now: func() time.Time { return now }})
	tests := []struct {
		name                 string
		to, cc               []sources.Address
		wantTo               int // recipients posted
		wantAgents           int
		firstLeft, wantFirst string
		left                 int
	}{
		{"217 list members: the first 48 (To before Cc)", addrs("to", 150), addrs("cc", 67), 48, 0, "to48@example.com", "to0@example.com", 169},
		{"49 non-agents", addrs("n", 49), nil, 48, 0, "n48@example.com", "n0@example.com", 1},
		{"agents are kept, first", append(addrs("n", 60), addrs("agent", 60)...), nil, 100, 60, "n40@example.com", "n0@example.com", 20},
		{"within the limits: untouched", addrs("n", 48), addrs("agent", 52), 100, 52, "", "n0@example.com", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := message("big", "s", 1, nil)
			msg.To, msg.Cc = tt.to, tt.cc
			for i := range msg.To {
				if strings.HasPrefix(msg.To[i].Email, "agent") {
					msg.To[i].Email = strings.Replace(msg.To[i].Email, "@example.com", "@acme.example", 1)
				}
			}
			for i := range msg.Cc {
				if strings.HasPrefix(msg.Cc[i].Email, "agent") {
					msg.Cc[i].Email = strings.Replace(msg.Cc[i].Email, "@example.com", "@acme.example", 1)
				}
			}
			p := m.Map("k", []*sources.Message{msg}, nil)
			if !p.Valid() || len(p.Events) != 1 {
				t.Fatalf("plan rejected: %s %s", p.Rule, p.Reason)
			}
			ev := p.Events[0].Event
			agentsPosted := 0
			for _, r := range ev.Message.To {
				if r.UserID != 0 {
					agentsPosted++
				}
			}
			if len(ev.Message.To) != tt.wantTo || agentsPosted != tt.wantAgents {
				t.Errorf("posted to %d recipients, %d agents; want %d, %d", len(ev.Message.To), agentsPosted, tt.wantTo, tt.wantAgents)
			}
			if ev.Message.From == nil || ev.Message.From.Email != "from@example.com" {
				t.Errorf("from = %+v, want the sender", ev.Message.From)
			}
			if ev.Message.To[0].Email != tt.wantFirst {
				t.Errorf("first recipient %+v, want %s", ev.Message.To[0], tt.wantFirst)
			}
			if errs := CheckEvent(ev, now); len(errs) > 0 {
				t.Errorf("payload refused: %v", errs)
			}
			if tt.left == 0 {
				if hasIssue(p, RuleRecipientsTruncated) || strings.Contains(ev.Message.Body, "also sent to") {
					t.Errorf("truncated although within the limits: %v", p.Issues)
				}
				return
			}
			if !hasIssue(p, RuleRecipientsTruncated) {
				t.Errorf("no %s warning: %v", RuleRecipientsTruncated, p.Issues)
			}
			if want := fmt.Sprintf("[threadlift: also sent to %d more recipient", tt.left); !strings.Contains(ev.Message.Body, want) ||
				!strings.Contains(ev.Message.Body, tt.firstLeft) {
				t.Errorf("body %q, want %q listing %s", clip(ev.Message.Body), want, tt.firstLeft)
			}
			if !strings.HasPrefix(ev.Message.Body, "hello big") {
				t.Errorf("body %q lost its text", clip(ev.Message.Body))
			}
		})
	}
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// Issue 12, item 15: a message with no valid recipient goes to
// mapping.default_recipient when it is set (an address, or an agent's
// user id), with a warning; without it the rejection stays, and says how
// to lift it.
func TestDefaultRecipient(t *testing.T) {
	noTo := func() *sources.Message {
		msg := message("lone", "s", 1, nil)
		msg.To = nil
		// as sources report a message whose To was stripped (pipermail)
		msg.Issues = []sources.Issue{{Severity: sources.SeverityError, Rule: RuleNoRecipient, Reason: "no To or Cc header"}}
		return msg
	}
	base := Options{Ticket: TicketRules{DefaultTicketID: 1}, Now: func() time.Time { return now }, Agents: map[string]int64{"archive@acme.example": 5}}

	p := New(base).Map("k", []*sources.Message{noTo()}, nil)
	if p.Valid() || len(p.Rejected) != 1 || p.Rejected[0].Rule != RuleNoRecipient || !strings.Contains(p.Rejected[0].Reason, "mapping.default_recipient") {
		t.Fatalf("without default_recipient: valid %v, rejected %+v; want no-recipient with the hint", p.Valid(), p.Rejected)
	}

	for name, tt := range map[string]struct {
		def  sources.Address
		want string
	}{
		"an address":               {sources.Address{Email: "list@example.com", Name: "The List"}, "list@example.com"},
		"an agent's user id":       {sources.Address{UserID: 42}, "user 42"},
		"an address that is agent": {sources.Address{Email: "archive@acme.example"}, "user 5"},
	} {
		t.Run(name, func(t *testing.T) {
			o := base
			o.DefaultRecipient = &tt.def
			p := New(o).Map("k", []*sources.Message{noTo()}, nil)
			if !p.Valid() || len(p.Events) != 1 {
				t.Fatalf("plan rejected: %s %s (%v)", p.Rule, p.Reason, p.Issues)
			}
			to := p.Events[0].Event.Message.To
			if len(to) != 1 || describeParticipant(to[0]) != tt.want && to[0].Email != tt.want {
				t.Errorf("to = %+v, want %s", to, tt.want)
			}
			if !hasIssue(p, RuleDefaultRecipient) {
				t.Errorf("no %s warning: %v", RuleDefaultRecipient, p.Issues)
			}
			// A csv/json record without a valid to was rejected while
			// scanning and never loaded: it stays rejected.
			scanned := noTo()
			scanned.Envelope.Issues = scanned.Issues
			if p := New(o).Map("k", []*sources.Message{scanned}, nil); p.Valid() {
				t.Errorf("a record rejected while scanning was imported")
			}
			// A message with recipients keeps them.
			p = New(o).Map("k", []*sources.Message{message("has", "s", 1, nil)}, nil)
			if to := p.Events[0].Event.Message.To; len(to) != 1 || to[0].Email != "to@example.com" || hasIssue(p, RuleDefaultRecipient) {
				t.Errorf("a message with a recipient: to %+v, issues %v", to, p.Issues)
			}
		})
	}
}

// plainAddress is a shortcut for net/mail: what it takes, net/mail takes
// unchanged.
func FuzzPlainAddress(f *testing.F) {
	for _, s := range []string{"a@b", "a.b+c@example.com", "a..b@x", ".a@x", "a@x.", "a@b@c", "a b@x", "_@-", "A=B@x-y.z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !plainAddress(s) {
			return
		}
		a, err := mail.ParseAddress(s)
		if err != nil || a.Address != s {
			t.Fatalf("plainAddress(%q) but net/mail gives %v, %v", s, a, err)
		}
	})
}
