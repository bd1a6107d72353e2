package zendesk_test

import (
	"fmt"
	"testing"

	"github.com/threadlift/threadlift/zendesk"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

func TestMeReturnsTheAuthenticatedUser(t *testing.T) {
	for _, role := range []string{"", "agent", "end-user"} {
		t.Run("role="+role, func(t *testing.T) {
			srv := newServer(t, zendesktest.Config{Role: role})
			c := newClient(t, srv, nil)
			u, err := c.Me(t.Context())
			if err != nil {
				t.Fatalf("Me: %v", err)
			}
			want := role
			if want == "" {
				want = "admin"
			}
			if u.Email != testEmail || u.Role != want || u.ID == 0 {
				t.Errorf("Me = %+v, want %s with role %s", u, testEmail, want)
			}
			if got, wantAgent := u.IsAgent(), want != "end-user"; got != wantAgent {
				t.Errorf("IsAgent() = %v, want %v", got, wantAgent)
			}
			if st := c.Stats(); st.Requests[zendesk.KindUser] != 1 {
				t.Errorf("Stats().Requests[user] = %d, want 1", st.Requests[zendesk.KindUser])
			}
		})
	}
}

func TestMeWrongTokenIs401(t *testing.T) {
	srv := newServer(t, zendesktest.Config{})
	c := newClient(t, srv, func(o *zendesk.Options) { o.Token = "wrong-token-value" })
	_, err := c.Me(t.Context())
	if !zendesk.IsStatus(err, 401) {
		t.Fatalf("Me with a wrong token = %v, want a 401", err)
	}
}

func TestRateLimitFromHeaders(t *testing.T) {
	srv := newServer(t, zendesktest.Config{RateLimitHeader: 400})
	c := newClient(t, srv, nil)
	if got := c.RateLimit(); got.Limit != 0 {
		t.Errorf("RateLimit() before any response = %+v, want Limit 0", got)
	}
	if _, err := c.Me(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := c.RateLimit(); got.Limit != 400 || got.Remaining != 399 {
		t.Errorf("RateLimit() = %+v, want Limit 400, Remaining 399", got)
	}
}

func TestShowManyTicketsLeavesMissingOut(t *testing.T) {
	srv := zendesktest.NewServer(t, zendesktest.Config{Email: testEmail, Token: testToken})
	for id := int64(1); id <= 150; id += 2 { // odd ids exist
		srv.AddTicket(id, "")
	}
	c := newClient(t, srv, nil)
	var ids []int64
	for id := int64(1); id <= 150; id++ {
		ids = append(ids, id)
	}
	got, err := c.ShowManyTickets(t.Context(), ids)
	if err != nil {
		t.Fatalf("ShowManyTickets: %v", err)
	}
	if len(got) != 75 {
		t.Fatalf("ShowManyTickets = %d tickets, want the 75 that exist", len(got))
	}
	for _, tk := range got {
		if tk.ID%2 == 0 {
			t.Errorf("ShowManyTickets returned ticket %d, which does not exist", tk.ID)
		}
	}
	if n := srv.RequestCount("ticket_show_many"); n != 2 {
		t.Errorf("%d show_many requests for 150 ids, want 2 (at most %d ids each)", n, zendesk.MaxShowMany)
	}
}

func TestNoSideConversationsIs403(t *testing.T) {
	srv := newServer(t, zendesktest.Config{NoSideConversations: true})
	c := newClient(t, srv, nil)
	if _, _, err := c.ListSideConversations(t.Context(), 1); !zendesk.IsStatus(err, 403) {
		t.Errorf("ListSideConversations without the add-on = %v, want 403", err)
	}
	if _, err := c.Import(t.Context(), 1, importReq("k", 1)); !zendesk.IsStatus(err, 403) {
		t.Errorf("Import without the add-on = %v, want 403", err)
	}
	if _, err := c.Me(t.Context()); err != nil {
		t.Errorf("Me without the add-on = %v, want it to work", err)
	}
	srv.SetSideConversations(true)
	if _, _, err := c.ListSideConversations(t.Context(), 1); err != nil {
		t.Errorf("ListSideConversations after SetSideConversations(true) = %v", err)
	}
}

// TestListFindsPlantedSideConversations: planted duplicates, foreign and
// unkeyed side conversations come back through the list endpoint, every
// page, with their events matched by side_conversation_id.
func TestListFindsPlantedSideConversations(t *testing.T) {
	srv := newServer(t, zendesktest.Config{})
	c := newClient(t, srv, nil)
	id := srv.Plant(7, zendesktest.Planted{ThreadKey: "t1", MessageKeys: []string{"m1", "m2"}})
	dup, ok := srv.CopySideConversation(7, id)
	if !ok {
		t.Fatal("CopySideConversation: not found")
	}
	if !srv.AddEvent(7, dup, "") {
		t.Fatal("AddEvent: not found")
	}
	srv.Plant(7, zendesktest.Planted{Subject: "made in the UI", MessageKeys: []string{""}})
	for i := range 120 {
		srv.Plant(7, zendesktest.Planted{ThreadKey: fmt.Sprintf("other-%d", i), MessageKeys: []string{fmt.Sprintf("o%d", i)}})
	}
	scs, evs, err := c.ListSideConversations(t.Context(), 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(scs) != 123 || len(evs) != 2+3+1+120 {
		t.Fatalf("list = %d side conversations, %d events; want 123, 126", len(scs), len(evs))
	}
	perSC := map[string]int{}
	for _, e := range evs {
		perSC[e.SideConversationID]++
	}
	if perSC[id] != 2 || perSC[dup] != 3 {
		t.Errorf("events per side conversation: original %d, copy %d; want 2, 3", perSC[id], perSC[dup])
	}
	if scs[1].ExternalIDs[zendesk.ThreadKeyField] != "t1" || scs[1].ID != dup {
		t.Errorf("second side conversation = %+v, want the copy with key t1", scs[1])
	}
}

func TestLoadRestoresDump(t *testing.T) {
	a := newServer(t, zendesktest.Config{})
	a.Plant(3, zendesktest.Planted{ThreadKey: "t1", MessageKeys: []string{"m1"}})
	b := newServer(t, zendesktest.Config{})
	if err := b.Load(a.Dump()); err != nil {
		t.Fatal(err)
	}
	got, want := b.SideConversations(3), a.SideConversations(3)
	if len(got) != 1 || got[0].ID != want[0].ID || got[0].Events[0].ID != want[0].Events[0].ID {
		t.Errorf("after Load: %+v, want %+v", got, want)
	}
}
