package zendesktest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/threadlift/threadlift/zendesk"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

var fixedNow = time.Date(2025, 6, 1, 12, 0, 30, 0, time.UTC)

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

func send(t *testing.T, srv *zendesktest.Server, method, path, body string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, b}
}

const (
	okEvent = `{"created_at":"2024-01-02T03:04:05Z","message":{"subject":"s","body":"b","from":{"email":"a@example.com"},"to":[{"email":"b@example.com","name":"B"}],"external_ids":{"threadlift_message_key":"m1"}}}`
	okSC    = `{"subject":"Printer","state":"closed","external_ids":{"threadlift_thread_key":"t1"}}`
)

func importBody(sc string, events ...string) string {
	return fmt.Sprintf(`{"side_conversation":%s,"events":[%s]}`, sc, strings.Join(events, ","))
}

func eventTo(to string) string {
	return `{"created_at":"2024-01-02T03:04:05Z","message":{"body":"b","to":` + to + `}}`
}

func recipients(n, agents int) string {
	var ps []string
	for i := range n {
		if i < agents {
			ps = append(ps, fmt.Sprintf(`{"user_id":%d}`, i+1))
		} else {
			ps = append(ps, fmt.Sprintf(`{"email":"r%d@example.com"}`, i))
		}
	}
	return "[" + strings.Join(ps, ",") + "]"
}

