package formats

import (
	"testing"

	"github.com/threadlift/threadlift/sources"

	"github.com/google/go-cmp/cmp"
)

// TestThreadKeyPrefix: two exports that both number their conversations
// and messages 1..N stay apart when each source has its own
// thread_key_prefix. The prefix goes before thread_id (the thread key),
// before message_id (the message key), and into the content hash of a
// record without message_id, for csv and json alike.
func TestThreadKeyPrefix(t *testing.T) {
	csvPath := writeTemp(t, "a.csv", "thread_id,message_id,created_at,from,to,body\n"+
		"1,1,2024-01-01 10:00:00,a@example.com,b@example.com,hello\n"+
		"1,,2024-01-01 11:00:00,b@example.com,a@example.com,reply\n")
	jsonPath := writeTemp(t, "b.jsonl", `{"thread_id":"1","message_id":"1","created_at":"2024-01-01 10:00:00","from":"a@example.com","to":"b@example.com","body":"hello"}`+"\n"+
		`{"thread_id":1,"created_at":"2024-01-01 11:00:00","from":"b@example.com","to":"a@example.com","body":"reply"}`+"\n")
	type got struct{ Thread, Key string }
	want := func(p string) []got {
		return []got{{p + "1", p + "1"}, {p + "1", contentKey(p+"1", "2024-01-01 11:00:00", "b@example.com", "reply")}}
	}
	for _, path := range []string{csvPath, jsonPath} {
		for _, prefix := range []string{"", "export-b:"} {
			typ := "csv"
			if path == jsonPath {
				typ = "json"
			}
			r, err := Registry().Open(typ, path, sources.Options{Now: jsonNow, ThreadKeyPrefix: prefix})
			if err != nil {
				t.Fatal(err)
			}
			var out []got
			for {
				env, err := r.Next()
				if err != nil {
					break
				}
				out = append(out, got{env.ThreadID, env.Key()})
			}
			r.Close()
			if diff := cmp.Diff(want(prefix), out); diff != "" {
				t.Errorf("%s with prefix %q (-want +got):\n%s", typ, prefix, diff)
			}
		}
	}
}
