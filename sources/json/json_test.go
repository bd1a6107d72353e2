package json

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/internal/files"

	"github.com/google/go-cmp/cmp"
)

var jsonNow = func() time.Time { return time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC) }

// jsonItem is one result of Next: an envelope and its loaded message, or a
// record error.
type jsonItem struct {
	env *sources.Envelope
	msg *sources.Message
	err *sources.RecordError
}

// readJSON reads path to the end, loading every envelope. Any error other
// than a *RecordError fails the test.
func readJSON(t testing.TB, path string, opts sources.Options) []jsonItem {
	t.Helper()
	if opts.Now == nil {
		opts.Now = jsonNow
	}
	if opts.Name == "" {
		opts.Name = filepath.Base(path)
	}
	r, err := Open(path, opts)
	if err != nil {
		t.Fatalf("OpenJSON(%s): %v", path, err)
	}
	defer r.Close()
	var items []jsonItem
	for {
		env, err := r.Next()
		if err == io.EOF {
			break
		}
		var re *sources.RecordError
		if errors.As(err, &re) {
			items = append(items, jsonItem{err: re})
			continue
		}
		if err != nil {
			t.Fatalf("Next(%s) after %d records: %v", path, len(items), err)
		}
		m, err := r.Load(env)
		if err != nil {
			t.Fatalf("Load(%s): %v", env.Loc, err)
		}
		items = append(items, jsonItem{env: env, msg: m})
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("Next(%s) after io.EOF = %v, want io.EOF", path, err)
	}
	return items
}

// summary is one line per item: location, thread id, key and the rules of
// the issues, or the rule of a record error.
func summary(items []jsonItem) []string {
	out := []string{}
	for _, it := range items {
		if it.err != nil {
			out = append(out, fmt.Sprintf("%s ERROR %s", it.err.Loc, it.err.Rule))
			continue
		}
		key := it.env.Key()
		if strings.HasPrefix(key, "sha256:") {
			key = key[:15]
		}
		var rules []string
		for _, is := range it.msg.Issues {
			rules = append(rules, string(is.Severity[0])+":"+is.Rule)
		}
		out = append(out, fmt.Sprintf("%s tid=%s key=%s [%s]", it.env.Loc, it.env.ThreadID, key, strings.Join(rules, " ")))
	}
	return out
}

// realPath is p absolute with its links resolved: attachment paths are
// read by their real paths.
func realPath(t testing.TB, p string) string {
	t.Helper()
	abs, err := filepath.Abs(p)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func writeTemp(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func contentKey(fields ...string) string {
	h := sha256.Sum256([]byte(strings.Join(fields, "\x00")))
	return "sha256:" + hex.EncodeToString(h[:])
}

// TestJSONFiles reads each shape from testdata: locations, thread ids,
// keys and rules of every record.
func TestJSONFiles(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"messages.jsonl", []string{ // BOM, CRLF, a blank line
			"messages.jsonl:1 tid=t1 key=m1 []",
			"messages.jsonl:2 tid=t1 key=sha256:d519dcbe [w:no-message-id]",
			"messages.jsonl:3 ERROR invalid-json", // missing comma; the lines after it are read
			"messages.jsonl:4 tid=42 key=7 []",
			"messages.jsonl:6 tid=t2 key=sha256:c74ae31e [w:no-message-id]",
			"messages.jsonl:7 tid=t2 key=sha256:a68935d4 [w:no-message-id]",
		}},
		{"array.json", []string{ // pretty-printed: a record's line is not its index
			"array.json:2 tid=x1 key=<x1@example.com> []",
			"array.json:11 tid=x1 key=sha256:acd16f2b [w:no-message-id]",
		}},
		{"threads.jsonl", []string{ // thread fields before and after "messages"
			"threads.jsonl:1 tid=b key=sha256:9f17ecaa [w:no-message-id]",
			"threads.jsonl:1 tid=b key=sha256:8c0c6012 [w:no-message-id]",
			"threads.jsonl:2 tid=a key=<a1@example.com> []",
		}},
		{"threads.json", []string{
			"threads.json:6 tid=T-1 key=sha256:c9d5580e [w:no-message-id w:attachment-missing]",
			"threads.json:13 tid=T-1 key=sha256:55e2b477 [e:attachment-path w:no-message-id]",
			"threads.json:26 tid=override key=sha256:545e8903 [w:no-message-id]",
			"threads.json:27 ERROR wrong-type", // a string in "messages"
			"threads.json:28 tid=2 key=sha256:f169891e [w:no-message-id]",
		}},
		{"truncated.json", []string{
			"truncated.json:2 tid=t key=sha256:a7524318 [w:no-message-id]",
			"truncated.json:3 ERROR invalid-json",
		}},
		{"mixed.jsonl", []string{
			"mixed.jsonl:1 tid=t key=sha256:9198887a [w:no-message-id]",
			"mixed.jsonl:2 ERROR mixed-shape",
			"mixed.jsonl:3 ERROR wrong-type",
			"mixed.jsonl:4 tid=t key=sha256:ff0c4ac3 [w:no-message-id]",
		}},
		{"broken_array.json", []string{
			"broken_array.json:2 tid=t key=sha256:8b3dd777 [w:no-message-id]",
			"broken_array.json:3 ERROR invalid-json", // resynced at the next element
			"broken_array.json:4 tid=t key=sha256:ab854628 [e:wrong-type e:no-recipient w:no-message-id]",
			"broken_array.json:5 tid=t key=sha256:f0723f06 [w:no-message-id]",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			items := readJSON(t, filepath.Join("testdata", tt.file), sources.Options{})
			got := summary(items)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("read %s (-want +got):\n%s", tt.file, diff)
				for _, it := range items {
					if it.err != nil {
						t.Logf("%v", it.err)
					} else {
						t.Logf("%s %v", it.env.Loc, it.msg.Issues)
					}
				}
			}
		})
	}
}