func TestImportValidation(t *testing.T) {
	for _, tc := range []struct {
		name      string
		body      string
		status    int
		detailKey string
	}{
		{"valid", importBody(okSC, okEvent), 201, ""},
		{"valid without state", importBody(`{"subject":"x"}`, okEvent), 201, ""},
		{"malformed json", `{"side_conversation":`, 400, ""},
		{"not an object", `[1,2]`, 400, ""},
		{"trailing data", importBody(okSC, okEvent) + `{}`, 400, ""},
		{"no side_conversation", `{"events":[` + okEvent + `]}`, 422, "side_conversation"},
		{"subject missing", importBody(`{"state":"open"}`, okEvent), 422, "side_conversation.subject"},
		{"subject empty", importBody(`{"subject":""}`, okEvent), 422, "side_conversation.subject"},
		{"subject blank", importBody(`{"subject":"  "}`, okEvent), 422, "side_conversation.subject"},
		{"subject not a string", importBody(`{"subject":5}`, okEvent), 422, "side_conversation.subject"},
		{"bad state", importBody(`{"subject":"x","state":"pending"}`, okEvent), 422, "side_conversation.state"},
		{"sc external_ids number", importBody(`{"subject":"x","external_ids":{"k":1}}`, okEvent), 422, "side_conversation.external_ids"},
		{"sc external_ids not object", importBody(`{"subject":"x","external_ids":"k"}`, okEvent), 422, "side_conversation.external_ids"},
		{"events missing", `{"side_conversation":` + okSC + `}`, 422, "events"},
		{"events empty", importBody(okSC), 422, "events"},
		{"events not array", `{"side_conversation":` + okSC + `,"events":{}}`, 422, "events"},
		{"message missing", importBody(okSC, `{"created_at":"2024-01-02T03:04:05Z"}`), 422, "events[0].message"},
		{"to missing", importBody(okSC, `{"created_at":"2024-01-02T03:04:05Z","message":{"body":"b"}}`), 422, "events[0].message.to"},
		{"to empty", importBody(okSC, eventTo(`[]`)), 422, "events[0].message.to"},
		{"created_at missing", importBody(okSC, `{"message":{"to":[{"user_id":1}]}}`), 422, "events[0].created_at"},
		{"created_at bad format", importBody(okSC, `{"created_at":"yesterday","message":{"to":[{"user_id":1}]}}`), 422, "events[0].created_at"},
		{"created_at number", importBody(okSC, `{"created_at":1700000000,"message":{"to":[{"user_id":1}]}}`), 422, "events[0].created_at"},
		{"created_at before 1970", importBody(okSC, `{"created_at":"1969-12-31T23:59:59Z","message":{"to":[{"user_id":1}]}}`), 422, "events[0].created_at"},
		{"created_at at the epoch", importBody(okSC, `{"created_at":"1970-01-01T00:00:00Z","message":{"body":"b","to":[{"user_id":1}]}}`), 201, ""},
		{"created_at in the future", importBody(okSC, `{"created_at":"2025-06-01T12:00:31Z","message":{"to":[{"user_id":1}]}}`), 422, "events[0].created_at"},
		{"created_at now", importBody(okSC, `{"created_at":"2025-06-01T14:00:30+02:00","message":{"body":"b","to":[{"user_id":1}]}}`), 201, ""},
		{"body missing", importBody(okSC, `{"created_at":"2024-01-02T03:04:05Z","message":{"to":[{"user_id":1}]}}`), 422, "events[0].message.body"},
		{"body blank", importBody(okSC, `{"created_at":"2024-01-02T03:04:05Z","message":{"body":" \n","html_body":"<p>x</p>","to":[{"user_id":1}]}}`), 422, "events[0].message.body"},
		{"second event invalid", importBody(okSC, okEvent, eventTo(`[]`)), 422, "events[1].message.to"},
		{"user_id", importBody(okSC, eventTo(`[{"user_id":12}]`)), 201, ""},
		{"user_id not a number", importBody(okSC, eventTo(`[{"user_id":"12"}]`)), 422, "events[0].message.to[0]"},
		{"user_id with email", importBody(okSC, eventTo(`[{"user_id":12,"email":"a@example.com"}]`)), 422, "events[0].message.to[0]"},
		{"name only", importBody(okSC, eventTo(`[{"name":"Bob"}]`)), 422, "events[0].message.to[0]"},
		{"bad email", importBody(okSC, eventTo(`[{"email":"not an address"}]`)), 422, "events[0].message.to[0]"},
		{"empty participant", importBody(okSC, eventTo(`[{}]`)), 422, "events[0].message.to[0]"},
		{"participant not object", importBody(okSC, eventTo(`["a@example.com"]`)), 422, "events[0].message.to[0]"},
		{"slack", importBody(okSC, eventTo(`[{"slack_workspace_id":"T1","slack_channel_id":"C1"}]`)), 201, ""},
		{"slack without channel", importBody(okSC, eventTo(`[{"slack_workspace_id":"T1"}]`)), 422, "events[0].message.to[0]"},
		{"child ticket numeric group", importBody(okSC, eventTo(`[{"support_group_id":123,"support_agent_id":456}]`)), 201, ""},
		{"child ticket agent only", importBody(okSC, eventTo(`[{"support_agent_id":456}]`)), 422, "events[0].message.to[0]"},
		{"teams", importBody(okSC, eventTo(`[{"msteams_channel_id":"19:abc@thread.tacv2"}]`)), 201, ""},
		{"mixed in one participant", importBody(okSC, eventTo(`[{"email":"a@example.com","slack_channel_id":"C1"}]`)), 422, "events[0].message.to[0]"},
		{"mixed across to", importBody(okSC, eventTo(`[{"email":"a@example.com"},{"msteams_channel_id":"19:x"}]`)), 422, "events[0].message"},
		{"mixed from and to", importBody(okSC, `{"created_at":"2024-01-02T03:04:05Z","message":{"from":{"support_group_id":"1"},"to":[{"email":"a@example.com"}]}}`), 422, "events[0].message"},
		{"100 recipients", importBody(okSC, eventTo(recipients(100, 52))), 201, ""},
		{"101 recipients", importBody(okSC, eventTo(recipients(101, 60))), 422, "events[0].message.to"},
		{"48 non-agents", importBody(okSC, eventTo(recipients(48, 0))), 201, ""},
		{"49 non-agents", importBody(okSC, eventTo(recipients(49, 0))), 422, "events[0].message.to"},
		{"49 non-agents among agents", importBody(okSC, eventTo(recipients(80, 31))), 422, "events[0].message.to"},
		{"message external_ids number", importBody(okSC, `{"created_at":"2024-01-02T03:04:05Z","message":{"to":[{"user_id":1}],"external_ids":{"k":2}}}`), 422, "events[0].message.external_ids"},
		{"message external_ids null value", importBody(okSC, `{"created_at":"2024-01-02T03:04:05Z","message":{"to":[{"user_id":1}],"external_ids":{"k":null}}}`), 422, "events[0].message.external_ids"},
		{"unknown attachment", importBody(okSC, `{"created_at":"2024-01-02T03:04:05Z","message":{"to":[{"user_id":1}],"attachment_ids":["att-nope"]}}`), 422, "events[0].message.attachment_ids"},
		{"body not a string", importBody(okSC, `{"created_at":"2024-01-02T03:04:05Z","message":{"to":[{"user_id":1}],"body":7}}`), 422, "events[0].message.body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true, Now: func() time.Time { return fixedNow }})
			r := send(t, srv, "POST", "/api/v2/tickets/42/side_conversations/import.json", tc.body)
			if r.status != tc.status {
				t.Fatalf("status = %d, want %d; body %s", r.status, tc.status, r.body)
			}
			stored := len(srv.SideConversations(42))
			if (tc.status == 201) != (stored == 1) {
				t.Errorf("stored %d side conversations after a %d", stored, r.status)
			}
			if tc.status == 400 && r.json(t)["error"] == nil {
				t.Errorf("400 without an error: %s", r.body)
			}
			if tc.status != 422 {
				return
			}
			var e struct {
				Error       string
				Description string
				Details     map[string][]struct{ Description string }
			}
			if err := json.Unmarshal(r.body, &e); err != nil {
				t.Fatal(err)
			}
			if e.Error != "RecordInvalid" || e.Description != "Record validation errors" {
				t.Errorf("422 body %s", r.body)
			}
			if d, ok := e.Details[tc.detailKey]; !ok || len(d) == 0 || d[0].Description == "" {
				t.Errorf("details = %s, want key %q with a description", r.body, tc.detailKey)
			}
		})
	}
}

