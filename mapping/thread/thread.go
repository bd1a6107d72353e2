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
	reply   bool
}

type container struct {
	id       string
	item     int // -1: empty (the message is referenced but not in the archive)
	parent   *container
	children []*container
	seq      int // order of creation, to keep output deterministic
}

func (c *container) isAncestorOf(d *container) bool {
	for p := d; p != nil; p = p.parent {
		if p == c {
			return true
		}
	}
	return false
}

func (c *container) setParent(p *container) {
	if c.parent == p {
		return
	}
	if c.parent != nil {
		old := c.parent
		old.children = slices.DeleteFunc(old.children, func(x *container) bool { return x == c })
	}
	c.parent = p
	if p != nil {
		p.children = append(p.children, c)
	}
}

// Build threads items. It is deterministic: the same items give the same
// threads, keys and member order.
func Build(items []Item, opts Options) Result {
	var res Result
	byID := make(map[string]*container, len(items))
	byKey := make(map[string]int, len(items))
	groups := make(map[string]*container)
	var all []*container
	newContainer := func(id string) *container {
		c := &container{id: id, item: -1, seq: len(all)}
		all = append(all, c)
		return c
	}
	get := func(id string) *container {
		if c, ok := byID[id]; ok {
			return c
		}
		c := newContainer(id)
		byID[id] = c
		return c
	}

	// Visit items in source order so that "first seen" is well defined
	// whatever order the caller collected them in.
	order := make([]int, len(items))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(items[a].Seq, items[b].Seq) })

	for _, i := range order {
		it := &items[i]
		key := it.Key
		if key == "" {
			key = it.ID
		}
		if first, seen := byKey[key]; seen && key != "" {
			res.Duplicates = append(res.Duplicates, Duplicate{Index: i, Of: first})
			continue
		}
		byKey[key] = i

		if it.Group != "" {
			g, ok := groups[it.Group]
			if !ok {
				g = newContainer(it.Group)
				groups[it.Group] = g
			}
			c := newContainer("")
			c.item = i
			c.setParent(g)
			continue
		}

		var c *container
		if it.ID != "" {
			c = get(it.ID)
			if c.item >= 0 {
				// Same Message-ID but a different content key: still a
				// duplicate by id (contract §4).
				res.Duplicates = append(res.Duplicates, Duplicate{Index: i, Of: c.item})
				continue
			}
		} else {
			c = newContainer(it.Key)
		}
		c.item = i

		// Link the references in order, each the parent of the next,
		// without overriding links already made and without loops.
		var prev *container
		for _, ref := range it.Refs {
			if ref == "" || ref == it.ID {
				continue
			}
			rc := get(ref)
			if prev != nil && rc.parent == nil && !rc.isAncestorOf(prev) {
				rc.setParent(prev)
			}
			prev = rc
		}
		// The message's own References are authoritative for its parent.
		if prev != nil && prev != c && !c.isAncestorOf(prev) {
			c.setParent(prev)
		}
	}

	var roots []*container
	for _, c := range all {
		if c.parent == nil && (c.item >= 0 || len(c.children) > 0) {
			roots = append(roots, c)
		}
	}

	var threads []built
	for _, r := range roots {
		b := built{key: r.id}
		if b.key == "" && r.item >= 0 {
			b.key = items[r.item].Key
		}
		collect(r, &b.members)
		if len(b.members) == 0 {
			continue
		}
		sortMembers(items, b.members)
		b.first = b.members[0]
		b.subject, b.reply = normalizeSubject(items[b.first].Subject)
		threads = append(threads, b)
	}

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
			if keepOther(items, *m, t) {
				m.key = t.key
				m.reply = t.reply
			}
			m.members = append(m.members, t.members...)
			sortMembers(items, m.members)
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
		return cmp.Compare(minSeq(items, a.Members), minSeq(items, b.Members))
	})
	return res
}

// keepOther reports whether thread b's key should win over a's when the two
// are joined by subject.
func keepOther(items []Item, a, b built) bool {
	if a.reply != b.reply {
		return a.reply
	}
	return less(items, b.first, a.first)
}

func collect(c *container, out *[]int) {
	// Iterative walk: reference chains in real archives can be thousands deep.
	stack := []*container{c}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n.item >= 0 {
			*out = append(*out, n.item)
		}
		stack = append(stack, n.children...)
	}
}

func less(items []Item, a, b int) bool {
	if c := items[a].Date.Compare(items[b].Date); c != 0 {
		return c < 0
	}
	return items[a].Seq < items[b].Seq
}

func sortMembers(items []Item, m []int) {
	slices.SortStableFunc(m, func(a, b int) int {
		if c := items[a].Date.Compare(items[b].Date); c != 0 {
			return c
		}
		return cmp.Compare(items[a].Seq, items[b].Seq)
	})
}

func minSeq(items []Item, m []int) int {
	s := items[m[0]].Seq
	for _, i := range m[1:] {
		s = min(s, items[i].Seq)
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
