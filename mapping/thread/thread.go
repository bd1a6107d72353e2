package thread

import (
	"cmp"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Item is the light envelope of one message.
type Item struct {
	// ID is the normalized Message-ID; "" when the message has none.
	ID string
	// Refs are the normalized ids of the message's ancestors, oldest first.
	Refs []string
	// Key is the message key: ID, or a content hash when ID is empty.
	Key string
	// Group, when set, is an explicit thread id (csv/json): the item joins
	// the thread of that id and takes no part in JWZ linking.
	Group   string
	Subject string
	Date    time.Time
	// Seq orders items that share a date (source order across the archive).
	Seq int
}

// Options tune Build. The zero value is JWZ without subject joining.
type Options struct {
	// SubjectThreading also joins root sets whose normalized subjects are
	// equal (JWZ step 5).
	SubjectThreading bool
}

// Thread is one conversation: its stable key and its members, as indices
// into the items given to Build, in chronological order (ties: Seq).
type Thread struct {
	Key     string
	Members []int
}

// Duplicate is an item whose message key was already seen: it takes no
// part in threading and is imported once, as Of.
type Duplicate struct {
	Index int
	Of    int
}

// Result is the outcome of Build.
type Result struct {
	Threads    []Thread
	Duplicates []Duplicate
}

// built is a thread under construction.
type built struct {
	key     string
	members []int
	first   int // earliest member, for subject merging
	subject string
	// reply and keyFirst are those of the part whose key a thread joined
	// by subject keeps: whether its subject starts with a reply prefix,
	// and its earliest member.
	reply    bool
	keyFirst int
}

// Items is Build's input in interned form, for callers that hold
// millions of envelopes compactly: Message-IDs and group names are
// symbols, small integers that Name turns back into strings (0 names
// nothing). Building from symbols needs a few dozen bytes per message,
// where string-keyed maps and per-item reference slices need hundreds.
type Items interface {
	Len() int
	// Symbols bounds the symbols: every ID, Refs entry and Group is < Symbols().
	Symbols() int
	Name(sym uint32) string
	// ID is the item's normalized Message-ID, 0 when it has none.
	ID(i int) uint32
	// Refs are the ids of the item's ancestors, oldest first.
	Refs(i int) []uint32
	// Group is an explicit thread id (csv/json), 0 when none: the item
	// joins the thread of that id and takes no part in JWZ linking.
	Group(i int) uint32
	// Key is the message key: Name(ID(i)), or a content hash when the item
	// has no id. "" means Name(ID(i)).
	Key(i int) string
	Subject(i int) string
	Date(i int) time.Time
	// Seq orders items that share a date (source order across the
	// archive); no two items share one.
	Seq(i int) int
}

const none = -1

// node is a JWZ container; links are indices into builder.nodes.
type node struct {
	sym    uint32 // the Message-ID or group it stands for; 0 for an id-less message
	group  bool
	item   int32 // none: empty (the message is referenced but not in the archive)
	parent int32
	child  int32 // first child
	next   int32 // next sibling
}

type builder struct {
	in    Items
	nodes []node
	byID  []int32 // symbol → node of that Message-ID, or none
}

func (b *builder) newNode(sym uint32, group bool) int32 {
	b.nodes = append(b.nodes, node{sym: sym, group: group, item: none, parent: none, child: none, next: none})
	return int32(len(b.nodes) - 1)
}

func (b *builder) get(id uint32) int32 {
	if n := b.byID[id]; n != none {
		return n
	}
	n := b.newNode(id, false)
	b.byID[id] = n
	return n
}

func (b *builder) isAncestorOf(c, d int32) bool {
	for p := d; p != none; p = b.nodes[p].parent {
		if p == c {
			return true
		}
	}
	return false
}

func (b *builder) setParent(c, p int32) {
	n := &b.nodes[c]
	if n.parent == p {
		return
	}
	if old := n.parent; old != none {
		// Unlink c from old's children.
		if b.nodes[old].child == c {
			b.nodes[old].child = n.next
		} else {
			for s := b.nodes[old].child; s != none; s = b.nodes[s].next {
				if b.nodes[s].next == c {
					b.nodes[s].next = n.next
					break
				}
			}
		}
		n.next = none
	}
	n.parent = p
	if p != none {
		n.next = b.nodes[p].child
		b.nodes[p].child = c
	}
}

// itemKey is item i's message key.
func (b *builder) itemKey(i int) string {
	if k := b.in.Key(i); k != "" {
		return k
	}
	return b.in.Name(b.in.ID(i))
}

// key is a node's thread key: the id or group it stands for, else its
// message's key.
func (b *builder) key(c int32) string {
	n := &b.nodes[c]
	if n.sym != 0 {
		return b.in.Name(n.sym)
	}
	if n.item >= 0 {
		return b.in.Key(int(n.item))
	}
	return ""
}

// Build threads items. It is deterministic: the same items give the same
// threads, keys and member order.
func Build(items []Item, opts Options) Result {
	return BuildItems(newItemSlice(items), opts)
}

// BuildItems is Build over interned items.
func BuildItems(in Items, opts Options) Result {
	var res Result
	n := in.Len()
	b := &builder{in: in, nodes: make([]node, 0, n+n/4), byID: make([]int32, in.Symbols())}
	for i := range b.byID {
		b.byID[i] = none
	}
	var groups map[uint32]int32
	// Keys seen that the id nodes cannot answer for: keys that are not
	// their item's Message-ID (content keys of id-less messages), keys of
	// grouped items, and ids that such a key could repeat. A message's
	// own id is not stored here: its node holds it, which keeps threading
	// a few bytes per message.
	var byKey map[string]int32
	// otherKeys are the keys that are not their item's own Message-ID,
	// usually few: an item whose id is one of them must be in byKey, for
	// a later item holding that key to be seen as its duplicate.
	otherKeys := make(map[string]bool)
	for i := range n {
		if k, id := in.Key(i), in.ID(i); k != "" && (id == 0 || k != in.Name(id)) {
			otherKeys[k] = true
		}
	}

	// Visit items in source order so that "first seen" is well defined
	// whatever order the caller collected them in.
	order := make([]int32, n)
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(a, b int32) int { return cmp.Compare(in.Seq(int(a)), in.Seq(int(b))) })

	for _, i32 := range order {
		i := int(i32)
		id, group := in.ID(i), in.Group(i)
		key := in.Key(i)
		idKey := key == "" || (id != 0 && key == in.Name(id))
		if key == "" {
			key = in.Name(id)
		}
		if key != "" {
			if first, seen := byKey[key]; seen {
				res.Duplicates = append(res.Duplicates, Duplicate{Index: i, Of: int(first)})
				continue
			}
			// The first item with this key may be the one that holds the
			// id's node (its key is then its id).
			if idKey && id != 0 {
				if c := b.byID[id]; c != none && b.nodes[c].item >= 0 && b.itemKey(int(b.nodes[c].item)) == key {
					res.Duplicates = append(res.Duplicates, Duplicate{Index: i, Of: int(b.nodes[c].item)})
					continue
				}
			}
			if !idKey || group != 0 || otherKeys[key] {
				if byKey == nil {
					byKey = make(map[string]int32)
				}
				byKey[key] = i32
			}
		}

		if group != 0 {
			g, ok := groups[group]
			if !ok {
				if groups == nil {
					groups = make(map[uint32]int32)
				}
				g = b.newNode(group, true)
				groups[group] = g
			}
			c := b.newNode(0, false)
			b.nodes[c].item = i32
			b.setParent(c, g)
			continue
		}

		var c int32
		if id != 0 {
			c = b.get(id)
			if b.nodes[c].item >= 0 {
				// Same Message-ID but a different content key: still a
				// duplicate by id (contract §4). Its key is now taken.
				res.Duplicates = append(res.Duplicates, Duplicate{Index: i, Of: int(b.nodes[c].item)})
				if idKey && key != "" {
					if byKey == nil {
						byKey = make(map[string]int32)
					}
					byKey[key] = i32
				}
				continue
			}
		} else {
			c = b.newNode(0, false)
		}
		b.nodes[c].item = i32

		// Link the references in order, each the parent of the next,
		// without overriding links already made and without loops.
		prev := int32(none)
		for _, ref := range in.Refs(i) {
			if ref == 0 || ref == id {
				continue
			}
			rc := b.get(ref)
			if prev != none && b.nodes[rc].parent == none && !b.isAncestorOf(rc, prev) {
				b.setParent(rc, prev)
			}
			prev = rc
		}
		// The message's own References are authoritative for its parent.
		if prev != none && prev != c && !b.isAncestorOf(c, prev) {
			b.setParent(c, prev)
		}
	}
	b.byID = nil

	var threads []built
	var stack []int32
	for r := range b.nodes {
		nd := &b.nodes[r]
		if nd.parent != none || (nd.item < 0 && nd.child == none) {
			continue
		}
		t := built{key: b.key(int32(r))}
		stack = append(stack[:0], int32(r))
		for len(stack) > 0 {
			c := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if it := b.nodes[c].item; it >= 0 {
				t.members = append(t.members, int(it))
			}
			for k := b.nodes[c].child; k != none; k = b.nodes[k].next {
				stack = append(stack, k)
			}
		}
		if len(t.members) == 0 {
			continue
		}
		sortMembers(in, t.members)
		t.first, t.keyFirst = t.members[0], t.members[0]
		if opts.SubjectThreading {
			t.subject, t.reply = normalizeSubject(in.Subject(t.first))
		}
		threads = append(threads, t)
	}
	b.nodes = nil

	if opts.SubjectThreading {
		// Merge threads by normalized subject. The merged thread keeps the
		// key of the thread that does not start with a reply prefix, else of
		// the earliest, so that the key is as stable as the data allows.
		bySubject := make(map[string]int)
		merged := threads[:0]
		for _, t := range threads {
			if t.subject == "" {
				merged = append(merged, t)
				continue
			}
			j, ok := bySubject[t.subject]
			if !ok {
				bySubject[t.subject] = len(merged)
				merged = append(merged, t)
				continue
			}
			m := &merged[j]
			if keepOther(in, *m, t) {
				m.key, m.reply, m.keyFirst = t.key, t.reply, t.keyFirst
			}
			m.members = append(m.members, t.members...)
			sortMembers(in, m.members)
			m.first = m.members[0]
		}
		threads = merged
	}

	res.Threads = make([]Thread, len(threads))
	for i, t := range threads {
		res.Threads[i] = Thread{Key: t.key, Members: t.members}
	}
	// Output threads in the order of their first message in the source.
	slices.SortStableFunc(res.Threads, func(a, b Thread) int {
		return cmp.Compare(minSeq(in, a.Members), minSeq(in, b.Members))
	})
	return res
}