func TestEventsImportValidationAndNotFound(t *testing.T) {
	srv := zendesktest.NewServer(t, zendesktest.Config{})
	srv.AddTicket(1, "")
	srv.AddTicket(2, "")
	r := send(t, srv, "POST", "/api/v2/tickets/1/side_conversations/import", importBody(okSC, okEvent))
	if r.status != 201 {
		t.Fatalf("import = %d %s", r.status, r.body)
	}
	id := r.json(t)["side_conversation"].(map[string]any)["id"].(string)
	for _, tc := range []struct {
		name, path, body string
		status           int
	}{
		{"ok", "/api/v2/tickets/1/side_conversations/" + id + "/events/import", `{"events":[` + okEvent + `]}`, 201},
		{"empty events", "/api/v2/tickets/1/side_conversations/" + id + "/events/import", `{"events":[]}`, 422},
		{"unknown side conversation", "/api/v2/tickets/1/side_conversations/nope/events/import", `{"events":[` + okEvent + `]}`, 404},
		{"other ticket's side conversation", "/api/v2/tickets/2/side_conversations/" + id + "/events/import.json", `{"events":[` + okEvent + `]}`, 404},
		{"unknown ticket", "/api/v2/tickets/3/side_conversations/import", importBody(okSC, okEvent), 404},
		{"unknown ticket get", "/api/v2/tickets/3", "", 404},
	} {
		method := "POST"
		if tc.body == "" {
			method = "GET"
		}
		if r := send(t, srv, method, tc.path, tc.body); r.status != tc.status {
			t.Errorf("%s: status %d, want %d (%s)", tc.name, r.status, tc.status, r.body)
		}
	}
	scs := srv.SideConversations(1)
	if len(scs) != 1 || len(scs[0].Events) != 2 {
		t.Fatalf("ticket 1 holds %+v, want 1 side conversation with 2 events", scs)
	}
	if scs[0].Events[0].Type != "create" || scs[0].Events[1].Type != "reply" {
		t.Errorf("event types %q, %q", scs[0].Events[0].Type, scs[0].Events[1].Type)
	}
	if got := srv.TicketIDs(); !cmp.Equal(got, []int64{1, 2}) {
		t.Errorf("TicketIDs = %v, want [1 2]", got)
	}
}

