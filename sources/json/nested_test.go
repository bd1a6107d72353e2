package json

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/threadlift/threadlift/sources"
)

// helpScoutShape is two conversations the way Help Scout's API gives
// them: the thread's fields and its messages inside "item".
const helpScoutShape = `{"item": {"id": 10, "subject": "Refund", "customer": {"email": "karl@example.com"},
  "threads": [
    {"id": 1, "createdAt": "2024-01-03T21:35:51Z", "createdBy": {"email": "karl@example.com", "first": "K"}, "body": "<p>hi</p>", "to": null, "cc": []},
    {"id": 2, "createdAt": "2024-01-04T09:00:00Z", "createdBy": {"email": "agent@acme.example"}, "body": "<p>done</p>", "to": ["karl@example.com"], "cc": [{"email": "ops@acme.example"}]}
  ]}}
{"item": {"id": 11, "subject": "Other", "threads": [
    {"id": 3, "createdAt": "2024-02-01T10:00:00Z", "createdBy": {"email": "x@example.com"}, "body": "<p>x</p>", "to": ["y@example.com"]}
  ]}}
`

// TestNestedMessagesPath: messages_path goes down "item" to its
// "threads", the thread's own fields inside "item" apply to each
// message, and Load reads them again from their spans.
func TestNestedMessagesPath(t *testing.T) {
	p := writeTemp(t, "hs.json", helpScoutShape)
	opts := sources.Options{Now: func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) },
		DefaultRecipient: true,
		Format:           sources.FormatOptions{MessagesPath: "item.threads"},
		Fields: map[string]string{sources.FieldThreadID: "item.id", sources.FieldSubject: "item.subject", sources.FieldMessageID: "threads[].id",
			sources.FieldCreatedAt: "createdAt", sources.FieldFrom: "createdBy", sources.FieldTo: "to[]", sources.FieldCc: "cc[].email",
			sources.FieldHTMLBody: "body", sources.FieldBody: "text"}}
	r, err := Open(p, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got []string
	for {
		env, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		m, err := r.Load(env)
		if err != nil {
			t.Fatal(err)
		}
		var to []string
		for _, a := range append(m.To, m.Cc...) {
			to = append(to, a.Email)
		}
		got = append(got, strings.Join([]string{env.Loc.String(), env.ThreadID, env.MessageID, env.Subject, m.From.Email, strings.Join(to, "+"), strings.TrimSpace(m.Body)}, " | "))
	}
	want := []string{
		"hs.json:3 | 10 | 1 | Refund | karl@example.com |  | hi",
		"hs.json:4 | 10 | 2 | Refund | agent@acme.example | karl@example.com+ops@acme.example | done",
		"hs.json:7 | 11 | 3 | Other | x@example.com | y@example.com | x",
	}
	for i := range want {
		if i >= len(got) || !strings.HasSuffix(got[i], want[i][len("hs.json"):]) {
			t.Errorf("record %d = %v, want %q", i, got, want[i])
			break
		}
	}

	// A failures file of these records reads back with the same paths.
	var buf bytes.Buffer
	var recs []sources.FailedRecord
	r2, _ := Open(p, opts)
	defer r2.Close()
	for {
		env, err := r2.Next()
		if err != nil {
			break
		}
		recs = append(recs, sources.FailedRecord{Env: env})
	}
	if err := r2.(sources.FailureWriter).WriteFailures(&buf, recs); err != nil {
		t.Fatal(err)
	}
	back, err := Open(writeTemp(t, "hs.failures.jsonl", buf.String()), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	n := 0
	for {
		env, err := back.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("failures file: %v\n%s", err, buf.String())
		}
		if env.ThreadID == "" || env.Subject == "" || env.Corrects == "" {
			t.Errorf("failures record %+v lost its thread's fields or mark\n%s", env, buf.String())
		}
		n++
	}
	if n != 3 {
		t.Errorf("failures file read back %d records, want 3", n)
	}
}