// TestJSONMessages checks decoded fields: participants of every type,
// numeric ids, inherited and overridden thread fields, attachments.
func TestJSONMessages(t *testing.T) {
	dir := filepath.Join("testdata")
	read := func(file string) []jsonItem { return readJSON(t, filepath.Join(dir, file), sources.Options{}) }
	ms := read("messages.jsonl")
	ar := read("array.json")
	th := read("threads.jsonl")
	tj := read("threads.json")
	date := func(s string) time.Time {
		d, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	type view struct {
		From      sources.Address
		To, Cc    []sources.Address
		Subject   string
		Body      string
		HTMLBody  string
		TicketRef string
		Date      time.Time
		Attach    []sources.Attachment
	}
	tests := []struct {
		name string
		it   jsonItem
		want view
	}{
		{"address list string", ms[0], view{From: sources.Address{Name: "Ann", Email: "ann@example.com"},
			To: []sources.Address{{Email: "bob@example.com"}, {Name: "Carl", Email: "carl@example.com"}}, Subject: "Hello", Body: "first",
			Date: date("2024-01-02T03:04:05Z")}},
		{"participant object, string list, agent cc", ms[1], view{From: sources.Address{Name: "Bob", Email: "bob@example.com"},
			To: []sources.Address{{Email: "ann@example.com"}}, Cc: []sources.Address{{UserID: 123}}, Body: "second, no message id",
			Date: date("2024-01-02T04:00:00Z")}},
		{"numeric ids, slack", ms[3], view{From: sources.Address{Email: "dan@example.com"},
			To: []sources.Address{{SlackWorkspaceID: "T123", SlackChannelID: "C456"}}, HTMLBody: "<p>slack</p>", Body: "slack", TicketRef: "1001",
			Date: date("2024-01-02T05:04:05Z")}},
		{"child ticket, numbers kept as written", ms[4], view{From: sources.Address{Email: "eve@example.com"},
			To: []sources.Address{{SupportGroupID: "123", SupportAgentID: "456"}}, Body: "child ticket", Date: date("2024-01-03T00:00:00Z")}},
		{"teams, single object", ms[5], view{From: sources.Address{Email: "eve@example.com"},
			To: []sources.Address{{MSTeamsChannelID: "19:abc@thread.tacv2"}}, Body: "teams é", Date: date("2024-01-03T01:00:00Z")}},
		{"pretty array", ar[0], view{From: sources.Address{Name: "Xavier", Email: "xavier@example.com"},
			To: []sources.Address{{Email: "yan@example.com"}, {Name: "Zoe", Email: "zoe@example.com"}}, Subject: "Pretty",
			Body: "line one\nline two", Date: date("2024-04-01T07:00:00Z")}},
		{"thread fields inherited, some after messages", th[0], view{From: sources.Address{Email: "x@example.com"},
			To: []sources.Address{{Email: "y@example.com"}}, Subject: "Thread B", Body: "b2", TicketRef: "REF-9", Date: date("2024-02-02T00:00:00Z")}},
		{"message fields override thread fields", th[1], view{From: sources.Address{Email: "y@example.com"},
			To: []sources.Address{{Email: "x@example.com"}}, Subject: "Re: own", Body: "b1", TicketRef: "REF-9", Date: date("2024-02-01T00:00:00Z")}},
		{"from and to inherited", th[2], view{From: sources.Address{Email: "z@example.com"},
			To: []sources.Address{{Email: "q@example.com"}}, Body: "a1", Date: date("2024-01-01T00:00:00Z")}},
		{"agent sender, attachment resolved", tj[0], view{From: sources.Address{Name: "Agent", UserID: 9},
			To: []sources.Address{{Name: "Cust", Email: "cust@example.com"}}, Subject: "Printer", Body: "see attached", Date: date("2024-03-01T10:00:00Z"),
			Attach: []sources.Attachment{{Path: realPath(t, filepath.Join(dir, "files", "note.txt")), Name: "note.txt", Size: 6}}}},
		{"user_id as a string", tj[1], view{From: sources.Address{Email: "cust@example.com"},
			To: []sources.Address{{UserID: 9}}, Subject: "Printer", Body: "thanks", Date: date("2024-03-01T11:00:00Z")}},
		{"numeric thread fields", tj[4], view{From: sources.Address{Email: "a@example.com"},
			To: []sources.Address{{Email: "b@example.com"}}, Body: "y", TicketRef: "77", Date: date("2024-03-02T11:00:00Z")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.it.msg
			if m == nil {
				t.Fatalf("not a message: %v", tt.it.err)
			}
			got := view{From: m.From, To: m.To, Cc: m.Cc, Subject: m.Subject, Body: m.Body, HTMLBody: m.HTMLBody,
				TicketRef: m.TicketRef, Date: m.Date.UTC(), Attach: m.Attachments}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Load(%s) (-want +got):\n%s", m.Loc, diff)
			}
		})
	}
	if tj[2].env.ThreadID != "override" || tj[4].env.ThreadID != "2" {
		t.Errorf("thread ids %q %q, want override 2", tj[2].env.ThreadID, tj[4].env.ThreadID)
	}
}

