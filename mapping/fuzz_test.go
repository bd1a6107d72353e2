package mapping

import (
	"encoding/binary"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/threadlift/threadlift/sources"
)

// FuzzMap builds threads from arbitrary bytes and checks the mapper's
// invariants: no panic, every message either posted or rejected exactly
// once, posted events valid by the API's rules, chronological.
func FuzzMap(f *testing.F) {
	f.Add([]byte("hello world, [#12] subject"), uint8(3))
	f.Add([]byte{0, 1, 2, 3, 255, 254, 0, 0, 7}, uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, per uint8) {
		if len(data) > 2000 {
			return
		}
		m := New(Options{
			Ticket:              TicketRules{Header: "X-T", SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`), DefaultTicketID: int64(len(data) % 3)},
			Agents:              map[string]int64{"a0@x.example": 5},
			MaxEventsPerRequest: int(per%5) + 1,
			Strict:              len(data)%7 == 0,
			Now:                 func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) },
		})
		var msgs []*sources.Message
		for i := 0; i+4 <= len(data); i += 4 {
			v := binary.LittleEndian.Uint32(data[i:])
			msg := &sources.Message{
				Envelope: &sources.Envelope{
					MessageID: fmt.Sprintf("m%d", v%7), Subject: string(data[i : i+min(len(data)-i, 12)]),
					Date: time.Unix(int64(v)*int64(v%3+1)-int64(v%5)*1e9, 0), Seq: i,
				},
				HasFrom: v%11 != 0, From: sources.Address{Email: fmt.Sprintf("a%d@x.example", v%3)},
				Header: map[string][]string{"X-T": {fmt.Sprint(v % 4)}},
				Body:   string(data[i:]),
			}
			for j := uint32(0); j < v%4; j++ {
				msg.To = append(msg.To, sources.Address{Email: fmt.Sprintf("r%d@x.example", j), SlackChannelID: string(data[i : i+int(v%2)])})
			}
			if v%13 == 0 {
				msg.Issues = []sources.Issue{{Severity: sources.SeverityWarning, Rule: "charset", Reason: "x"}}
			}
			msgs = append(msgs, msg)
		}
		p := m.Map("k", msgs, nil)
		if got := len(p.Events) + len(p.Rejected); got != len(msgs) {
			t.Fatalf("%d events + %d rejected, want %d messages", len(p.Events), len(p.Rejected), len(msgs))
		}
		if p.Valid() != (p.TicketID > 0 && len(p.Events) > 0) {
			t.Fatalf("valid=%v with ticket %d and %d events", p.Valid(), p.TicketID, len(p.Events))
		}
		if p.SideConversation.Subject == "" {
			t.Fatalf("side conversation without a subject")
		}
		for _, e := range p.Events {
			if len(e.Event.Message.To) == 0 || len(e.Event.Message.To) > MaxRecipients {
				t.Fatalf("event %s has %d recipients", e.Key, len(e.Event.Message.To))
			}
			if _, ok := mixedTypes(e.Event.Message); !ok {
				t.Fatalf("event %s mixes participant types", e.Key)
			}
		}
		n := 0
		for _, c := range Chunks(p.Events, m.MaxEventsPerRequest()) {
			n += len(c)
		}
		if n != len(p.Events) {
			t.Fatalf("chunks hold %d of %d events", n, len(p.Events))
		}
	})
}
