package thread

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func day(d int) time.Time { return time.Date(2020, 1, d, 0, 0, 0, 0, time.UTC) }

// summary renders threads as "key: id,id,..." using item keys, for diffs.
func summary(items []Item, r Result) []string {
	var out []string
	for _, t := range r.Threads {
		s := t.Key + ":"
		for i, m := range t.Members {
			if i > 0 {
				s += ","
			}
			s += items[m].Key
		}
		out = append(out, s)
	}
	for _, d := range r.Duplicates {
		out = append(out, fmt.Sprintf("dup %d of %d", d.Index, d.Of))
	}
	return out
}

func msg(seq int, id string, d int, refs ...string) Item {
	return Item{ID: id, Key: id, Refs: refs, Date: day(d), Seq: seq, Subject: "s"}
}

func TestBuild(t *testing.T) {
	tests := []struct {
		name  string
		items []Item
		opts  Options
		want  []string
	}{
		{
			name:  "lone messages are their own threads",
			items: []Item{msg(0, "a", 1), msg(1, "b", 2)},
			want:  []string{"a:a", "b:b"},
		},
		{
			name:  "reply chain by References, chronological members",
			items: []Item{msg(0, "c", 3, "a", "b"), msg(1, "a", 1), msg(2, "b", 2, "a")},
			want:  []string{"a:a,b,c"},
		},
		{
			name: "missing root: siblings share a thread keyed by the missing id",
			items: []Item{
				msg(0, "r1", 2, "root"),
				msg(1, "r2", 3, "root"),
			},
			want: []string{"root:r1,r2"},
		},
		{
			name: "key stays when a backfill brings the missing root",
			items: []Item{
				msg(0, "r1", 2, "root"),
				msg(1, "r2", 3, "root"),
				msg(2, "root", 1),
			},
			want: []string{"root:root,r1,r2"},
		},
		{
			name: "deep missing chain keys on the topmost id",
			items: []Item{
				msg(0, "x", 5, "top", "mid"),
			},
			want: []string{"top:x"},
		},
		{
			name:  "repeated Message-ID is a duplicate and takes no part in threading",
			items: []Item{msg(0, "a", 1), msg(1, "a", 2, "zzz"), msg(2, "b", 3, "a")},
			want:  []string{"a:a,b", "dup 1 of 0"},
		},
		{
			name: "reference loop does not hang or lose messages",
			items: []Item{
				msg(0, "a", 1, "b"),
				msg(1, "b", 2, "a"),
			},
			// a named b as its parent first; b's claim on a would close a loop.
			want: []string{"b:a,b"},
		},
		{
			name:  "self reference ignored",
			items: []Item{msg(0, "a", 1, "a")},
			want:  []string{"a:a"},
		},
		{
			name: "message without id keyed by its content key, joins its parent",
			items: []Item{
				msg(0, "a", 1),
				{Key: "sha256:01", Refs: []string{"a"}, Date: day(2), Seq: 1},
				{Key: "sha256:02", Date: day(3), Seq: 2},
			},
			want: []string{"a:a,sha256:01", "sha256:02:sha256:02"},
		},
		{
			name: "ties in date keep source order",
			items: []Item{
				msg(0, "a", 1), msg(1, "c", 2, "a"), msg(2, "b", 2, "a"),
			},
			want: []string{"a:a,c,b"},
		},
		{
			name: "explicit groups (csv/json)",
			items: []Item{
				{Key: "m2", Group: "T1", Date: day(2), Seq: 0},
				{Key: "m1", Group: "T1", Date: day(1), Seq: 1},
				{Key: "m3", Group: "T2", Date: day(1), Seq: 2},
				{Key: "m1", Group: "T1", Date: day(5), Seq: 3},
			},
			want: []string{"T1:m1,m2", "T2:m3", "dup 3 of 1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := summary(tt.items, Build(tt.items, tt.opts))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Build() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSubjectThreading(t *testing.T) {
	items := []Item{
		{ID: "b", Key: "b", Subject: "Re: Printer on fire", Date: day(2), Seq: 0},
		{ID: "a", Key: "a", Subject: "Printer  on FIRE", Date: day(3), Seq: 1},
		{ID: "c", Key: "c", Subject: "[list] Fwd: printer on fire", Date: day(1), Seq: 2},
		{ID: "d", Key: "d", Subject: "Other", Date: day(1), Seq: 3},
	}
	off := summary(items, Build(items, Options{}))
	if len(off) != 4 {
		t.Fatalf("without subject threading got %v, want 4 threads", off)
	}
	got := summary(items, Build(items, Options{SubjectThreading: true}))
	// "a" has no reply prefix, so its id keys the joined thread.
	want := []string{"a:c,b,a", "d:d"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Build(subject) mismatch (-want +got):\n%s", diff)
	}
}

// TestSubjectJoinKey: parts joined by subject keep the key of the
// earliest part whose subject has no reply prefix (else of the earliest
// part), whatever order the parts are met in. Before, a later part took
// the key only if it was earlier than every part met so far, replies
// included: an early reply part made the key depend on the order.
func TestSubjectJoinKey(t *testing.T) {
	reply := Item{ID: "reply", Key: "reply", Subject: "Re: printer", Date: day(1)}
	late := Item{ID: "late", Key: "late", Subject: "printer", Date: day(3)}
	early := Item{ID: "early", Key: "early", Subject: "printer", Date: day(2)}
	replyLater := Item{ID: "reply2", Key: "reply2", Subject: "Re: printer", Date: day(4)}
	in := func(its ...Item) []Item {
		for i := range its {
			its[i].Seq = i
		}
		return its
	}
	tests := []struct {
		name  string
		items []Item
		want  string
	}{
		{"plain parts only", in(late, early), "early"},
		{"an earlier reply part met first", in(reply, late, early), "early"},
		{"an earlier reply part met last", in(late, early, reply), "early"},
		{"replies only: the earliest", in(replyLater, reply), "reply"},
		{"a plain part wins over an earlier reply", in(reply, late), "late"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Build(tt.items, Options{SubjectThreading: true})
			if len(r.Threads) != 1 || r.Threads[0].Key != tt.want {
				t.Errorf("Build = %v, want one thread keyed %s", summary(tt.items, r), tt.want)
			}
		})
	}
}

func TestNormalizeSubject(t *testing.T) {
	tests := []struct {
		in, want string
		reply    bool
	}{
		{"Hello", "hello", false},
		{"Re: Hello", "hello", true},
		{"RE[2]: Re: hello", "hello", true},
		{"[dev] Re: [PATCH] x  y", "x y", true},
		{"Fwd: a", "a", true},
		{"", "", false},
	}
	for _, tt := range tests {
		got, reply := normalizeSubject(tt.in)
		if got != tt.want || reply != tt.reply {
			t.Errorf("normalizeSubject(%q) = %q,%v, want %q,%v", tt.in, got, reply, tt.want, tt.reply)
		}
	}
}

// FuzzNormalizeSubjectMatchesReference checks normalizeSubject (a
// regexp) against refNormalizeSubject (the rule written out by hand).
func FuzzNormalizeSubjectMatchesReference(f *testing.F) {
	for _, s := range []string{"Hello", "Re: Hello", "RE[2]: Re: hello", "[dev] Re: [PATCH] x  y", "Fwd: a", "",
		"ſv: x", "Re [2]: x", "Re[2] : x", "re[]: x", "[a]Re:x", " \v Re: x", "\xff Re: x", "Fwd:Fw:AW:SV:Antw: [x] y",
		"fwdd: x", "fw d: x", "[unclosed re: x", "Re:\r\n\tx\u00a0y", "ANTW :  \f", "[]]]: x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, gotReply := normalizeSubject(s)
		want, wantReply := refNormalizeSubject(s)
		if got != want || gotReply != wantReply {
			t.Fatalf("normalizeSubject(%q) = %q, %v; the rule gives %q, %v", s, got, gotReply, want, wantReply)
		}
	})
}

func TestEveryItemPlacedOnce(t *testing.T) {
	// A large tangled input: every item ends in exactly one thread or is a
	// duplicate, never lost, never twice.
	var items []Item
	for i := 0; i < 2000; i++ {
		id := fmt.Sprintf("m%d", i%1700) // some repeats
		var refs []string
		if i%3 != 0 {
			refs = []string{fmt.Sprintf("m%d", (i*7)%1900), fmt.Sprintf("m%d", (i*13)%2100)}
		}
		items = append(items, Item{ID: id, Key: id, Refs: refs, Date: day(1 + i%28), Seq: i})
	}
	r := Build(items, Options{})
	seen := make(map[int]int)
	for _, th := range r.Threads {
		for _, m := range th.Members {
			seen[m]++
		}
	}
	for _, d := range r.Duplicates {
		seen[d.Index]++
	}
	for i := range items {
		if seen[i] != 1 {
			t.Fatalf("item %d placed %d times, want 1", i, seen[i])
		}
	}
}

func FuzzBuild(f *testing.F) {
	f.Add([]byte{1, 2, 3, 0, 1, 1, 2})
	f.Add([]byte{0, 0, 0, 5, 5, 5})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 600 {
			return
		}
		var items []Item
		for i := 0; i+2 < len(data); i += 3 {
			id := fmt.Sprintf("m%d", data[i]%32)
			if data[i]%7 == 0 {
				id = ""
			}
			refs := []string{fmt.Sprintf("m%d", data[i+1]%32), fmt.Sprintf("m%d", data[i+2]%32)}
			key := id
			if key == "" {
				key = fmt.Sprintf("sha256:%d", i)
			}
			items = append(items, Item{ID: id, Key: key, Refs: refs, Seq: i, Date: day(1 + int(data[i+2]%20))})
		}
		r := Build(items, Options{SubjectThreading: len(data)%2 == 0})
		n := len(r.Duplicates)
		for _, th := range r.Threads {
			if th.Key == "" {
				t.Fatalf("thread with empty key: %+v", th)
			}
			n += len(th.Members)
		}
		if n != len(items) {
			t.Fatalf("placed %d of %d items", n, len(items))
		}
	})
}

