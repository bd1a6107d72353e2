package archive

import "hash/maphash"

// symbolTable finds an interned string's symbol while the index is
// built: open addressing over the symbols themselves, whose bytes are in
// the index's text. About 6 bytes per symbol at most, where a
// map[string]uint32 took about 40 (a string header and a uint32 per slot,
// at a lower load, and both tables alive while it grows): the table is
// held, with the index, while the whole archive is read (issue 15).
type symbolTable struct {
	seed  maphash.Seed
	slots []uint32 // 0: empty; else a symbol, a position in index.strs
	n     int      // symbols in slots
}

func newSymbolTable() symbolTable {
	return symbolTable{seed: maphash.MakeSeed(), slots: make([]uint32, 1<<12)}
}

// hash is the runtime's string hash (as a map's): maphash.String is several
// times slower on long strings.
func (t *symbolTable) hash(s string) uint64 { return maphash.Comparable(t.seed, s) }

// find returns the symbol of s (h its hash), or 0 and the empty slot
// where s's symbol goes.
func (t *symbolTable) find(x *index, h uint64, s string) (slot int, sym uint32) {
	mask := len(t.slots) - 1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		n := t.slots[i]
		if n == 0 {
			return i, 0
		}
		if x.str(n) == s {
			return i, n
		}
	}
}

// put stores symbol sym in slot, an empty slot find returned; the table
// grows past a load of 3/4.
func (t *symbolTable) put(x *index, slot int, sym uint32) {
	t.slots[slot] = sym
	t.n++
	if 4*t.n <= 3*len(t.slots) {
		return
	}
	old := t.slots
	t.slots = make([]uint32, 2*len(old))
	mask := len(t.slots) - 1
	for _, n := range old {
		if n == 0 {
			continue
		}
		i := int(t.hash(x.str(n))) & mask
		for t.slots[i] != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = n
	}
}
