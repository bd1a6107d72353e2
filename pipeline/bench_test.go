package pipeline

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/threadlift/threadlift/zendesk"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// BenchmarkReconcile measures the lookup that precedes every re-send of a
// write whose outcome is unknown, on a ticket holding n side conversations
// of 3 events each: every page of the ticket's list, events included.
func BenchmarkReconcile(b *testing.B) {
	for _, n := range []int{10, 100, 500} {
		b.Run(fmt.Sprintf("side_conversations=%d", n), func(b *testing.B) {
			srv := zendesktest.NewServer(b, zendesktest.Config{AutoCreateTickets: true})
			client := newClient(b, srv)
			ctx := context.Background()
			for i := 0; i < n; i++ {
				req := &zendesk.ImportRequest{SideConversation: zendesk.ImportSideConversation{
					Subject: "s", ExternalIDs: map[string]string{zendesk.ThreadKeyField: fmt.Sprintf("t%d", i)}}}
				for j := 0; j < 3; j++ {
					req.Events = append(req.Events, zendesk.ImportEvent{CreatedAt: time.Date(2024, 1, 1, j, 0, 0, 0, time.UTC),
						Message: zendesk.Message{Subject: "s", Body: "a body of a typical length, " + fmt.Sprint(i, j),
							To: []zendesk.Participant{{Email: "a@example.com"}}, ExternalIDs: map[string]string{zendesk.MessageKeyField: fmt.Sprint(i, "-", j)}}})
				}
				if _, err := client.Import(ctx, 1, req); err != nil {
					b.Fatal(err)
				}
			}
			im := &importer{opts: Options{MaxAttempts: 3, Logger: zerolog.Nop()}, api: client}
			want := fmt.Sprintf("t%d", n-1)
			before := srv.RequestCount("list")
			b.ResetTimer()
			for b.Loop() {
				convs, err := im.list(ctx, 1)
				if err != nil || len(convs) != n {
					b.Fatalf("list: %d side conversations, %v", len(convs), err)
				}
				if c := convs[n-1]; c.ThreadKey != want || len(c.MessageKeys) != 3 {
					b.Fatalf("list: last side conversation %+v, want %s with 3 messages", c, want)
				}
			}
			b.ReportMetric(float64(srv.RequestCount("list")-before)/float64(b.N), "requests/op")
		})
	}
}
