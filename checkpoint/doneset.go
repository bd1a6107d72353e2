package checkpoint

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"slices"
)

// DoneSet is the done threads of Resume, each thread's key with the
// KeysHash it was completed with, in about 33 bytes per thread however
// long the key: a sorted array of a 128-bit digest of the key and the
// KeysHash's 16 bytes. A map of the keys themselves cost ~150 bytes per
// thread (issue 15: a resumed run on a 5-million-message archive).
//
// A digest stands for its key: two keys share one with a probability
// below 2^-100 for any archive, the bar KeysHash (128 bits) already sets
// for "completed with exactly these keys".
type DoneSet struct {
	sums []doneSum // sorted by key
	// other holds the rare done threads whose KeysHash is not what
	// KeysHash writes (32 lowercase hex digits), e.g. "" after an upgrade.
	other map[string]string
}

type doneSum struct {
	key  [16]byte // keyDigest of the thread's key
	hash [16]byte // its KeysHash, decoded
}

func keyDigest(key string) (d [16]byte) {
	s := sha256.Sum256([]byte(key))
	copy(d[:], s[:16])
	return d
}

func newDoneSet(n int) *DoneSet {
	return &DoneSet{sums: make([]doneSum, 0, n)}
}

// add records a done thread; seal must follow the last add.
func (d *DoneSet) add(key, keysHash string) {
	var h [16]byte
	if len(keysHash) == 2*len(h) {
		if _, err := hex.Decode(h[:], []byte(keysHash)); err == nil && hex.EncodeToString(h[:]) == keysHash {
			d.sums = append(d.sums, doneSum{key: keyDigest(key), hash: h})
			return
		}
	}
	if d.other == nil {
		d.other = make(map[string]string)
	}
	d.other[key] = keysHash
}

func (d *DoneSet) seal() {
	slices.SortFunc(d.sums, func(a, b doneSum) int { return bytes.Compare(a.key[:], b.key[:]) })
	d.sums = slices.Clip(d.sums)
}

// Len is the number of done threads.
func (d *DoneSet) Len() int { return len(d.sums) + len(d.other) }

// Lookup returns the KeysHash a done thread was completed with ("" when
// unknown), and whether key is a done thread.
func (d *DoneSet) Lookup(key string) (keysHash string, done bool) {
	if h, ok := d.other[key]; ok {
		return h, true
	}
	k := keyDigest(key)
	i, ok := slices.BinarySearchFunc(d.sums, k, func(s doneSum, k [16]byte) int { return bytes.Compare(s.key[:], k[:]) })
	if !ok {
		return "", false
	}
	return hex.EncodeToString(d.sums[i].hash[:]), true
}
