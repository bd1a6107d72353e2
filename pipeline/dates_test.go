package pipeline

import (
	"context"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// TestNearFutureDateIsPostedAsTheRequestTime: one reply of a thread is
// dated 12 hours after the run (sender clock skew). validate warns
// (date-in-future-clamped) and counts the thread valid; import posts the
// reply with created_at = the time of the request, and the thread's 2024
// messages with it, in order. The fake refuses a created_at in the future
// as the API does, by the same fixed clock. Before, validate passed it and
// import got a 422 for the whole thread.
func TestNearFutureDateIsPostedAsTheRequestTime(t *testing.T) {
	clock := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	path := filepath.Join(t.TempDir(), "a.mbox")
	ahead := clock.Add(12 * time.Hour).Format(time.RFC1123Z)
	farAhead := clock.Add(25 * time.Hour).Format(time.RFC1123Z)
	writeMbox(t, path,
		mboxMsg("t1", "", 1, "one"),
		"From a@example.com Mon Mar  4 09:00:00 2024\nFrom: b@example.com\nTo: a@example.com\nSubject: [#5] re\nDate: "+ahead+"\nMessage-ID: <t1-skewed>\nIn-Reply-To: <t1>\n\nskewed\n",
		mboxMsg("t1r", "t1", 3, "two"),
		"From a@example.com Mon Mar  4 09:00:00 2024\nFrom: b@example.com\nTo: a@example.com\nSubject: [#5] re\nDate: "+farAhead+"\nMessage-ID: <t1-far>\nIn-Reply-To: <t1>\n\ntoo far\n",
	)
	opts := testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
	opts.Now = now
	opts.Read.Now = now
	opts.Mapper = mapping.New(mapping.Options{Ticket: opts.Mapper.Options().Ticket, Now: now})

	rep, err := Validate(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	rules := map[string]string{}
	for _, is := range rep.Issues {
		rules[is.MessageKey+" "+is.Rule] = is.Severity
	}
	if rules["t1-skewed "+mapping.RuleDateClamped] != "warning" || rules["t1-far date-out-of-range"] != "error" {
		t.Errorf("validate issues %v, want a %s warning for t1-skewed and date-out-of-range for t1-far", rules, mapping.RuleDateClamped)
	}
	if rep.ValidThreads != 1 || rep.ImportableMsgs != 3 {
		t.Errorf("validate: %d valid threads, %d importable messages; want 1 and 3", rep.ValidThreads, rep.ImportableMsgs)
	}

	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true, Now: now})
	sum, err := Import(context.Background(), newClient(t, srv), newStore(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Failed != 0 || sum.Imported != 1 || sum.EventsImported != 3 {
		t.Fatalf("import: failed %d imported %d events %d; want 0, 1, 3", sum.Failed, sum.Imported, sum.EventsImported)
	}
	convs := srv.SideConversations(5)
	if len(convs) != 1 {
		t.Fatalf("%d side conversations, want 1", len(convs))
	}
	var order []string
	for _, e := range convs[0].Events {
		k := e.Message.ExternalIDs["threadlift_message_key"]
		order = append(order, k)
		if k == "t1-skewed" && !e.CreatedAt.Equal(clock) {
			t.Errorf("the skewed reply was posted at %s, want the time of the request %s", e.CreatedAt, clock)
		}
	}
	if want := []string{"t1", "t1r", "t1-skewed"}; len(order) != 3 || order[0] != want[0] || order[1] != want[1] || order[2] != want[2] {
		t.Errorf("events %v, want %v", order, want)
	}
	assertExactlyOnce(t, srv.Fake, 3)
}