// TestJSONContentKeys checks the exact message key of records without a
// message_id: sha256 of thread_id NUL created_at NUL from NUL body as
// written (a string's value; other values as compact JSON text).
func TestJSONContentKeys(t *testing.T) {
	dir := filepath.Join("testdata")
	ms := readJSON(t, filepath.Join(dir, "messages.jsonl"), sources.Options{})
	th := readJSON(t, filepath.Join(dir, "threads.jsonl"), sources.Options{})
	tests := []struct {
		name string
		env  *sources.Envelope
		want string
	}{
		{"from object", ms[1].env, contentKey("t1", "Tue, 02 Jan 2024 04:00:00 +0000", `{"email":"bob@example.com","name":"Bob"}`, "second, no message id")},
		{"escaped body", ms[5].env, contentKey("t2", "2024-01-03T01:00:00Z", "eve@example.com", "teams é")},
		{"inherited thread id", th[0].env, contentKey("b", "2024-02-02T00:00:00Z", "x@example.com", "b2")},
	}
	for _, tt := range tests {
		if got := tt.env.Key(); got != tt.want {
			t.Errorf("%s: Key(%s) = %s, want %s", tt.name, tt.env.Loc, got, tt.want)
		}
	}
	// Numbers keep their text as written.
	p := writeTemp(t, "n.jsonl", `{"thread_id":7.50,"created_at":1704171845,"from":"a@example.com","to":"b@example.com","body":"x"}`+"\n")
	it := readJSON(t, p, sources.Options{})
	if got, want := it[0].env.Key(), contentKey("7.50", "1704171845", "a@example.com", "x"); got != want {
		t.Errorf("numeric fields: Key = %s, want %s", got, want)
	}
}

