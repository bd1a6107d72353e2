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
	// groups are the containers of explicit thread ids.
	groups map[uint32]int32
	// byKey holds the keys seen that the id nodes cannot answer for
	// (repeatsKey); otherKeys those that are not their item's Message-ID.
	byKey     map[string]int32
	otherKeys map[string]bool
	dups      []Duplicate
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

// BuildItems is Build over interned items. It runs JWZ's steps in turn:
// link every message under its references (dropping duplicates on the
// way), gather the root sets into threads, optionally merge threads by
// subject, and order the threads by their first message in the source.
func BuildItems(in Items, opts Options) Result {
	b := newBuilder(in)
	b.link(sourceOrder(in))
	// What only linking needs goes before the threads are gathered.
	b.byID, b.byKey, b.groups, b.otherKeys = nil, nil, nil, nil
	threads := b.gather(opts.SubjectThreading)
	b.nodes = nil
	if opts.SubjectThreading {
		threads = mergeBySubject(in, threads)
	}
	return Result{Threads: ordered(in, threads), Duplicates: b.dups}
}

// newBuilder starts the containers for in: none yet, room for the
// messages and a quarter more for referenced ones, no id known.
func newBuilder(in Items) *builder {
	n := in.Len()
	b := &builder{in: in, nodes: make([]node, 0, n+n/4), byID: make([]int32, in.Symbols()), otherKeys: otherKeys(in)}
	for i := range b.byID {
		b.byID[i] = none
	}
	return b
}

// otherKeys are the keys that are not their item's own Message-ID,
// usually few: an item whose id is one of them must be in byKey, for a
// later item holding that key to be seen as its duplicate.
func otherKeys(in Items) map[string]bool {
	keys := make(map[string]bool)
	for i := range in.Len() {
		if k, id := in.Key(i), in.ID(i); k != "" && (id == 0 || k != in.Name(id)) {
			keys[k] = true
		}
	}
	return keys
}

// sourceOrder lists the items in source order, so that "first seen" is
// well defined whatever order the caller collected them in.
func sourceOrder(in Items) []int32 {
	order := make([]int32, in.Len())
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(a, b int32) int { return cmp.Compare(in.Seq(int(a)), in.Seq(int(b))) })
	return order
}

// link is JWZ's first step: each item, visited in order, gets a
// container under its references (or under its group's), unless it
// repeats a message key seen before.
func (b *builder) link(order []int32) {
	for _, i := range order {
		b.add(i)
	}
}

// add links item i, or records it as a duplicate.
func (b *builder) add(i int32) {
	in := b.in
	id, group := in.ID(int(i)), in.Group(int(i))
	key := in.Key(int(i))
	idKey := key == "" || (id != 0 && key == in.Name(id))
	if key == "" {
		key = in.Name(id)
	}
	if key != "" && b.repeatsKey(i, id, key, idKey, group != 0) {
		return
	}
	if group != 0 {
		b.addToGroup(i, group)
		return
	}
	b.addLinked(i, id, key, idKey)
}

// repeatsKey reports whether item i repeats a key seen before, and then
// records it as a duplicate. Otherwise it remembers the key where the id
// nodes cannot answer for it: keys that are not their item's Message-ID
// (content keys of id-less messages), keys of grouped items, and ids that
// such a key could repeat. A message's own id is not stored there: its
// node holds it, which keeps threading a few bytes per message.
func (b *builder) repeatsKey(i int32, id uint32, key string, idKey, grouped bool) bool {
	if first, seen := b.byKey[key]; seen {
		b.dups = append(b.dups, Duplicate{Index: int(i), Of: int(first)})
		return true
	}
	// The first item with this key may be the one that holds the id's
	// node (its key is then its id).
	if idKey && id != 0 {
		if c := b.byID[id]; c != none && b.nodes[c].item >= 0 && b.itemKey(int(b.nodes[c].item)) == key {
			b.dups = append(b.dups, Duplicate{Index: int(i), Of: int(b.nodes[c].item)})
			return true
		}
	}
	if !idKey || grouped || b.otherKeys[key] {
		b.rememberKey(key, i)
	}
	return false
}

func (b *builder) rememberKey(key string, i int32) {
	if b.byKey == nil {
		b.byKey = make(map[string]int32)
	}
	b.byKey[key] = i
}

// addToGroup puts item i under the container of its explicit thread id:
// it takes no part in JWZ linking.
func (b *builder) addToGroup(i int32, group uint32) {
	g, ok := b.groups[group]
	if !ok {
		if b.groups == nil {
			b.groups = make(map[uint32]int32)
		}
		g = b.newNode(group, true)
		b.groups[group] = g
	}
	c := b.newNode(0, false)
	b.nodes[c].item = i
	b.setParent(c, g)
}

// addLinked gives item i the container of its Message-ID (a new one when
// it has none) and links it under its references.
func (b *builder) addLinked(i int32, id uint32, key string, idKey bool) {
	var c int32
	if id != 0 {
		c = b.get(id)
		if b.nodes[c].item >= 0 {
			// Same Message-ID but a different content key: still a
			// duplicate by id (contract §4). Its key is now taken.
			b.dups = append(b.dups, Duplicate{Index: int(i), Of: int(b.nodes[c].item)})
			if idKey && key != "" {
				b.rememberKey(key, i)
			}
			return
		}
	} else {
		c = b.newNode(0, false)
	}
	b.nodes[c].item = i
	b.linkRefs(c, id, b.in.Refs(int(i)))
}

// linkRefs links the references in order, each the parent of the next,
// without overriding links already made and without loops; the last is
// c's parent.
func (b *builder) linkRefs(c int32, id uint32, refs []uint32) {
	prev := int32(none)
	for _, ref := range refs {
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

// gather turns every root with a message below it into a thread, its
// members in chronological order; with subjects, each thread's
// normalized subject is noted for merging.
func (b *builder) gather(subjects bool) []built {
	var threads []built
	var stack []int32
	for r := range b.nodes {
		nd := &b.nodes[r]
		if nd.parent != none || (nd.item < 0 && nd.child == none) {
			continue
		}
		t := built{key: b.key(int32(r))}
		t.members, stack = b.members(int32(r), stack)
		if len(t.members) == 0 {
			continue
		}
		sortMembers(b.in, t.members)
		t.first, t.keyFirst = t.members[0], t.members[0]
		if subjects {
			t.subject, t.reply = normalizeSubject(b.in.Subject(t.first))
		}
		threads = append(threads, t)
	}
	return threads
}

// members lists the items in the tree under root, using stack (returned
// for reuse) as the walk's stack.
func (b *builder) members(root int32, stack []int32) ([]int, []int32) {
	var members []int
	stack = append(stack[:0], root)
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if it := b.nodes[c].item; it >= 0 {
			members = append(members, int(it))
		}
		for k := b.nodes[c].child; k != none; k = b.nodes[k].next {
			stack = append(stack, k)
		}
	}
	return members, stack
}

// mergeBySubject joins threads whose normalized subjects are equal (JWZ
// step 5). The merged thread keeps the key of the thread that does not
// start with a reply prefix, else of the earliest, so that the key is as
// stable as the data allows.
func mergeBySubject(in Items, threads []built) []built {
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
	return merged
}

// ordered returns the threads in the order of their first message in the
// source.
func ordered(in Items, threads []built) []Thread {
	out := make([]Thread, len(threads))
	for i, t := range threads {
		out[i] = Thread{Key: t.key, Members: t.members}
	}
	slices.SortStableFunc(out, func(a, b Thread) int {
		return cmp.Compare(minSeq(in, a.Members), minSeq(in, b.Members))
	})
	return out
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