func TestUnknownKeysWarn(t *testing.T) {
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	body := `{"side_conversation":{"subject":"x","priority":"high"},"events":[{"created_at":"2024-01-02T03:04:05Z","message":{"body":"b","to":[{"email":"a@example.com"}],"cc":[{"email":"c@example.com"}]}}]}`
	r := send(t, srv, "POST", "/api/v2/tickets/1/side_conversations/import", body)
	if r.status != 201 {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	w := r.header.Get("X-Zendesk-API-Warn")
	if !strings.Contains(w, "side_conversation.priority") || !strings.Contains(w, "events[0].message.cc") {
		t.Errorf("X-Zendesk-API-Warn = %q, want the dropped keys", w)
	}
}

func TestHeadersAndAuth(t *testing.T) {
	srv := zendesktest.NewServer(t, zendesktest.Config{Email: "e@example.com", Token: "tok", AutoCreateTickets: true})
	r := send(t, srv, "GET", "/api/v2/tickets/1", "")
	if r.status != 401 || string(r.body) != `{"error":"Couldn't authenticate you"}`+"\n" {
		t.Errorf("unauthenticated: %d %s", r.status, r.body)
	}
	ids := map[string]bool{}
	c, err := zendesk.New(srv.ClientOptions())
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if _, err := c.GetTicket(t.Context(), 1); err != nil {
			t.Fatal(err)
		}
	}
	for _, rq := range srv.Requests() {
		if rq.RequestID == "" || ids[rq.RequestID] {
			t.Errorf("request id %q missing or repeated", rq.RequestID)
		}
		ids[rq.RequestID] = true
	}
	req, _ := http.NewRequest("GET", srv.URL+"/api/v2/tickets/1.json", nil)
	req.SetBasicAuth("e@example.com/token", "tok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Rate-Limit") == "" || resp.Header.Get("X-Rate-Limit-Remaining") == "" || resp.Header.Get("X-Zendesk-Request-Id") == "" {
		t.Errorf("GET ticket: %d, headers %v", resp.StatusCode, resp.Header)
	}
	if n := srv.RequestCount("ticket"); n != 22 {
		t.Errorf("RequestCount(ticket) = %d, want 22", n)
	}
}

func TestRateLimit(t *testing.T) {
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true, RequestsPerMinute: 3, Now: func() time.Time { return fixedNow }})
	for i := range 3 {
		r := send(t, srv, "GET", "/api/v2/tickets/1", "")
		if r.status != 200 || r.header.Get("X-Rate-Limit") != "3" || r.header.Get("X-Rate-Limit-Remaining") != fmt.Sprint(2-i) {
			t.Fatalf("request %d: %d, limit %q remaining %q", i, r.status, r.header.Get("X-Rate-Limit"), r.header.Get("X-Rate-Limit-Remaining"))
		}
	}
	r := send(t, srv, "GET", "/api/v2/tickets/1", "")
	if r.status != 429 || r.header.Get("Retry-After") != "30" || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Errorf("4th request: %d, Retry-After %q, Content-Type %q", r.status, r.header.Get("Retry-After"), r.header.Get("Content-Type"))
	}
}

func TestListPagination(t *testing.T) {
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	for range 5 {
		if r := send(t, srv, "POST", "/api/v2/tickets/1/side_conversations/import", importBody(okSC, okEvent)); r.status != 201 {
			t.Fatal(r.status)
		}
	}
	r := send(t, srv, "GET", "/api/v2/tickets/1/side_conversations?per_page=2&include=events", "")
	var lr zendesk.ListResponse
	if err := json.Unmarshal(r.body, &lr); err != nil {
		t.Fatal(err)
	}
	if len(lr.SideConversations) != 2 || len(lr.Events) != 2 || lr.Count != 5 || lr.NextPage == nil || lr.PreviousPage != nil {
		t.Fatalf("page 1 = %s", r.body)
	}
	if !strings.HasPrefix(*lr.NextPage, srv.URL+"/api/v2/tickets/1/side_conversations.json?") || !strings.Contains(*lr.NextPage, "page=2") || !strings.Contains(*lr.NextPage, "include=events") {
		t.Errorf("next_page = %q, want an absolute URL for page 2", *lr.NextPage)
	}
	r = send(t, srv, "GET", "/api/v2/tickets/1/side_conversations?per_page=500&page=1", "")
	lr = zendesk.ListResponse{}
	_ = json.Unmarshal(r.body, &lr)
	if len(lr.SideConversations) != 5 || lr.NextPage != nil || lr.Events != nil {
		t.Errorf("per_page=500 without include: %s", r.body)
	}
}