// TestJSONRecords covers field-level problems: each record is read, with
// the issues that reject or repair it.
func TestJSONRecords(t *testing.T) {
	const ok = `"thread_id":"t","created_at":"2024-01-01T00:00:00Z","from":"a@example.com","to":"b@example.com","body":"x","message_id":"m"`
	rec := func(fields string) string { return "{" + fields + "}" }
	with := func(repl ...string) string {
		s := ok
		for i := 0; i < len(repl); i += 2 {
			s = strings.Replace(s, repl[i], repl[i+1], 1)
		}
		return rec(s)
	}
	tests := []struct {
		name   string
		line   string
		opts   sources.Options
		rules  []string
		reason string // substring of the first issue's reason
	}{
		{"valid", rec(ok), sources.Options{}, nil, ""},
		{"body is a number", with(`"body":"x"`, `"body":5`), sources.Options{}, []string{"e:wrong-type"}, `field "body": is a JSON number, want a string`},
		{"to is an unknown object", with(`"to":"b@example.com"`, `"to":{"id":5}`), sources.Options{},
			[]string{"e:wrong-type", "e:no-recipient"}, `field "to": is an object without any participant property`},
		{"from is a boolean", with(`"from":"a@example.com"`, `"from":true`), sources.Options{}, []string{"e:wrong-type", "e:no-sender"}, `field "from": is a JSON boolean`},
		{"thread_id is an object", with(`"thread_id":"t"`, `"thread_id":{"id":1}`), sources.Options{}, []string{"e:wrong-type"}, `field "thread_id": is a JSON object, want a string or a number`},
		{"subject is a list", with(`"body":"x"`, `"body":"x","subject":["s"]`), sources.Options{}, []string{"e:wrong-type"}, `field "subject": is a JSON array`},
		{"attachments is a number", with(`"body":"x"`, `"body":"x","attachments":3`), sources.Options{}, []string{"e:wrong-type"}, `field "attachments"`},
		{"attachment outside the folder", with(`"body":"x"`, `"body":"x","attachments":["/etc/passwd"]`), sources.Options{}, []string{"e:attachment-path"}, `"/etc/passwd"`},
		{"user_id not a number", with(`"to":"b@example.com"`, `"to":[{"user_id":"bob"}]`), sources.Options{}, []string{"e:wrong-type", "e:no-recipient"}, `property "user_id"`},
		{"renamed field named in reason", `{"thread_id":"t","created_at":"2024-01-01T00:00:00Z","from":"a@example.com","to":"b@example.com","text":1,"message_id":"m"}`,
			sources.Options{Fields: map[string]string{sources.FieldBody: "text"}}, []string{"e:wrong-type"}, `field "body" ("text" in the file)`},
		{"missing thread_id", with(`"thread_id":"t",`, ``), sources.Options{}, []string{"e:missing-field"}, `"thread_id"`},
		{"empty created_at", with(`"created_at":"2024-01-01T00:00:00Z"`, `"created_at":""`), sources.Options{}, []string{"e:missing-field"}, `"created_at"`},
		{"missing from", with(`"from":"a@example.com",`, ``), sources.Options{}, []string{"e:missing-field"}, `"from"`},
		{"missing to", with(`"to":"b@example.com",`, ``), sources.Options{}, []string{"e:missing-field"}, `"to"`},
		{"empty to list", with(`"to":"b@example.com"`, `"to":[]`), sources.Options{}, []string{"e:missing-field"}, `"to"`},
		{"missing body", with(`,"body":"x"`, ``), sources.Options{}, []string{"e:missing-field"}, `"body"`},
		{"html body only", with(`"body":"x"`, `"html_body":"<b>x</b>"`), sources.Options{}, nil, ""},
		{"null body inherits nothing", with(`"body":"x"`, `"body":null`), sources.Options{}, []string{"e:missing-field"}, `"body"`},
		{"some invalid addresses", with(`"to":"b@example.com"`, `"to":["b@example.com","not an address",{"email":"bad@@x"}]`), sources.Options{},
			[]string{"w:invalid-address"}, `"not an address", "bad@@x"`},
		{"all invalid addresses", with(`"to":"b@example.com"`, `"to":"nobody, nowhere"`), sources.Options{},
			[]string{"w:invalid-address", "e:no-recipient"}, `"nobody", "nowhere"`},
		{"name-only participant", with(`"to":"b@example.com"`, `"to":[{"name":"Bob"}]`), sources.Options{},
			[]string{"w:invalid-address", "e:no-recipient"}, `{\"name\":\"Bob\"}`},
		{"invalid sender", with(`"from":"a@example.com"`, `"from":"someone"`), sources.Options{},
			[]string{"w:invalid-address", "e:no-sender"}, `"someone"`},
		{"two senders", with(`"from":"a@example.com"`, `"from":["a@example.com","c@example.com"]`), sources.Options{},
			[]string{"w:extra-sender"}, `the first (a@example.com)`},
		{"epoch date", with(`"created_at":"2024-01-01T00:00:00Z"`, `"created_at":0`), sources.Options{}, []string{"e:no-date"}, `Unix epoch`},
		{"pre-1970 date", with(`"created_at":"2024-01-01T00:00:00Z"`, `"created_at":"1969-12-31T23:59:59Z"`), sources.Options{}, []string{"e:date-out-of-range"}, `before 1970`},
		{"future date", with(`"created_at":"2024-01-01T00:00:00Z"`, `"created_at":"2024-06-03T00:00:00Z"`), sources.Options{}, []string{"e:date-out-of-range"}, `more than a day after now`},
		{"unparseable date", with(`"created_at":"2024-01-01T00:00:00Z"`, `"created_at":"yesterday"`), sources.Options{}, []string{"e:no-date"}, `unrecognized date`},
		{"date is a boolean", with(`"created_at":"2024-01-01T00:00:00Z"`, `"created_at":false`), sources.Options{}, []string{"e:wrong-type"}, `field "created_at"`},
		{"too large", rec(ok), sources.Options{MaxMessageBytes: 50}, []string{"e:too-large"}, `over max_message_bytes 50`},
		{"messages not an array", with(`"body":"x"`, `"body":"x","messages":"none"`), sources.Options{}, []string{"w:wrong-type"}, `"messages" is a JSON string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeTemp(t, "r.jsonl", tt.line+"\n")
			items := readJSON(t, p, tt.opts)
			if len(items) != 1 || items[0].msg == nil {
				t.Fatalf("read %s: got %v, want one message", tt.line, summary(items))
			}
			m := items[0].msg
			var rules []string
			for _, is := range m.Issues {
				rules = append(rules, string(is.Severity[0])+":"+is.Rule)
			}
			if diff := cmp.Diff(tt.rules, rules); diff != "" {
				t.Errorf("issues of %s (-want +got):\n%s\n%v", tt.line, diff, m.Issues)
			}
			if tt.reason != "" && !strings.Contains(m.Issues[0].Reason, tt.reason) {
				t.Errorf("reason = %q, want it to contain %q", m.Issues[0].Reason, tt.reason)
			}
			if want := strings.Contains(strings.Join(tt.rules, " "), "e:"); m.Rejected() != want || items[0].env.Rejected() != want {
				t.Errorf("Rejected() = %v, want %v", m.Rejected(), want)
			}
		})
	}
}

// TestJSONBadFiles covers structural problems: every record is accounted
// for, the errors say where and what, and reading goes on.
func TestJSONBadFiles(t *testing.T) {
	const m = `{"thread_id":"t","created_at":"2024-01-01T00:00:00Z","from":"a@example.com","to":"b@example.com","body":"%s","message_id":"%s"}`
	msg := func(id string) string { return fmt.Sprintf(m, id, id) }
	tests := []struct {
		name    string
		content string
		want    []string
		reasons []string // substrings of the record errors' text, in order
	}{
		{"empty file", "", []string{}, nil},
		{"BOM and space only", "\xef\xbb\xbf \r\n", []string{}, nil},
		{"empty array", "[ ]", []string{}, nil},
		{"invalid line in the middle", msg("1") + "\n" + `{"thread_id": oops}` + "\n" + msg("3") + "\n",
			[]string{"f:1 tid=t key=1 []", "f:2 ERROR invalid-json", "f:3 tid=t key=3 []"},
			[]string{`f:2: invalid JSON at line 2 column 15: invalid character 'o' looking for beginning of value, near "{\"thread_id\": oops}"; skipped 19 bytes on line 2`}},
		{"unterminated string", msg("1") + "\n" + `{"thread_id": "t` + "\n" + msg("3") + "\n",
			[]string{"f:1 tid=t key=1 []", "f:2 ERROR invalid-json", "f:3 tid=t key=3 []"},
			[]string{`in string literal`}},
		{"unclosed object", msg("1") + "\n" + `{"thread_id": "t"` + "\n" + msg("3") + "\n",
			[]string{"f:1 tid=t key=1 []", "f:2 ERROR invalid-json", "f:3 tid=t key=3 []"},
			[]string{`line 3 column 1`}},
		{"leading garbage", "garbage\n" + msg("1") + "\n",
			[]string{"f:1 ERROR invalid-json", "f:2 tid=t key=1 []"}, []string{`not JSON before the first object or array: "garbage"; skipped 7 bytes on line 1`}},
		{"trailing garbage", msg("1") + "\n}}}\n",
			[]string{"f:1 tid=t key=1 []", "f:2 ERROR invalid-json"}, []string{`the rest of the file (3 bytes on line 2) could not be read`}},
		{"truncated line", msg("1") + "\n" + msg("2")[:40],
			[]string{"f:1 tid=t key=1 []", "f:2 ERROR invalid-json"}, []string{`the file ends inside the record (truncated?)`}},
		{"array without closing bracket", "[" + msg("1") + ",\n" + msg("2") + "\n",
			[]string{"f:1 tid=t key=1 []", "f:2 tid=t key=2 []", "f:3 ERROR invalid-json"}, []string{`the file ends inside the array (truncated?)`}},
		{"array cut in an element", "[" + msg("1") + ",\n" + msg("2")[:50],
			[]string{"f:1 tid=t key=1 []", "f:2 ERROR invalid-json"}, []string{`the rest of the file (50 bytes on line 2) could not be read`}},
		{"array element with a bad value", "[\n" + msg("1") + ",\n" + `{"a": [1, 2}, "b": {"c": "]"}}` + ",\n" + msg("3") + "\n]\n",
			[]string{"f:2 tid=t key=1 []", "f:3 ERROR invalid-json", "f:4 tid=t key=3 []"}, []string{`skipped 30 bytes on line 3`}},
		{"array element not an object", "[" + msg("1") + ", 42, [1], null, " + msg("2") + "]",
			[]string{"f:1 tid=t key=1 []", "f:1 ERROR wrong-type", "f:1 ERROR wrong-type", "f:1 ERROR wrong-type", "f:1 tid=t key=2 []"},
			[]string{`an array element is a JSON number, want an object`, `an array element is a JSON array`, `JSON null`}},
		{"trailing comma", "[" + msg("1") + ",]", []string{"f:1 tid=t key=1 []", "f:1 ERROR invalid-json"}, []string{`invalid character ']'`}},
		{"two arrays", "[" + msg("1") + "]\n[" + msg("2") + "]\n", []string{"f:1 tid=t key=1 []", "f:2 tid=t key=2 []"}, nil},
		{"object after an array", "[" + msg("1") + "]\n" + msg("2") + "\n", []string{"f:1 tid=t key=1 []", "f:2 ERROR mixed-shape"}, []string{`an object at the top level`}},
		{"array in JSON Lines", msg("1") + "\n[" + msg("2") + "]\n", []string{"f:1 tid=t key=1 []", "f:2 ERROR mixed-shape"}, []string{`an array in a file of JSON objects`}},
		{"message among threads", `{"thread_id":"t","messages":[` + msg("1") + "]}\n" + msg("2") + "\n",
			[]string{"f:1 tid=t key=1 []", "f:2 ERROR mixed-shape"}, []string{`a message object (no "messages" array) in a file of thread objects`}},
		{"thread among messages", msg("1") + "\n" + `{"thread_id":"t","messages":[` + msg("2") + "]}\n",
			[]string{"f:1 tid=t key=1 []", "f:2 ERROR mixed-shape"}, []string{`not read: its 1 message`}},
		{"thread broken after two messages", `{"thread_id":"t","messages":[` + msg("1") + ",\n" + msg("2") + ",\n" + `{"body": x}]}` + "\n" + `{"thread_id":"u","messages":[` + msg("4") + "]}\n",
			[]string{"f:1 tid=t key=1 []", "f:2 tid=t key=2 []", "f:1 ERROR invalid-json", "f:4 tid=t key=4 []"},
			[]string{`line 3 column 10: invalid character 'x' looking for beginning of value, near "{\"body\": x}]}"; the 2 messages before the error were read; skipped 13 bytes on line 3`}},
		{"thread messages before a broken thread field", `[{"thread_id":"t","messages":[` + msg("1") + "],\n" + `"subject": nope}, {"messages": [` + msg("3") + "]}]",
			[]string{"f:1 tid=t key=1 []", "f:1 ERROR invalid-json", "f:2 tid=t key=3 []"}, []string{`the 1 message before the error were read`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeTemp(t, "f", tt.content)
			items := readJSON(t, p, sources.Options{})
			if diff := cmp.Diff(tt.want, summary(items)); diff != "" {
				t.Errorf("read %q (-want +got):\n%s", tt.content, diff)
			}
			var errs []string
			for _, it := range items {
				if it.err != nil {
					errs = append(errs, it.err.Error())
				}
			}
			for i, want := range tt.reasons {
				if i >= len(errs) || !strings.Contains(errs[i], want) {
					t.Errorf("record errors %q: #%d does not contain %q", errs, i, want)
				}
			}
		})
	}
}

// TestJSONNotJSON checks that a file holding no object or array is a
// fatal error when opened.
func TestJSONNotJSON(t *testing.T) {
	for _, content := range []string{"42", `"a string"`, "From a@b Mon Jan  1 00:00:00 2024\nSubject: x\n", "\x00\x01\x02"} {
		p := writeTemp(t, "x.json", content)
		r, err := Open(p, sources.Options{Name: "x.json"})
		if err == nil {
			r.Close()
			t.Errorf("OpenJSON(%q) = nil error, want one", content)
			continue
		}
		if !strings.Contains(err.Error(), "x.json") || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("OpenJSON(%q) = %v, want the file and line named", content, err)
		}
	}
	if _, err := Open(t.TempDir(), sources.Options{}); err == nil {
		t.Errorf("OpenJSON(directory) = nil error")
	}
}

