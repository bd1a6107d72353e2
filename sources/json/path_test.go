package json

import (
	"encoding/json"
	"testing"
)

// TestResolvePaths: dotted paths, [] expansion, literal dotted keys.
func TestResolvePaths(t *testing.T) {
	obj := map[string]json.RawMessage{}
	json.Unmarshal([]byte(`{"createdBy":{"email":"a@x","n":{"k":1}},"to_emails":["b@x","c@x"],"cc":[{"email":"d@x"},{"name":"no"},{"email":"e@x"}],"a.b":"lit","one":"x","item.id":7}`), &obj)
	for _, tt := range []struct{ path, want string }{
		{"createdBy.email", `"a@x"`},
		{"createdBy.n.k", `1`},
		{"to_emails[]", `["b@x","c@x"]`},
		{"cc[].email", `["d@x","e@x"]`},
		{"a.b", `"lit"`},
		{"one[]", `["x"]`},
		{"item.id", `7`},
		{"createdBy.missing", ``},
		{"nope.x", ``},
	} {
		if got := string(resolve(obj, tt.path)); got != tt.want {
			t.Errorf("resolve(%q) = %s, want %s", tt.path, got, tt.want)
		}
	}
}

// TestMessagePath: message-only and thread-only paths.
func TestMessagePath(t *testing.T) {
	r := &reader{msgKey: "item.threads"}
	for _, tt := range []struct {
		in, want string
		where    int
	}{
		{"threads[].createdBy.email", "createdBy.email", inMsg},
		{"item.threads[].id", "id", inMsg},
		{"item.id", "item.id", inBoth},
		{"$.id", "id", inThread},
	} {
		if got, w := r.messagePath(tt.in); got != tt.want || w != tt.where {
			t.Errorf("messagePath(%q) = %q %d, want %q %d", tt.in, got, w, tt.want, tt.where)
		}
	}
}

// FuzzResolve: any object and path resolve without panicking, to valid
// JSON or nothing.
func FuzzResolve(f *testing.F) {
	f.Add(`{"a":{"b":[{"c":1}]}}`, "a.b[].c")
	f.Add(`{"a":[[1],[2]]}`, "a[]")
	f.Add(`{"a.b":1}`, "a.b")
	f.Fuzz(func(t *testing.T, doc, path string) {
		var obj map[string]json.RawMessage
		if json.Unmarshal([]byte(doc), &obj) != nil {
			return
		}
		if v := resolve(obj, path); v != nil && !json.Valid(v) {
			t.Fatalf("resolve(%q) = %s, not JSON", path, v)
		}
	})
}
