package archive

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"

	"github.com/threadlift/threadlift/sources"
)

// The index must give back every envelope exactly as the reader returned
// it: Load, the mapper and the failures file read the rebuilt ones.
func TestIndexRoundTrip(t *testing.T) {
	key := "sha256:" + strings.Repeat("0123456789abcdef", 4)
	envs := []*sources.Envelope{
		{
			Loc: sources.Location{File: "a.mbox", Offset: 1234}, Size: 99,
			MessageID: "c@x", References: []string{"a@x", "b@x"}, ContentKey: key,
			Subject: "Re: hello", Date: time.Date(2021, 3, 4, 5, 6, 7, 8, time.FixedZone("", -7*3600)),
		},
		{ // no Message-ID: the content key is the message key; a date in UTC
			Loc: sources.Location{File: "a.mbox", Offset: 5678}, Size: 10,
			References: []string{"c@x"}, ContentKey: "sha256:" + strings.Repeat("f", 64),
			Subject: "Re: hello", Date: time.Date(2021, 3, 5, 0, 0, 0, 0, time.UTC),
			Issues: []sources.Issue{{Severity: sources.SeverityWarning, Rule: "no-message-id", Reason: "no Message-ID header"}},
		},
		{ // csv: a line, a thread id, no date (rejected), a content key of another form
			Loc: sources.Location{File: "b.csv", Line: 7}, Size: 3,
			MessageID: "d@x", ThreadID: "T-1", ContentKey: "sha256:not-hex",
			Issues: []sources.Issue{{Severity: sources.SeverityError, Rule: "no-date", Reason: "no date"}},
		},
		{ // a named zone and a content key in upper case hex (kept as written)
			Loc: sources.Location{File: "a.mbox", Offset: 9}, Size: 1, MessageID: "e@x",
			ContentKey: "sha256:" + strings.Repeat("AB", 32),
			Date:       time.Date(1999, 12, 31, 23, 59, 59, 0, time.FixedZone("EST", -5*3600)),
		},
	}
	x := newIndex()
	for i, e := range envs {
		mustAdd(t, x, e, i%2)
	}
	x.seal()
	if x.len() != len(envs) {
		t.Fatalf("len = %d, want %d", x.len(), len(envs))
	}
	for i, want := range envs {
		w := *want
		w.Seq = i
		got := mustEnvelope(t, x, i)
		if diff := cmp.Diff(&w, got, cmp.Comparer(func(a, b time.Time) bool {
			_, ao := a.Zone()
			_, bo := b.Zone()
			return a.Equal(b) && ao == bo && a.IsZero() == b.IsZero()
		})); diff != "" {
			t.Errorf("envelope %d (-want +got):\n%s", i, diff)
		}
		if x.key(i) != want.Key() {
			t.Errorf("key(%d) = %q, want %q", i, x.key(i), want.Key())
		}
		if x.src(i) != i%2 {
			t.Errorf("src(%d) = %d, want %d", i, x.src(i), i%2)
		}
	}
	if got := x.date(1).Location(); got != time.UTC {
		t.Errorf("a UTC date comes back in %v", got)
	}
}

// Interned strings must not share memory with what the reader returned,
// and must survive many text blocks.
func TestIndexInternsCopies(t *testing.T) {
	x := newIndex()
	long := strings.Repeat("x", textBlock+10) // bigger than a block
	buf := []byte("id-0@example")
	for i := range 3 * textBlock / 16 {
		buf[3] = byte('a' + i%26)
		mustAdd(t, x, &sources.Envelope{MessageID: string(buf) + strings.Repeat("y", i%7), Subject: long, ContentKey: "k"}, 0)
	}
	x.seal()
	for i := range x.len() {
		want := "id-" + string(rune('a'+i%26)) + "@example" + strings.Repeat("y", i%7)
		if got := x.messageID(i); got != want {
			t.Fatalf("messageID(%d) = %q, want %q", i, got, want)
		}
	}
	if mustEnvelope(t, x, 0).Subject != long {
		t.Fatal("a string longer than a text block was not kept whole")
	}
}

