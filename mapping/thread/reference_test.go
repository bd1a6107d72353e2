package thread

// The string-keyed implementation that BuildItems replaced, kept as a
// test oracle. Its subject joining (JWZ step 5) shares no code with
// thread.go's: refJoinBySubject and refNormalizeSubject are written from
// the rule, plainly, so that the differential fuzz test can catch a
// mistake in either.

import (
	"cmp"
	"slices"
	"strings"
	"unicode/utf8"
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
		threads = append(threads, b)
	}
	if opts.SubjectThreading {
		threads = refJoinBySubject(items, threads)
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

// refJoinBySubject is JWZ step 5 as contract §4 and thread.go's doc
// state it, the slow and obvious way: threads whose earliest messages'
// subjects normalize to the same non-empty text are one thread, and it
// keeps the key of a part whose earliest subject has no reply prefix,
// the earliest such part; when every part starts with a reply, the
// earliest part. The key does not depend on the order the parts are met.
func refJoinBySubject(items []Item, threads []built) []built {
	subject := make([]string, len(threads))
	reply := make([]bool, len(threads))
	for i, t := range threads {
		subject[i], reply[i] = refNormalizeSubject(items[t.first].Subject)
	}
	taken := make([]bool, len(threads))
	var out []built
	for i := range threads {
		if taken[i] {
			continue
		}
		group := []int{i}
		for j := i + 1; j < len(threads) && subject[i] != ""; j++ {
			if !taken[j] && subject[j] == subject[i] {
				group = append(group, j)
				taken[j] = true
			}
		}
		keyOf := group[0]
		for _, j := range group[1:] {
			switch {
			case reply[keyOf] && !reply[j]:
				keyOf = j
			case reply[keyOf] == reply[j] && refLess(items, threads[j].first, threads[keyOf].first):
				keyOf = j
			}
		}
		joined := built{key: threads[keyOf].key}
		for _, j := range group {
			joined.members = append(joined.members, threads[j].members...)
		}
		refSortMembers(items, joined.members)
		out = append(out, joined)
	}
	return out
}

// refNormalizeSubject is normalizeSubject written out by hand from its
// rule: strip, again and again, a leading reply or forward prefix ("Re:",
// "Fwd:", "Fw:", "AW:", "SV:", "Antw:", in any case, maybe counted as
// "Re[2]:", white space around the colon) or a list tag ("[dev]"), then
// fold runs of white space to one space, trim and lower the case. White
// space is ASCII's (tab, LF, FF, CR, space), as in RE2's \s; case is
// Unicode simple folding, as in RE2's (?i) (so "ſv:" is "SV:"). reply
// says whether a reply prefix was stripped.
func refNormalizeSubject(s string) (norm string, reply bool) {
	for {
		rest := refSkipSpace(s)
		if after, ok := refReplyPrefix(rest); ok {
			s, reply = after, true
			continue
		}
		if strings.HasPrefix(rest, "[") {
			if end := strings.IndexByte(rest, ']'); end >= 0 {
				s = refSkipSpace(rest[end+1:])
				continue
			}
		}
		break
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if refIsSpace(s[i]) {
			b.WriteByte(' ')
			for i < len(s) && refIsSpace(s[i]) {
				i++
			}
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	return strings.ToLower(strings.TrimSpace(b.String())), reply
}

// refReplyPrefix strips one reply prefix from the start of s.
func refReplyPrefix(s string) (after string, ok bool) {
	for _, word := range []string{"re", "fwd", "fw", "aw", "sv", "antw"} {
		rest, matched := s, true
		for _, w := range word {
			r, n := utf8.DecodeRuneInString(rest)
			if n == 0 || r == utf8.RuneError && n == 1 || !strings.EqualFold(string(r), string(w)) {
				matched = false
				break
			}
			rest = rest[n:]
		}
		if !matched {
			continue
		}
		if strings.HasPrefix(rest, "[") { // a counter, "Re[2]:"
			d := 1
			for d < len(rest) && rest[d] >= '0' && rest[d] <= '9' {
				d++
			}
			if d > 1 && d < len(rest) && rest[d] == ']' {
				rest = rest[d+1:]
			}
		}
		rest = refSkipSpace(rest)
		if strings.HasPrefix(rest, ":") {
			return refSkipSpace(rest[1:]), true
		}
	}
	return s, false
}

func refIsSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'
}

func refSkipSpace(s string) string {
	for len(s) > 0 && refIsSpace(s[0]) {
		s = s[1:]
	}
	return s
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
