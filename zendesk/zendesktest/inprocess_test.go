package zendesktest_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/threadlift/threadlift/zendesk"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// TestInProcess: a client on InProcessOptions reaches the fake without a
// socket, in virtual time: the fake's latency passes at once, a deadline
// in flight is the context's error, a reset is ErrConnectionReset, and a
// commit whose answer is lost did commit.
func TestInProcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := zendesktest.New(zendesktest.Config{Email: "a@example.com", Token: "s3cr3t-token-value", AutoCreateTickets: true, Latency: 10 * time.Second})
		c, err := zendesk.New(f.InProcessOptions())
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := c.GetTicket(t.Context(), 1); err != nil || time.Since(start) != 10*time.Second {
			t.Fatalf("GetTicket = %v after %v, want the ticket after the fake's 10 s of latency", err, time.Since(start))
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if _, err := c.GetTicket(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("GetTicket past its deadline = %v, want DeadlineExceeded", err)
		}

		req := &zendesk.ImportRequest{SideConversation: zendesk.ImportSideConversation{Subject: "s",
			ExternalIDs: map[string]string{zendesk.ThreadKeyField: "k"}},
			Events: []zendesk.ImportEvent{{CreatedAt: time.Now().Add(-time.Hour), Message: zendesk.Message{
				Body: "b", From: &zendesk.Participant{Email: "a@example.com"}, To: []zendesk.Participant{{Email: "b@example.com"}},
				ExternalIDs: map[string]string{zendesk.MessageKeyField: "m"}}}}}
		for _, tc := range []struct {
			fault     zendesktest.Fault
			committed int
		}{{zendesktest.FaultResetBeforeCommit, 0}, {zendesktest.FaultCommitThenDrop, 1}} {
			f.SetHook(func(*http.Request) zendesktest.Fault { return tc.fault })
			_, err := c.Import(t.Context(), 1, req)
			if !errors.Is(err, zendesktest.ErrConnectionReset) || !zendesk.OutcomeUnknown(err) {
				t.Errorf("Import with %v = %v (is reset %v, outcome unknown %v), want both", tc.fault, err, errors.Is(err, zendesktest.ErrConnectionReset), zendesk.OutcomeUnknown(err))
			}
			if n := len(f.SideConversations(1)); n != tc.committed {
				t.Errorf("after %v the ticket holds %d side conversations, want %d", tc.fault, n, tc.committed)
			}
		}
	})
}