// TestIndexRareParts: what an entry has no room for (a size of 4 GiB or
// more, nanoseconds, more distinct UTC offsets than its zone byte tells
// apart) comes back as it was read, and references end where the next
// entry's begin.
func TestIndexRareParts(t *testing.T) {
	var envs []*sources.Envelope
	for i := range 600 {
		off := (i%300 - 150) * 7 * 60 // 300 distinct offsets, each seen twice
		env := &sources.Envelope{
			Loc:  sources.Location{File: "a.mbox", Offset: int64(i) << 33, Line: i},
			Size: int64(i), MessageID: fmt.Sprintf("m%d@x", i),
			Date: time.Date(2020, 1, 1, 0, i, 0, i%3*1000, time.FixedZone(fmt.Sprintf("Z%d", i), off)),
		}
		switch i % 5 {
		case 0:
			env.Size = 5 << 30
		case 1:
			env.Size = 1<<32 - 1
		case 2:
			env.References = []string{"a@x", fmt.Sprintf("m%d@x", i-1)}
		}
		envs = append(envs, env)
	}
	envs[len(envs)-1].References = []string{"last@x"}
	x := newIndex()
	for _, e := range envs {
		mustAdd(t, x, e, 0)
	}
	x.seal()
	for i, want := range envs {
		got := mustEnvelope(t, x, i)
		wantName, wantOff := want.Date.Zone()
		if i >= 300 {
			wantName, _ = envs[i-300].Date.Zone() // the name first seen with the offset
		}
		name, off := got.Date.Zone()
		if got.Size != want.Size || !got.Date.Equal(want.Date) || off != wantOff || name != wantName ||
			!slices.Equal(got.References, want.References) || got.Loc != want.Loc {
			t.Fatalf("envelope %d: size %d, date %v (%s), refs %q, loc %+v; want %d, %v (%s), %q, %+v",
				i, got.Size, got.Date, name, got.References, got.Loc, want.Size, want.Date, wantName, want.References, want.Loc)
		}
	}
}

// The entry is what each message costs in memory whatever the archive's
// size: keep it at 32 bytes (its cold part spills to disk).
func TestIndexEntrySize(t *testing.T) {
	if n := unsafe.Sizeof(entry{}); n != 32 {
		t.Errorf("entry is %d bytes, want 32", n)
	}
}

func mustAdd(t testing.TB, x *index, env *sources.Envelope, src int) {
	t.Helper()
	if err := x.add(env, src); err != nil {
		t.Fatal(err)
	}
}

func mustEnvelope(t testing.TB, x *index, i int) *sources.Envelope {
	t.Helper()
	env, err := x.envelope(i)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// TestIndexChainedReferences: references stored as a chain to the parent
// (refs.go) come back exactly as read, whatever breaks the chain: a
// client that trims or reorders References, a duplicate id, a message
// that names itself or one not read yet; and a deep chain stores no
// references.
func TestIndexChainedReferences(t *testing.T) {
	type msg struct {
		id   string
		refs []string
	}
	msgs := []msg{
		{"a", nil},
		{"b", []string{"a"}},
		{"c", []string{"a", "b"}},
		{"d", []string{"a", "b", "c"}},     // chained to c, chained to b
		{"e", []string{"a", "c", "d"}},     // trimmed: stored
		{"b", []string{"x"}},               // a duplicate id with other references
		{"f", []string{"a", "b"}},          // the last b does not match: stored
		{"g", []string{"g"}},               // names itself
		{"h", []string{"later"}},           // not read yet
		{"later", []string{"a", "b", "h"}}, // h's refs are [later]: stored
		{"", []string{"a", "b", "c"}},      // no id: chained all the same
		{"i", []string{"a", "a"}},          // repeats
		{"j", []string{"a", "a", "i"}},     // chained to i
		{"k", []string{"e"}},               // e's refs are not empty: stored
	}
	x := newIndex()
	for _, m := range msgs {
		mustAdd(t, x, &sources.Envelope{MessageID: m.id, References: m.refs, ContentKey: "k" + m.id}, 0)
	}
	x.seal()
	var isChained []int
	for i, m := range msgs {
		if got := mustEnvelope(t, x, i).References; !slices.Equal(got, m.refs) {
			t.Errorf("envelope %d (%s): references %q, want %q", i, m.id, got, m.refs)
		}
		if x.at(i).flags&chained != 0 {
			isChained = append(isChained, i)
		}
	}
	if want := []int{1, 2, 3, 10, 12}; !slices.Equal(isChained, want) {
		t.Errorf("chained entries %v, want %v", isChained, want)
	}

	deep := newIndex()
	var refs []string
	for i := range 3000 {
		id := fmt.Sprintf("m%d@x", i)
		mustAdd(t, deep, &sources.Envelope{MessageID: id, References: slices.Clone(refs)}, 0)
		refs = append(refs, id)
	}
	deep.seal()
	if len(deep.refs) != 1 {
		t.Errorf("a chain of 3000 replies stores %d references", len(deep.refs)-1)
	}
	for _, i := range []int{0, 1, 2, 1500, 2999} {
		if got := mustEnvelope(t, deep, i).References; !slices.Equal(got, refs[:i]) {
			t.Errorf("deep envelope %d: %d references, want %d", i, len(got), i)
		}
	}
}
