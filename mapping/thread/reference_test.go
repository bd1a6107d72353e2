package thread

// The string-keyed implementation that BuildItems replaced, kept as a
// test oracle.

import (
	"cmp"
	"slices"
)

type refContainer struct {
	id       string
	item     int // -1: empty (the message is referenced but not in the archive)
	parent   *refContainer
	children []*refContainer
	seq      int // order of creation, to keep output deterministic
}

func (c *refContainer) isAncestorOf(d *refContainer) bool {
	for p := d; p != nil; p = p.parent {
		if p == c {
			return true
		}
	}
	return false
}

func (c *refContainer) setParent(p *refContainer) {
	if c.parent == p {
		return
	}
	if c.parent != nil {
		old := c.parent
		old.children = slices.DeleteFunc(old.children, func(x *refContainer) bool { return x == c })
	}
	c.parent = p
	if p != nil {
		p.children = append(p.children, c)
	}
}

// referenceBuild is Build as it was before BuildItems (string-keyed
// maps, one slice per reference list): the oracle of the differential
// fuzz test. It is deterministic: the same items give the same
// threads, keys and member order.
func referenceBuild(items []Item, opts Options) Result {
	var res Result
	byID := make(map[string]*refContainer, len(items))
	byKey := make(map[string]int, len(items))
	groups := make(map[string]*refContainer)
	var all []*refContainer
	newContainer := func(id string) *refContainer {
		c := &refContainer{id: id, item: -1, seq: len(all)}
		all = append(all, c)
		return c
	}
	get := func(id string) *refContainer {
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

		var c *refContainer
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
		var prev *refContainer
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

	var roots []*refContainer
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
		refCollect(r, &b.members)
		if len(b.members) == 0 {
			continue
		}
		refSortMembers(items, b.members)
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
			if refKeepOther(items, *m, t) {
				m.key = t.key
				m.reply = t.reply
			}
			m.members = append(m.members, t.members...)
			refSortMembers(items, m.members)
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
		return cmp.Compare(refMinSeq(items, a.Members), refMinSeq(items, b.Members))
	})
	return res
}

// keepOther reports whether thread b's key should win over a's when the two
// are joined by subject.
func refKeepOther(items []Item, a, b built) bool {
	if a.reply != b.reply {
		return a.reply
	}
	return refLess(items, b.first, a.first)
}

func refCollect(c *refContainer, out *[]int) {
	// Iterative walk: reference chains in real archives can be thousands deep.
	stack := []*refContainer{c}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n.item >= 0 {
			*out = append(*out, n.item)
		}
		stack = append(stack, n.children...)
	}
}

func refLess(items []Item, a, b int) bool {
	if c := items[a].Date.Compare(items[b].Date); c != 0 {
		return c < 0
	}
	return items[a].Seq < items[b].Seq
}

func refSortMembers(items []Item, m []int) {
	slices.SortStableFunc(m, func(a, b int) int {
		if c := items[a].Date.Compare(items[b].Date); c != 0 {
			return c
		}
		return cmp.Compare(items[a].Seq, items[b].Seq)
	})
}

func refMinSeq(items []Item, m []int) int {
	s := items[m[0]].Seq
	for _, i := range m[1:] {
		s = min(s, items[i].Seq)
	}
	return s
}