// itemSlice interns []Item for BuildItems.
type itemSlice struct {
	items []Item
	names []string
	ids   []uint32
	refs  [][]uint32
	group []uint32
}

func newItemSlice(items []Item) *itemSlice {
	s := &itemSlice{items: items, names: []string{""}, ids: make([]uint32, len(items)),
		refs: make([][]uint32, len(items)), group: make([]uint32, len(items))}
	syms := map[string]uint32{"": 0}
	intern := func(v string) uint32 {
		if n, ok := syms[v]; ok {
			return n
		}
		n := uint32(len(s.names))
		s.names = append(s.names, v)
		syms[v] = n
		return n
	}
	for i, it := range items {
		s.ids[i] = intern(it.ID)
		s.group[i] = intern(it.Group)
		for _, r := range it.Refs {
			s.refs[i] = append(s.refs[i], intern(r))
		}
	}
	return s
}

func (s *itemSlice) Len() int               { return len(s.items) }
func (s *itemSlice) Symbols() int           { return len(s.names) }
func (s *itemSlice) Name(sym uint32) string { return s.names[sym] }
func (s *itemSlice) ID(i int) uint32        { return s.ids[i] }
func (s *itemSlice) Refs(i int) []uint32    { return s.refs[i] }
func (s *itemSlice) Group(i int) uint32     { return s.group[i] }
func (s *itemSlice) Key(i int) string       { return s.items[i].Key }
func (s *itemSlice) Subject(i int) string   { return s.items[i].Subject }
func (s *itemSlice) Date(i int) time.Time   { return s.items[i].Date }
func (s *itemSlice) Seq(i int) int          { return s.items[i].Seq }