// TestJSONExcerpt checks that an error's excerpt stays short on a long
// line.
func TestJSONExcerpt(t *testing.T) {
	long := `{"body":"` + strings.Repeat("\x01é", 200) + `"}`
	p := writeTemp(t, "f.jsonl", long+"\n")
	items := readJSON(t, p, sources.Options{})
	if len(items) != 1 || items[0].err == nil {
		t.Fatalf("got %v, want one record error", summary(items))
	}
	msg := items[0].err.Error()
	i := strings.Index(msg, "near ")
	if i < 0 {
		t.Fatalf("no excerpt in %q", msg)
	}
	q, err := strconv.QuotedPrefix(msg[i+5:])
	if err != nil || len(q) > 80 || len(q) < 20 {
		t.Errorf("excerpt %q (%v): want 20 to 80 characters", q, err)
	}
}

// TestJSONRawAndConcurrentLoad loads every envelope from many goroutines
// (run with -race) and checks Raw returns the record's bytes.
func TestJSONRawAndConcurrentLoad(t *testing.T) {
	for _, file := range []string{"messages.jsonl", "threads.json", "threads.jsonl"} {
		path := filepath.Join("testdata", file)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Open(path, sources.Options{Now: jsonNow})
		if err != nil {
			t.Fatal(err)
		}
		var envs []*sources.Envelope
		var wg sync.WaitGroup
		for {
			env, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				continue
			}
			envs = append(envs, env)
			wg.Add(1)
			go func() { // Load during the Next walk
				defer wg.Done()
				if _, err := r.Load(env); err != nil {
					t.Errorf("Load(%s): %v", env.Loc, err)
				}
			}()
		}
		for range 4 {
			for _, env := range envs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := r.Load(env); err != nil {
						t.Errorf("Load(%s): %v", env.Loc, err)
					}
				}()
			}
		}
		wg.Wait()
		rr := r.(sources.RawReader)
		for _, env := range envs {
			rd, err := rr.Raw(env)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(rd)
			if want := data[env.Loc.Offset : env.Loc.Offset+env.Size]; string(b) != string(want) || b[0] != '{' || b[len(b)-1] != '}' {
				t.Errorf("Raw(%s) = %q, want %q", env.Loc, b, want)
			}
		}
		r.Close()
		if _, err := r.Next(); !errors.Is(err, sources.ErrClosed) {
			t.Errorf("Next after Close = %v, want ErrClosed", err)
		}
		if len(envs) > 0 {
			if _, err := r.Load(envs[0]); !errors.Is(err, sources.ErrClosed) {
				t.Errorf("Load after Close = %v, want ErrClosed", err)
			}
		}
	}
}

