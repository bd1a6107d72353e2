package checkpoint

import (
	"fmt"
	"testing"
)

// doneOf is d as a map, asked about keys (those d holds must all be
// among them: d.Len() is checked against what was found).
func doneOf(d *DoneSet, keys ...string) map[string]string {
	out := map[string]string{}
	for _, k := range keys {
		if h, ok := d.Lookup(k); ok {
			out[k] = h
		}
	}
	if len(out) != d.Len() {
		out["(DoneSet.Len)"] = fmt.Sprint(d.Len())
	}
	return out
}

// TestDoneSetLookup: the compact done set answers as the map it replaced:
// every done key with its KeysHash ("" and odd values kept as they are),
// no other key.
func TestDoneSetLookup(t *testing.T) {
	want := map[string]string{"": "", "upgraded": "", "odd": "ABCDEF"}
	for i := range 5000 {
		k := fmt.Sprintf("<%d.thread@example.com>", i)
		want[k] = KeysHash([]string{k, fmt.Sprint(i)})
	}
	d := newDoneSet(len(want))
	for k, h := range want {
		d.add(k, h)
	}
	d.seal()
	if d.Len() != len(want) {
		t.Errorf("Len = %d, want %d", d.Len(), len(want))
	}
	for k, h := range want {
		if got, ok := d.Lookup(k); !ok || got != h {
			t.Errorf("Lookup(%q) = %q, %v; want %q, true", k, got, ok, h)
		}
	}
	for _, k := range []string{"<5000.thread@example.com>", "nope", "Odd", "<1.thread@example.com> "} {
		if got, ok := d.Lookup(k); ok {
			t.Errorf("Lookup(%q) = %q, true; want not done", k, got)
		}
	}
}