// TestCommitThenDrop: the write lands although the client sees only a
// broken connection, which it must classify as outcome unknown.
func TestCommitThenDrop(t *testing.T) {
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	srv.SetHook(func(r *http.Request) zendesktest.Fault {
		if strings.HasSuffix(r.URL.Path, "/import") {
			return zendesktest.FaultCommitThenDrop
		}
		return zendesktest.FaultNone
	})
	c, err := zendesk.New(srv.ClientOptions())
	if err != nil {
		t.Fatal(err)
	}
	req := &zendesk.ImportRequest{
		SideConversation: zendesk.ImportSideConversation{Subject: "s", ExternalIDs: map[string]string{zendesk.ThreadKeyField: "key-1"}},
		Events: []zendesk.ImportEvent{{CreatedAt: time.Now().Add(-time.Hour), Message: zendesk.Message{
			Body: "b", To: []zendesk.Participant{{Email: "a@example.com"}}}}},
	}
	_, err = c.Import(t.Context(), 3, req)
	if err == nil || !zendesk.OutcomeUnknown(err) {
		t.Fatalf("Import = %v, want an error with OutcomeUnknown", err)
	}
	if retry, _ := zendesk.Retryable(err); !retry {
		t.Errorf("Retryable(%v) = false", err)
	}
	scs, _, err := c.ListSideConversations(t.Context(), 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(scs) != 1 || scs[0].ExternalIDs[zendesk.ThreadKeyField] != "key-1" {
		t.Errorf("after commit-then-drop the ticket holds %+v, want the thread", scs)
	}
	if got := srv.Requests()[0].Fault; got != zendesktest.FaultCommitThenDrop {
		t.Errorf("Requests()[0].Fault = %v", got)
	}
}

func TestFaultProbabilitiesAreSeeded(t *testing.T) {
	run := func(seed int64) []int {
		srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
		srv.SetFaults(zendesktest.Faults{P500: 0.3, P502: 0.2, Seed: seed})
		var st []int
		for range 40 {
			st = append(st, send(t, srv, "GET", "/api/v2/tickets/1", "").status)
		}
		return st
	}
	a, b := run(7), run(7)
	if !cmp.Equal(a, b) {
		t.Errorf("same seed, different faults:\n%v\n%v", a, b)
	}
	counts := map[int]int{}
	for _, s := range a {
		counts[s]++
	}
	if counts[500] == 0 || counts[502] == 0 || counts[200] == 0 {
		t.Errorf("statuses %v, want a mix of 200, 500, 502", counts)
	}
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	srv.SetFaults(zendesktest.Faults{P500: 1, WritesOnly: true})
	if r := send(t, srv, "GET", "/api/v2/tickets/1", ""); r.status != 200 {
		t.Errorf("WritesOnly: GET got %d", r.status)
	}
	if r := send(t, srv, "POST", "/api/v2/tickets/1/side_conversations/import", importBody(okSC, okEvent)); r.status != 500 {
		t.Errorf("WritesOnly: POST got %d", r.status)
	}
}

func TestConflictOnConcurrentWrites(t *testing.T) {
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true, ConflictOnConcurrentWrites: true, Latency: 200 * time.Millisecond})
	c, _ := zendesk.New(srv.ClientOptions())
	req := &zendesk.ImportRequest{
		SideConversation: zendesk.ImportSideConversation{Subject: "s"},
		Events: []zendesk.ImportEvent{{CreatedAt: time.Now().Add(-time.Hour), Message: zendesk.Message{
			Body: "b", To: []zendesk.Participant{{UserID: 1}}}}},
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() { _, errs[i] = c.Import(t.Context(), 1, req) })
	}
	wg.Wait()
	conflicts := 0
	for _, err := range errs {
		if zendesk.IsStatus(err, 409) {
			conflicts++
		} else if err != nil {
			t.Errorf("Import: %v", err)
		}
	}
	if conflicts != 1 || srv.Conflicts() != 1 || len(srv.SideConversations(1)) != 1 {
		t.Errorf("conflicts %d (fake %d), stored %d; want 1, 1, 1", conflicts, srv.Conflicts(), len(srv.SideConversations(1)))
	}
}

