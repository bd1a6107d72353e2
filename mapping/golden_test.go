package mapping_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/mapping/thread"
	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/mbox"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenThread is what one thread turns into: the exact requests, in order.
type goldenThread struct {
	ThreadKey string              `json:"thread_key"`
	TicketID  int64               `json:"ticket_id"`
	Requests  []goldenRequest     `json:"requests,omitempty"`
	Rejected  []map[string]string `json:"rejected,omitempty"`
	Issues    []map[string]string `json:"issues,omitempty"`
	Rule      string              `json:"rule,omitempty"`
	Reason    string              `json:"reason,omitempty"`
}

type goldenRequest struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Body   any    `json:"body"`
}

// plans reads an mbox, threads it and maps every thread.
func plans(t *testing.T, path string, m *mapping.Mapper) []*mapping.Plan {
	t.Helper()
	r, err := mbox.Open(path, sources.Options{Name: filepath.Base(path)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var envs []*sources.Envelope
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		envs = append(envs, e)
	}
	items := make([]thread.Item, len(envs))
	for i, e := range envs {
		items[i] = thread.Item{ID: e.MessageID, Refs: e.References, Key: e.Key(), Subject: e.Subject, Date: e.Date, Seq: i}
	}
	res := thread.Build(items, thread.Options{})
	dups := map[int][]int{}
	for _, d := range res.Duplicates {
		dups[d.Of] = append(dups[d.Of], d.Index)
	}
	load := func(i int) *sources.Message {
		if envs[i].Rejected() {
			return &sources.Message{Envelope: envs[i], Issues: envs[i].Issues}
		}
		msg, err := r.Load(envs[i])
		if err != nil {
			t.Fatalf("Load %s: %v", envs[i].Loc, err)
		}
		return msg
	}
	var out []*mapping.Plan
	for _, th := range res.Threads {
		var msgs, dd []*sources.Message
		for _, i := range th.Members {
			msgs = append(msgs, load(i))
			for _, d := range dups[i] {
				dd = append(dd, &sources.Message{Envelope: envs[d], Issues: envs[d].Issues})
			}
		}
		out = append(out, m.Map(th.Key, msgs, dd))
	}
	return out
}

func golden(p *mapping.Plan, n int) goldenThread {
	g := goldenThread{ThreadKey: p.ThreadKey, TicketID: p.TicketID, Rule: p.Rule, Reason: p.Reason}
	for _, r := range p.Rejected {
		g.Rejected = append(g.Rejected, map[string]string{"key": r.Key, "source": r.Source.String(), "rule": r.Rule, "reason": r.Reason})
	}
	for _, i := range p.Issues {
		g.Issues = append(g.Issues, map[string]string{"severity": string(i.Severity), "rule": i.Rule, "source": i.Source.String(), "message": i.Reason})
	}
	if !p.Valid() {
		return g
	}
	for i, c := range mapping.Chunks(p.Events, n) {
		if i == 0 {
			g.Requests = append(g.Requests, goldenRequest{"POST", "/api/v2/tickets/{ticket}/side_conversations/import", p.ImportRequest(c)})
			continue
		}
		g.Requests = append(g.Requests, goldenRequest{"POST", "/api/v2/tickets/{ticket}/side_conversations/{id}/events/import", mapping.EventsRequest(c)})
	}
	return g
}

func TestGoldenRequests(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.mbox"))
	if len(files) == 0 {
		t.Fatal("no testdata/*.mbox")
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			m := mapping.New(mapping.Options{
				Ticket: mapping.TicketRules{
					Header:       "X-Zendesk-Ticket-Id",
					SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`),
				},
				Agents:              map[string]int64{"support@acme.example": 9001},
				MaxEventsPerRequest: 2,
				Now:                 func() time.Time { return now },
			})
			var got []goldenThread
			for _, p := range plans(t, f, m) {
				got = append(got, golden(p, 2))
			}
			b, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			b = append(b, '\n')
			gf := strings.TrimSuffix(f, ".mbox") + ".golden.json"
			if *update {
				if err := os.WriteFile(gf, b, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(gf)
			if err != nil {
				t.Fatalf("%v (run go test ./mapping -update to create it)", err)
			}
			if !bytes.Equal(b, want) {
				t.Errorf("requests differ from %s (-want +got):\n%s", gf, cmp.Diff(string(want), string(b)))
			}
		})
	}
}
