package archive

import "slices"

// References (issue 15). A reply's References are, most of the time, its
// parent's References and the parent's id: stored as they are, a thread
// of depth d holds d(d+1)/2 of them, about five per message on a real
// archive (20 bytes). An entry whose references are exactly those of an
// earlier entry (the last with the id its last reference names) followed
// by that entry's id is chained to it instead, and stores none: its
// references are rebuilt by walking up the chain. Others are stored in
// index.refs as a count and the references.

// addRefs interns entry i's references and sets e.refs (and chained) to
// say where they are.
func (x *index) addRefs(e *entry, refs []string) {
	if len(refs) == 0 {
		e.refs = 0 // index.refs[0] is a count of 0
		return
	}
	syms := x.scratch[:0]
	for _, r := range refs {
		syms = append(syms, x.intern(r))
	}
	x.scratch = syms
	last := syms[len(syms)-1]
	if int(last) < len(x.lastOf) {
		if j := int(x.lastOf[last]) - 1; j >= 0 && x.refsEqual(j, syms[:len(syms)-1]) {
			e.refs = uint32(j)
			e.flags |= chained
			return
		}
	}
	e.refs = uint32(len(x.refs))
	x.refs = append(x.refs, uint32(len(syms)))
	x.refs = append(x.refs, syms...)
}

// sawID remembers that entry i has id sym, for the entries after it to
// chain to.
func (x *index) sawID(sym uint32, i int) {
	if sym == 0 {
		return
	}
	if int(sym) >= len(x.lastOf) {
		x.lastOf = slices.Grow(x.lastOf, int(sym)+1-len(x.lastOf))
		x.lastOf = x.lastOf[:cap(x.lastOf)]
	}
	x.lastOf[sym] = int32(i) + 1
}

// storedRefs is the stored references of an entry that is not chained.
func (x *index) storedRefs(e *entry) []uint32 {
	n := x.refs[e.refs]
	return x.refs[e.refs+1 : e.refs+1+n]
}

// refsEqual reports whether entry j's references are r.
func (x *index) refsEqual(j int, r []uint32) bool {
	for {
		e := x.at(j)
		if e.flags&chained == 0 {
			return slices.Equal(x.storedRefs(e), r)
		}
		p := int(e.refs)
		if len(r) == 0 || r[len(r)-1] != x.at(p).id {
			return false
		}
		r, j = r[:len(r)-1], p
	}
}

// refsOf is entry i's references. The slice is the index's own when the
// entry is not chained: not to be written.
func (x *index) refsOf(i int) []uint32 {
	e := x.at(i)
	if e.flags&chained == 0 {
		return x.storedRefs(e)
	}
	depth := 0
	for e.flags&chained != 0 {
		depth++
		e = x.at(int(e.refs))
	}
	base := x.storedRefs(e)
	out := make([]uint32, len(base)+depth)
	copy(out, base)
	e = x.at(i)
	for k := len(out) - 1; k >= len(base); k-- {
		p := x.at(int(e.refs))
		out[k] = p.id
		e = p
	}
	return out
}