func BenchmarkBuild(b *testing.B) {
	var items []Item
	for i := 0; i < 25000; i++ {
		id := fmt.Sprintf("<%d@example.com>", i)
		var refs []string
		if i%10 != 0 {
			refs = []string{fmt.Sprintf("<%d@example.com>", i-i%10)}
		}
		items = append(items, Item{ID: id, Key: id, Refs: refs, Date: day(1 + i%28), Seq: i})
	}
	b.ReportAllocs()
	for b.Loop() {
		Build(items, Options{})
	}
}

// FuzzBuildMatchesReference checks BuildItems against the string-keyed
// implementation it replaced: same threads, keys, member order and
// duplicates, for tangled ids, id-less messages, groups, repeated keys and
// subject joining.
func FuzzBuildMatchesReference(f *testing.F) {
	f.Add([]byte{1, 2, 3, 0, 1, 1, 2}, false)
	f.Add([]byte{0, 0, 0, 5, 5, 5, 7, 14, 21, 3, 3, 3}, true)
	f.Add([]byte{9, 1, 2, 9, 2, 1, 10, 10, 10, 11, 11, 11}, true)
	f.Add([]byte{48, 0, 0, 7, 48, 3}, false) // m8, then an id-less item keyed m8
	f.Fuzz(func(t *testing.T, data []byte, subjects bool) {
		if len(data) > 900 {
			return
		}
		var items []Item
		for i := 0; i+2 < len(data); i += 3 {
			a, r1, r2 := data[i], data[i+1], data[i+2]
			it := Item{ID: fmt.Sprintf("m%d", a%40), Seq: i, Date: day(1 + int(r2%20))}
			it.Key = it.ID
			switch {
			case a%7 == 0: // no Message-ID: a content key, sometimes repeated, sometimes another item's id
				it.ID = ""
				it.Key = fmt.Sprintf("sha256:%d", r1%5)
				if r2%3 == 0 {
					it.Key = fmt.Sprintf("m%d", r1%40)
				}
			case a%11 == 0: // an explicit thread id
				it.Group = fmt.Sprintf("g%d", r1%3)
			case a%13 == 0: // same id, another content (or another item's id as key)
				it.Key = fmt.Sprintf("sha256:x%d", r2%4)
				if r1%4 == 0 {
					it.Key = fmt.Sprintf("m%d", r2%40)
				}
			}
			if r1%5 != 0 {
				it.Refs = []string{fmt.Sprintf("m%d", r1%40), fmt.Sprintf("m%d", r2%40)}
			}
			it.Subject = []string{"Hello", "Re: hello", "[list] hello", "other", "", "Fwd: [list] HELLO", "AW:other"}[(int(a)+int(r2))%7]
			items = append(items, it)
		}
		opts := Options{SubjectThreading: subjects}
		got, want := Build(items, opts), referenceBuild(items, opts)
		if diff := cmp.Diff(summary(items, want), summary(items, got)); diff != "" {
			t.Fatalf("Build differs from the reference (-want +got):\n%s", diff)
		}
	})
}