// TestJSONCorpus reads real helpdesk exports, which are not in our format:
// with a plausible mapping of their fields, the reader must not panic and
// must account for every record.
func TestJSONCorpus(t *testing.T) {
	root := filepath.Join("..", "..", "..", "shared", "corpora", "helpdesk")
	if _, err := os.Stat(root); err != nil {
		t.Skipf("corpus not available: %v", err)
	}
	tests := []struct {
		file   string
		fields map[string]string
		envs   int // envelopes
		valid  int // envelopes not rejected
		errs   int // record errors
	}{
		// An array of conversation objects: "body" is HTML, ids are numbers.
		{"freshdesk/v2_conversations.json", map[string]string{sources.FieldThreadID: "ticket_id", sources.FieldMessageID: "id",
			sources.FieldFrom: "from_email", sources.FieldTo: "to_emails", sources.FieldCc: "cc_emails", sources.FieldHTMLBody: "body", sources.FieldBody: "body_text"}, 2, 1, 0},
		// One conversation object: an object where a message is expected.
		{"intercom/conversation.json", map[string]string{sources.FieldThreadID: "id"}, 1, 0, 0},
		// A wrapper object with the conversation under "item".
		{"helpscout/conversation_10.json", nil, 1, 0, 0},
		// Dialogs holding their tweets in "dialogContent".
		{"ibm-twitter-customer-care/dev.json", map[string]string{FieldMessages: "dialogContent", sources.FieldMessageID: "tweet_ID",
			sources.FieldThreadID: "tweet_ID", sources.FieldCreatedAt: "datetime", sources.FieldFrom: "client", sources.FieldBody: "message"}, 686, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join(root, tt.file)
			if _, err := os.Stat(path); err != nil {
				t.Skipf("missing: %v", err)
			}
			items := readJSON(t, path, sources.Options{Fields: tt.fields})
			envs, valid, errs := 0, 0, 0
			rules := map[string]int{}
			for _, it := range items {
				if it.err != nil {
					errs++
					rules["ERROR "+string(it.err.Rule)]++
					continue
				}
				envs++
				if !it.msg.Rejected() {
					valid++
				}
				for _, is := range it.msg.Issues {
					rules[is.Rule]++
				}
			}
			t.Logf("%s: %d envelopes (%d valid), %d record errors; %v", tt.file, envs, valid, errs, rules)
			if envs != tt.envs || valid != tt.valid || errs != tt.errs {
				t.Errorf("%s: %d envelopes, %d valid, %d record errors; want %d, %d, %d", tt.file, envs, valid, errs, tt.envs, tt.valid, tt.errs)
			}
		})
	}
}

