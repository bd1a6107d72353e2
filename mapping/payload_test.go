package mapping_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/mbox"
	"github.com/threadlift/threadlift/zendesk"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

var payloadNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// importOne posts one event to the fake and reports whether it was
// accepted; any answer but 201 or 422 fails the test.
func importOne(t *testing.T, c *zendesk.Client, ev zendesk.ImportEvent) (bool, string) {
	t.Helper()
	_, err := c.Import(t.Context(), 1, &zendesk.ImportRequest{
		SideConversation: zendesk.ImportSideConversation{Subject: "s", State: "closed", ExternalIDs: map[string]string{zendesk.ThreadKeyField: "k"}},
		Events:           []zendesk.ImportEvent{ev},
	})
	if err == nil {
		return true, ""
	}
	var ae *zendesk.APIError
	if !errors.As(err, &ae) || ae.Status != 422 {
		t.Fatalf("import: %v, want 201 or 422", err)
	}
	return false, err.Error()
}

func fakeClient(t *testing.T) *zendesk.Client {
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true,
		Now: func() time.Time { return payloadNow.Add(time.Minute) }}) // requests go out after mapping
	c, err := zendesk.New(srv.ClientOptions())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func emails(n int, agents int) []zendesk.Participant {
	var ps []zendesk.Participant
	for i := range n {
		if i < agents {
			ps = append(ps, zendesk.Participant{UserID: int64(100 + i)})
			continue
		}
		ps = append(ps, zendesk.Participant{Email: fmt.Sprintf("p%d@example.com", i)})
	}
	return ps
}

// TestCheckEventMatchesFake runs mapping's payload validation (what
// validate checks) and the fake's (what import meets: the API's rules as
// zendesktest models them) over the same payloads: each accepts exactly
// what the other accepts (issue 12, item 12).
func TestCheckEventMatchesFake(t *testing.T) {
	c := fakeClient(t)
	ok := func(mod func(*zendesk.ImportEvent)) zendesk.ImportEvent {
		ev := zendesk.ImportEvent{CreatedAt: payloadNow.Add(-time.Hour), Message: zendesk.Message{
			Subject: "s", Body: "b", From: &zendesk.Participant{Email: "a@example.com"},
			To: []zendesk.Participant{{Email: "b@example.com"}}, ExternalIDs: map[string]string{zendesk.MessageKeyField: "m"}}}
		if mod != nil {
			mod(&ev)
		}
		return ev
	}
	fixtures := map[string]zendesk.ImportEvent{
		"valid":              ok(nil),
		"empty body":         ok(func(e *zendesk.ImportEvent) { e.Message.Body = "" }),
		"white-space body":   ok(func(e *zendesk.ImportEvent) { e.Message.Body = "\n \r\n\t" }),
		"html only":          ok(func(e *zendesk.ImportEvent) { e.Message.Body, e.Message.HTMLBody = "", "<p>x</p>" }),
		"empty message body": ok(func(e *zendesk.ImportEvent) { e.Message.Body = mapping.EmptyBody }),
		"no recipient":       ok(func(e *zendesk.ImportEvent) { e.Message.To = nil }),
		"100 recipients":     ok(func(e *zendesk.ImportEvent) { e.Message.To = emails(100, 52) }),
		"101 recipients":     ok(func(e *zendesk.ImportEvent) { e.Message.To = emails(101, 60) }),
		"48 non-agents":      ok(func(e *zendesk.ImportEvent) { e.Message.To = emails(48, 0) }),
		"49 non-agents":      ok(func(e *zendesk.ImportEvent) { e.Message.To = emails(49, 0) }),
		"49 with 2 agents":   ok(func(e *zendesk.ImportEvent) { e.Message.To = emails(49, 2) }),
		"slack recipients": ok(func(e *zendesk.ImportEvent) {
			e.Message.From = nil
			e.Message.To = []zendesk.Participant{{SlackWorkspaceID: "T", SlackChannelID: "C"}}
		}),
		"mixed types": ok(func(e *zendesk.ImportEvent) {
			e.Message.To = append(e.Message.To, zendesk.Participant{SlackWorkspaceID: "T", SlackChannelID: "C"})
		}),
		"slack without channel": ok(func(e *zendesk.ImportEvent) {
			e.Message.From = nil
			e.Message.To = []zendesk.Participant{{SlackWorkspaceID: "T"}}
		}),
		"invalid email":  ok(func(e *zendesk.ImportEvent) { e.Message.To = []zendesk.Participant{{Email: "not an address"}} }),
		"invalid sender": ok(func(e *zendesk.ImportEvent) { e.Message.From = &zendesk.Participant{Email: "a@"} }),
		"name with email": ok(func(e *zendesk.ImportEvent) {
			e.Message.To = []zendesk.Participant{{Email: "b@example.com", Name: "B"}}
		}),
		"empty participant":       ok(func(e *zendesk.ImportEvent) { e.Message.To = []zendesk.Participant{{}} }),
		"before 1970":             ok(func(e *zendesk.ImportEvent) { e.CreatedAt = time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC) }),
		"at the epoch":            ok(func(e *zendesk.ImportEvent) { e.CreatedAt = time.Unix(0, 0) }),
		"in the future":           ok(func(e *zendesk.ImportEvent) { e.CreatedAt = payloadNow.Add(2 * time.Hour) }),
		"a day in the future":     ok(func(e *zendesk.ImportEvent) { e.CreatedAt = payloadNow.Add(25 * time.Hour) }),
		"no subject on a message": ok(func(e *zendesk.ImportEvent) { e.Message.Subject = "" }),
	}
	for name, ev := range fixtures {
		t.Run(name, func(t *testing.T) {
			issues := mapping.CheckEvent(ev, payloadNow)
			accepted, why := importOne(t, c, ev)
			if accepted != (len(issues) == 0) {
				t.Errorf("CheckEvent = %v; the fake accepted: %v (%s)", issues, accepted, why)
			}
		})
	}
}

