package mapping_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/sources"
)

// BenchmarkMap maps a 40-message thread (the longest the bench archive
// generates), with quoted text, recipients and one attachment per fifth
// message: the per-thread CPU of validate and import besides decoding.
func BenchmarkMap(b *testing.B) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	body := strings.Repeat("Thanks for the update, the license renewal went through.\n", 30) +
		strings.Repeat("> quoted line of the previous message\n", 20)
	var msgs []*sources.Message
	for i := range 40 {
		env := &sources.Envelope{
			Loc:       sources.Location{File: "bench.mbox", Offset: int64(i) * 4096},
			Size:      4096,
			Seq:       i,
			MessageID: fmt.Sprintf("m%d@example.com", i),
			Subject:   "Re: [#1234] license renewal",
			Date:      time.Date(2024, 5, 1, 9, i, 0, 0, time.UTC),
		}
		if i > 0 {
			env.References = []string{"m0@example.com", fmt.Sprintf("m%d@example.com", i-1)}
		}
		m := &sources.Message{
			Envelope: env,
			From:     sources.Address{Name: "Customer", Email: fmt.Sprintf("c%d@example.com", i%3)},
			HasFrom:  true,
			To:       []sources.Address{{Email: "support@acme.example"}},
			Cc:       []sources.Address{{Name: "Team", Email: "team@acme.example"}},
			Header:   map[string][]string{"X-Zendesk-Ticket-Id": {"1234"}},
			Body:     body,
		}
		if i%5 == 0 {
			m.Attachments = []sources.Attachment{{Name: "log.txt", ContentType: "text/plain", Size: 20000, Part: "2"}}
		}
		msgs = append(msgs, m)
	}
	mp := mapping.New(mapping.Options{
		Ticket: mapping.TicketRules{Header: "X-Zendesk-Ticket-Id", DefaultTicketID: 1},
		Agents: map[string]int64{"support@acme.example": 7},
		Now:    func() time.Time { return now },
	})
	b.ReportAllocs()
	b.SetBytes(int64(len(msgs) * len(body)))
	for b.Loop() {
		p := mp.Map("m0@example.com", msgs, nil)
		if !p.Valid() || len(p.Events) != len(msgs) {
			b.Fatalf("plan: valid %v, %d events, %s", p.Valid(), len(p.Events), p.Reason)
		}
	}
}