// FuzzJSON reads everything and loads every envelope: no panic, no hang,
// every Next result is an envelope, a *RecordError or io.EOF.
func FuzzJSON(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "*.json*"))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`[{"messages":[{"a":1},2,{"b":[}]},{"messages":[]}]`))
	f.Add([]byte("{\"x\":\"\\\"]\"}\n[{,]\n{\"messages\":[{\"to\":[{\"user_id\":1e99}]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		r, err := newReader(bytes.NewReader(data), int64(len(data)), nil, files.Folder{Dir: t.TempDir()}, sources.Options{Now: jsonNow}.WithDefaults("f.json"))
		if err != nil {
			return
		}
		defer r.Close()
		var last int64 = -1
		for i := 0; ; i++ {
			if i > len(data)+10 {
				t.Fatalf("more results than bytes: no progress")
			}
			env, err := r.Next()
			if err == io.EOF {
				break
			}
			var re *sources.RecordError
			if errors.As(err, &re) {
				if re.Loc.Line < 1 || re.Loc.Offset < 0 || re.Loc.Offset > int64(len(data)) {
					t.Fatalf("bad location %+v", re.Loc)
				}
				continue
			}
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if env.Loc.Offset <= last || env.Loc.Line < 1 || env.Size <= 0 || env.Loc.Offset+env.Size > int64(len(data)) {
				t.Fatalf("bad envelope location %+v size %d (last offset %d)", env.Loc, env.Size, last)
			}
			last = env.Loc.Offset
			if data[env.Loc.Offset] != '{' {
				t.Fatalf("envelope at %d does not start an object", env.Loc.Offset)
			}
			if _, err := r.Load(env); err != nil {
				t.Fatalf("Load(%s): %v", env.Loc, err)
			}
		}
	})
}