// TestValidatePassesWhatImportAccepts maps damaged messages as validate
// and import do and posts every planned request to the fake: whatever
// mapping lets through, the fake accepts (the six empty bodies of issue
// 12 were let through and refused with 422).
func TestValidatePassesWhatImportAccepts(t *testing.T) {
	const head = "From a@example.com Mon Mar  4 09:00:00 2024\nFrom: a@example.com\nTo: b@example.com\nSubject: s\nDate: Mon, 4 Mar 2024 10:00:00 +0000\n"
	mixed := "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
	var many strings.Builder
	for i := range 120 {
		fmt.Fprintf(&many, ", r%d@example.com", i)
	}
	fixtures := []string{
		"Message-ID: <no-text@x>\n" + mixed + "--b\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=a.pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0=\n--b--\n",
		"Message-ID: <unparseable@x>\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n!!!! ****\n",
		"Message-ID: <line-ends@x>\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n=0D=0A=0D=0A\n",
		"Message-ID: <image-html@x>\nContent-Type: text/html\n\n<html><body><img src=\"cid:x\"></body></html>\n",
		"Message-ID: <empty@x>\n\n",
		"Message-ID: <status@x>\n" + mixed + "--b\nContent-Type: message/delivery-status\n\nStatus: 5.0.0\n--b--\n",
		"Message-ID: <many@x>\nCc: c@example.com" + many.String() + "\n\nto a list\n",
	}
	var b strings.Builder
	for _, f := range fixtures {
		b.WriteString(head + f + "\n")
	}
	b.WriteString(strings.Replace(head, "To: b@example.com\n", "", 1) + "Message-ID: <no-to@x>\n\nfrom a pipermail archive\n")
	path := filepath.Join(t.TempDir(), "damaged.mbox")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := mbox.Open(path, sources.Options{Now: func() time.Time { return payloadNow }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c := fakeClient(t)
	m := mapping.New(mapping.Options{Ticket: mapping.TicketRules{DefaultTicketID: 1}, Now: func() time.Time { return payloadNow },
		DefaultRecipient: &sources.Address{Email: "list@example.com"}})
	n := 0
	for {
		env, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, lo := range []sources.LoadOptions{{NoHTMLText: true}, {}} { // validate's load, then import's
			msg, err := sources.LoadWith(r, env, lo)
			if err != nil {
				t.Fatal(err)
			}
			p := m.Map(env.Key(), []*sources.Message{msg}, nil)
			if !p.Valid() {
				t.Errorf("%s: rejected (%s: %s); every fixture can be imported", env.Key(), p.Rule, p.Reason)
				continue
			}
			if accepted, why := importOne(t, c, p.Events[0].Event); !accepted {
				t.Errorf("%s: validate passed it, the fake refused it: %s", env.Key(), why)
			}
		}
		n++
	}
	if n != len(fixtures)+1 {
		t.Errorf("%d messages, want %d", n, len(fixtures)+1)
	}
}
