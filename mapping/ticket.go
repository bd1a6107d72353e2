package mapping

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/threadlift/threadlift/sources"
)

// Rules of a thread whose ticket reference cannot be used (issue 11).
const (
	// RuleInvalidTicketID: a rule found a ticket reference that is not a
	// ticket: not a positive whole number that fits in 64 bits, or not
	// in lookup_csv. Never posted to default_ticket_id.
	RuleInvalidTicketID = "invalid-ticket-id"
	// RuleTicketConflict: the thread's messages name different tickets.
	RuleTicketConflict = "ticket-conflict"
)

// ticket finds the thread's parent ticket by the rules in order: the
// records' own ticket_id (csv/json: explicit data), the header, the root
// message's subject_regex capture, then default_ticket_id. The first rule
// that finds a reference decides: every reference it finds must resolve
// (as a ticket id, or through lookup_csv) to one and the same ticket, or
// the thread is rejected (invalid-ticket-id, ticket-conflict) with a
// reason naming the values. A reference that cannot be used never falls
// through to a later rule or the default: that would put the thread on a
// ticket it did not name.
func (m *Mapper) ticket(msgs []*sources.Message) (id int64, rule, reason string) {
	r := m.opts.Ticket
	type ref struct {
		value, from string
		loc         sources.Location
	}
	decide := func(refs []ref) (int64, string, string) {
		var first ref
		for _, f := range refs {
			got, why := r.resolve(f.value)
			if why != "" {
				return 0, RuleInvalidTicketID, fmt.Sprintf("%s %q of the message at %s %s", f.from, clipRef(f.value), f.loc, why)
			}
			switch {
			case id == 0:
				id, first = got, f
			case got != id:
				return 0, RuleTicketConflict, fmt.Sprintf("the thread names two tickets: %s %q of the message at %s is ticket %d, %s %q of the message at %s is ticket %d",
					first.from, clipRef(first.value), first.loc, id, f.from, clipRef(f.value), f.loc, got)
			}
		}
		return id, "", ""
	}

	var refs []ref
	for _, msg := range msgs {
		if v := strings.TrimSpace(msg.TicketRef); v != "" {
			refs = append(refs, ref{v, "ticket_id", msg.Loc})
		}
	}
	if len(refs) == 0 && r.Header != "" {
		for _, msg := range msgs {
			for _, v := range msg.Header[headerKey(r.Header)] {
				if v = strings.TrimSpace(v); v != "" {
					refs = append(refs, ref{v, "header " + r.Header, msg.Loc})
				}
			}
		}
	}
	if len(refs) == 0 && r.SubjectRegex != nil && len(msgs) > 0 {
		if sm := r.SubjectRegex.FindStringSubmatch(msgs[0].Subject); len(sm) > 1 {
			if v := strings.TrimSpace(sm[1]); v != "" {
				refs = append(refs, ref{v, "subject_regex match", msgs[0].Loc})
			}
		}
	}
	if len(refs) > 0 {
		return decide(refs)
	}
	if r.DefaultTicketID > 0 {
		return r.DefaultTicketID, "", ""
	}
	return 0, RuleUnmapped, "no ticket rule matched the thread and default_ticket_id is 0"
}

// resolve turns a reference into a ticket id: through Lookup when it is
// set, else as the id itself. why says what is wrong with it, or "".
func (r TicketRules) resolve(v string) (id int64, why string) {
	if r.Lookup != nil {
		if id, ok := r.Lookup[v]; ok {
			return id, ""
		}
		return 0, "is not in lookup_csv"
	}
	id, ok := ParseTicketID(v)
	if !ok {
		return 0, "is not a ticket id (a whole number from 1 to 9223372036854775807)"
	}
	return id, ""
}

// ParseTicketID parses a ticket id: decimal digits only (no sign, no
// fraction, no exponent), at least 1, fitting in 64 bits.
func ParseTicketID(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil && id > 0
}

// clipRef shortens a reference for a reason.
func clipRef(s string) string {
	if len(s) <= 60 {
		return s
	}
	return strings.ToValidUTF8(s[:60], "") + "…"
}