// BenchmarkJSONScan measures Next over JSON Lines and over an array of
// thread objects.
func BenchmarkJSONScan(b *testing.B) {
	const m = `{"thread_id":"t%d","created_at":"2024-01-01T00:00:00Z","from":"Ann <a@example.com>","to":["b@example.com",{"user_id":5}],"subject":"s","body":"%s"}`
	body := strings.Repeat("lorem ipsum ", 100)
	var lines, threads strings.Builder
	threads.WriteString("[")
	for i := range 2000 {
		fmt.Fprintf(&lines, m+"\n", i, body)
		if i > 0 {
			threads.WriteString(",\n")
		}
		fmt.Fprintf(&threads, `{"thread_id":"t%d","messages":[`+m+`,`+m+`]}`, i, i, body, i, body)
	}
	threads.WriteString("]")
	for _, tc := range []struct{ name, content string }{{"lines", lines.String()}, {"threads", threads.String()}} {
		b.Run(tc.name, func(b *testing.B) {
			p := writeTemp(b, "b.json", tc.content)
			b.SetBytes(int64(len(tc.content)))
			for b.Loop() {
				r, err := Open(p, sources.Options{Now: jsonNow})
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for {
					_, err := r.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
				r.Close()
				if n == 0 {
					b.Fatal("no records")
				}
			}
		})
	}
}
