package formats

import (
	"io"
	"strings"
	"testing"

	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/internal/htmltext"
)

// loadRecords reads every record of a csv or json source and loads it.
func loadRecords(t *testing.T, typ, path string) []*sources.Message {
	t.Helper()
	r, err := Registry().Open(typ, path, sources.Options{Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []*sources.Message
	for {
		env, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		m, err := r.Load(env)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		out = append(out, m)
	}
}

// Issue 12, item 13: a csv/json record with only html_body gets a plain
// body derived from it exactly as an HTML-only mbox message does; its
// content key stays that of the record as written.
func TestRecordsHTMLOnlyGetBody(t *testing.T) {
	const html = "<html><body><p>Hello <b>HTML</b> world</p><ul><li>one</li><li>two</li></ul></body></html>"
	want, err := htmltext.Render(html)
	if err != nil || !strings.Contains(want, "Hello *HTML* world") {
		t.Fatalf("htmlText = %q, %v", want, err)
	}
	mbox := loadOne(t, fidelityHead+"Content-Type: text/html\n\n"+html+"\n")
	if strings.TrimSpace(mbox.Body) != strings.TrimSpace(want) {
		t.Fatalf("mbox body = %q, want %q", mbox.Body, want)
	}
	csvPath := writeTemp(t, "m.csv", "thread_id,created_at,from,to,html_body,body\n"+
		"t1,2024-03-04 10:00:00,a@example.com,b@example.com,\""+html+"\",\n"+
		"t2,2024-03-04 10:00:00,a@example.com,b@example.com,\""+html+"\",own text\n")
	jsonPath := writeTemp(t, "m.jsonl",
		`{"thread_id":"t1","created_at":"2024-03-04 10:00:00","from":"a@example.com","to":"b@example.com","html_body":"`+strings.ReplaceAll(html, `"`, `\"`)+`"}`+"\n"+
			`{"thread_id":"t2","created_at":"2024-03-04 10:00:00","from":"a@example.com","to":"b@example.com","html_body":"<p>x</p>","body":"own text"}`+"\n")
	for typ, path := range map[string]string{"csv": csvPath, "json": jsonPath} {
		t.Run(typ, func(t *testing.T) {
			msgs := loadRecords(t, typ, path)
			if len(msgs) != 2 {
				t.Fatalf("%d records, want 2", len(msgs))
			}
			if msgs[0].Body != mbox.Body || msgs[0].HTMLBody != html {
				t.Errorf("html-only record: body %q, html %q; want body %q as for mbox", msgs[0].Body, msgs[0].HTMLBody, mbox.Body)
			}
			if msgs[0].ContentKey != contentKey("t1", "2024-03-04 10:00:00", "a@example.com", "") {
				t.Errorf("content key %s changed: it hashes the body as written", msgs[0].ContentKey)
			}
			if msgs[1].Body != "own text" {
				t.Errorf("record with both: body %q, want its own", msgs[1].Body)
			}
		})
	}
}
