package mapping

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/threadlift/threadlift/sources"
)

// record is a csv/json message of thread "t" with a ticket_id value.
func record(id, ticketRef string, line int) *sources.Message {
	m := message(id, "hi", line, nil)
	m.ThreadID = "t"
	m.Loc = sources.Location{File: "a.csv", Line: line}
	m.TicketRef = ticketRef
	return m
}

// TestInvalidTicketIDsNeverFallBack: a ticket reference that a rule
// finds but that is not a valid ticket (not a positive whole number that
// fits, not in lookup_csv) rejects the thread with a reason naming the
// value; it is never posted to default_ticket_id. Two records of a thread
// naming different tickets reject it as ticket-conflict.
func TestInvalidTicketIDsNeverFallBack(t *testing.T) {
	def := TicketRules{DefaultTicketID: 5}
	withHeader := TicketRules{Header: "X-Ticket", DefaultTicketID: 5}
	hdr := func(v ...string) *sources.Message { return message("a", "hi", 1, map[string][]string{"X-Ticket": v}) }
	tests := []struct {
		name   string
		rules  TicketRules
		msgs   []*sources.Message
		want   int64
		rule   string
		reason []string
	}{
		{"too large", def, []*sources.Message{record("a", "99999999999999999999", 2)}, 0, RuleInvalidTicketID, []string{`"99999999999999999999"`, "a.csv:2"}},
		{"exponent", def, []*sources.Message{record("a", "1e400", 2)}, 0, RuleInvalidTicketID, []string{`"1e400"`}},
		{"negative", def, []*sources.Message{record("a", "-5", 2)}, 0, RuleInvalidTicketID, []string{`"-5"`}},
		{"fraction", def, []*sources.Message{record("a", "101.7", 2)}, 0, RuleInvalidTicketID, []string{`"101.7"`}},
		{"trailing letters", def, []*sources.Message{record("a", "12abc", 2)}, 0, RuleInvalidTicketID, []string{`"12abc"`}},
		{"zero", def, []*sources.Message{record("a", "0", 2)}, 0, RuleInvalidTicketID, []string{`"0"`}},
		{"plus sign", def, []*sources.Message{record("a", "+7", 2)}, 0, RuleInvalidTicketID, []string{`"+7"`}},
		{"one bad record among good ones", def, []*sources.Message{record("a", "7", 2), record("b", "7x", 3)}, 0, RuleInvalidTicketID, []string{`"7x"`, "a.csv:3"}},
		{"valid", def, []*sources.Message{record("a", " 7 ", 2), record("b", "", 3)}, 7, "", nil},
		{"largest id", def, []*sources.Message{record("a", "9223372036854775807", 2)}, 9223372036854775807, "", nil},
		{"conflict", def, []*sources.Message{record("a", "7", 2), record("b", "8", 3)}, 0, RuleTicketConflict, []string{"7", "8", "a.csv:2", "a.csv:3"}},
		{"same ticket twice", def, []*sources.Message{record("a", "7", 2), record("b", "007", 3)}, 7, "", nil},
		{"lookup miss", TicketRules{Lookup: map[string]int64{"X": 9}, DefaultTicketID: 5}, []*sources.Message{record("a", "Y", 2)}, 0, RuleInvalidTicketID, []string{`"Y"`, "lookup_csv"}},
		{"lookup conflict", TicketRules{Lookup: map[string]int64{"X": 9, "Y": 10}, DefaultTicketID: 5}, []*sources.Message{record("a", "X", 2), record("b", "Y", 3)}, 0, RuleTicketConflict, []string{"9", "10"}},
		{"lookup same ticket", TicketRules{Lookup: map[string]int64{"X": 9, "Y": 9}}, []*sources.Message{record("a", "X", 2), record("b", "Y", 3)}, 9, "", nil},
		{"bad header", withHeader, []*sources.Message{hdr("12abc")}, 0, RuleInvalidTicketID, []string{`"12abc"`, "X-Ticket"}},
		{"header conflict", withHeader, []*sources.Message{hdr("12", "13")}, 0, RuleTicketConflict, []string{"12", "13"}},
		{"bad subject capture", TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\S+)\]`), DefaultTicketID: 5},
			[]*sources.Message{message("a", "[#-5] hi", 1, nil)}, 0, RuleInvalidTicketID, []string{`"-5"`, "subject_regex"}},
		{"no rule yields: default", withHeader, []*sources.Message{message("a", "hi", 1, nil)}, 5, "", nil},
		{"an empty header yields nothing", withHeader, []*sources.Message{hdr(" ")}, 5, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New(Options{Ticket: tt.rules, Now: func() time.Time { return now }}).Map("t", tt.msgs, nil)
			if p.TicketID != tt.want || p.Rule != tt.rule {
				t.Fatalf("Map(%s) = ticket %d rule %q (%s), want ticket %d rule %q", tt.name, p.TicketID, p.Rule, p.Reason, tt.want, tt.rule)
			}
			for _, w := range tt.reason {
				if !strings.Contains(p.Reason, w) {
					t.Errorf("Map(%s).Reason = %q, want it to name %s", tt.name, p.Reason, w)
				}
			}
		})
	}
}