func TestLimits(t *testing.T) {
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true, MaxEventsPerRequest: 1, MaxBodyBytes: 2000})
	if r := send(t, srv, "POST", "/api/v2/tickets/1/side_conversations/import", importBody(okSC, okEvent, okEvent)); r.status != 413 {
		t.Errorf("2 events with MaxEventsPerRequest 1: %d", r.status)
	}
	big := strings.Replace(okEvent, `"body":"b"`, `"body":"`+strings.Repeat("x", 3000)+`"`, 1)
	if r := send(t, srv, "POST", "/api/v2/tickets/1/side_conversations/import", importBody(okSC, big)); r.status != 413 {
		t.Errorf("body over MaxBodyBytes: %d", r.status)
	}
	if r := send(t, srv, "POST", "/api/v2/tickets/side_conversations/attachments", "{}"); r.status != 400 {
		t.Errorf("non-multipart upload: %d", r.status)
	}
}

func TestOtherEndpoints(t *testing.T) {
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	r := send(t, srv, "POST", "/api/v2/tickets/5/side_conversations", `{"message":{"subject":"Hi","body":"b","to":[{"email":"x@example.com"}]},"external_ids":{"k":"v"}}`)
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	id := r.json(t)["side_conversation"].(map[string]any)["id"].(string)
	if r := send(t, srv, "POST", "/api/v2/tickets/5/side_conversations/"+id+"/reply", `{"message":{"body":"r","to":[{"email":"x@example.com"}]}}`); r.status != 200 {
		t.Errorf("reply: %d %s", r.status, r.body)
	}
	if r := send(t, srv, "PUT", "/api/v2/tickets/5/side_conversations/"+id, `{"side_conversation":{"state":"closed"}}`); r.status != 200 {
		t.Errorf("update: %d %s", r.status, r.body)
	}
	if r := send(t, srv, "PUT", "/api/v2/tickets/5/side_conversations/"+id, `{"side_conversation":{"state":"done"}}`); r.status != 422 {
		t.Errorf("update with a bad state: %d %s", r.status, r.body)
	}
	r = send(t, srv, "GET", "/api/v2/tickets/5/side_conversations/"+id+"?include=events", "")
	var show zendesk.ShowResponse
	if err := json.Unmarshal(r.body, &show); err != nil {
		t.Fatal(err)
	}
	if show.SideConversation.State != "closed" || len(show.Events) != 2 || show.SideConversation.ExternalIDs["k"] != "v" {
		t.Errorf("show: %s", r.body)
	}
	if r := send(t, srv, "GET", "/api/v2/tickets/5/side_conversations/"+id+"/events", ""); r.status != 200 {
		t.Errorf("events: %d", r.status)
	}
	if r := send(t, srv, "GET", "/api/v2/nothing", ""); r.status != 404 {
		t.Errorf("unknown endpoint: %d", r.status)
	}
	dump := srv.Dump()
	if len(dump) != 1 || dump[0].ID != 5 || len(dump[0].SideConversations) != 1 {
		t.Errorf("Dump = %+v", dump)
	}
	b, _ := json.Marshal(dump)
	if !strings.Contains(string(b), `"events":[{`) || !strings.Contains(string(b), `"subject":"Hi"`) {
		t.Errorf("Dump JSON lacks events or subject: %s", b)
	}
}

// TestConcurrentUse is for the race detector.
func TestConcurrentUse(t *testing.T) {
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	c, _ := zendesk.New(srv.ClientOptions())
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 10 {
				req := &zendesk.ImportRequest{
					SideConversation: zendesk.ImportSideConversation{Subject: "s", ExternalIDs: map[string]string{"k": fmt.Sprint(w, i)}},
					Events: []zendesk.ImportEvent{{CreatedAt: time.Now().Add(-time.Hour), Message: zendesk.Message{
						Body: "b", To: []zendesk.Participant{{UserID: 1}}}}},
				}
				if _, err := c.Import(ctx, int64(w%3+1), req); err != nil {
					t.Error(err)
					return
				}
				if _, _, err := c.ListSideConversations(ctx, int64(w%3+1)); err != nil {
					t.Error(err)
					return
				}
				_ = srv.SideConversations(int64(w%3 + 1))
				_ = srv.Dump()
			}
		})
	}
	wg.Wait()
	total := 0
	for _, id := range srv.TicketIDs() {
		total += len(srv.SideConversations(id))
	}
	if total != 80 {
		t.Errorf("stored %d side conversations, want 80", total)
	}
	if err := ctx.Err(); errors.Is(err, context.DeadlineExceeded) {
		t.Error("timed out")
	}
}
