package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// csvOptions are testOptions for csv sources.
func csvOptions(rules mapping.TicketRules, srcs ...Source) Options {
	o := testOptions("", rules)
	o.Sources = srcs
	return o
}

const csvHeader = "thread_id,message_id,ticket_id,created_at,from,to,subject,body\n"

// TestTwoExportsNumberedAlikeStayApart: two csv exports both number
// their conversations and messages from 1 on. With a thread_key_prefix
// each, both conversations land on the ticket whole: before, the second
// export's messages were duplicates of the first's and were never posted.
func TestTwoExportsNumberedAlikeStayApart(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, filepath.Join(dir, "crm-2019.csv"), csvHeader+
		"1,1,7,2024-01-01 10:00:00,a@example.com,b@example.com,old crm,first\n"+
		"1,2,7,2024-01-01 11:00:00,b@example.com,a@example.com,,second\n")
	b := writeFile(t, filepath.Join(dir, "crm-2021.csv"), csvHeader+
		"1,1,7,2024-02-01 10:00:00,c@example.com,d@example.com,new crm,third\n"+
		"1,2,7,2024-02-01 11:00:00,d@example.com,c@example.com,,fourth\n")
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	opts := csvOptions(mapping.TicketRules{},
		Source{Type: "csv", Path: a, Name: "crm-2019.csv", ThreadKeyPrefix: "crm-2019:"},
		Source{Type: "csv", Path: b, Name: "crm-2021.csv", ThreadKeyPrefix: "crm-2021:"})
	sum, err := Import(context.Background(), newClient(t, srv), newStore(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Imported != 2 || sum.Rejected != 0 || sum.EventsImported != 4 {
		t.Errorf("imported %d threads, %d events, %d rejected; want 2, 4, 0", sum.Imported, sum.EventsImported, sum.Rejected)
	}
	keys := map[string]int{}
	for _, c := range srv.SideConversations(7) {
		keys[c.SideConversation.ExternalIDs["threadlift_thread_key"]] = len(c.Events)
	}
	if keys["crm-2019:1"] != 2 || keys["crm-2021:1"] != 2 {
		t.Errorf("ticket 7 holds %v, want crm-2019:1 and crm-2021:1 with 2 events each", keys)
	}
	assertExactlyOnce(t, srv.Fake, 4)
}

// TestInvalidTicketIDIsNotPostedToTheDefault: with default_ticket_id set,
// a thread whose ticket_id is present but not a ticket id is rejected,
// listed by failures with its value, and nothing lands on the default
// ticket.
func TestInvalidTicketIDIsNotPostedToTheDefault(t *testing.T) {
	dir := t.TempDir()
	var rows strings.Builder
	rows.WriteString(csvHeader)
	for i, v := range []string{"99999999999999999999", "1e400", "-5", "101.7", "12abc"} {
		rows.WriteString(strings.Join([]string{string(rune('a' + i)), "m" + string(rune('a'+i)), v, "2024-01-01 10:00:00", "a@example.com", "b@example.com", "s", "body"}, ",") + "\n")
	}
	rows.WriteString("ok,mok,7,2024-01-01 10:00:00,a@example.com,b@example.com,s,body\n")
	p := writeFile(t, filepath.Join(dir, "m.csv"), rows.String())
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	store := newStore(t)
	sum, err := Import(context.Background(), newClient(t, srv), store, csvOptions(mapping.TicketRules{DefaultTicketID: 5}, Source{Type: "csv", Path: p, Name: "m.csv"}))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(srv.SideConversations(5)); n != 0 {
		t.Errorf("the default ticket got %d side conversations, want 0", n)
	}
	if sum.Imported != 1 || sum.Rejected != 5 {
		t.Errorf("imported %d rejected %d, want 1 and 5", sum.Imported, sum.Rejected)
	}
	fs, err := store.Failures(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range fs {
		if f.State == checkpoint.Rejected && f.Rule == mapping.RuleInvalidTicketID {
			n++
		}
	}
	if n != 5 {
		t.Errorf("failures list %d %s threads, want 5: %+v", n, mapping.RuleInvalidTicketID, fs)
	}
}