// keepOther reports whether thread b's key should win over a's when the two
// are joined by subject: b's part has no reply prefix and a's has, or
// both agree and b's part is the earlier. Parts are compared with the
// part whose key a keeps, not with all of a (which may start with an
// earlier reply), so that the key does not depend on the order the parts
// are met in.
func keepOther(in Items, a, b built) bool {
	if a.reply != b.reply {
		return a.reply
	}
	return less(in, b.keyFirst, a.keyFirst)
}

func less(in Items, a, b int) bool {
	if c := in.Date(a).Compare(in.Date(b)); c != 0 {
		return c < 0
	}
	return in.Seq(a) < in.Seq(b)
}

func sortMembers(in Items, m []int) {
	slices.SortStableFunc(m, func(a, b int) int {
		if c := in.Date(a).Compare(in.Date(b)); c != 0 {
			return c
		}
		return cmp.Compare(in.Seq(a), in.Seq(b))
	})
}

func minSeq(in Items, m []int) int {
	s := in.Seq(m[0])
	for _, i := range m[1:] {
		s = min(s, in.Seq(i))
	}
	return s
}

var (
	replyPrefix = regexp.MustCompile(`(?i)^\s*((re|fwd?|aw|sv|antw)(\[\d+\])?\s*:\s*|\[[^\]]*\]\s*)`)
	spaces      = regexp.MustCompile(`\s+`)
)

// normalizeSubject strips reply/forward prefixes and list tags and folds
// white space and case. reply reports whether a reply prefix was present.
func normalizeSubject(s string) (norm string, reply bool) {
	for {
		loc := replyPrefix.FindStringSubmatchIndex(s)
		if loc == nil {
			break
		}
		if loc[4] >= 0 {
			reply = true
		}
		s = s[loc[1]:]
	}
	return strings.ToLower(strings.TrimSpace(spaces.ReplaceAllString(s, " "))), reply
}
