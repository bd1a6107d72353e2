package archive

import (
	"cmp"
	"slices"
)

// Corrections (issue 11): a record of a failures file (see
// sources.FailureWriter) that the user fixed and added as a source
// replaces the record it is a copy of. Without that, the fixed copy was a
// duplicate of the broken original (same Message-ID, read first) and was
// never imported, while the thread counted as done.
//
// A copy (an envelope with Corrects set) replaces every other envelope
// with its message key (the copy keeps its original's key: mbox in its
// Message-ID, csv/json in threadlift_key), and the unreadable record at
// the location it names (such a record has no key). Among copies with one
// key, the last read wins: a fix that failed again, copied and fixed once
// more, replaces the first fix. Locations alone do not identify a message
// (the messages of a JSON Lines thread object share a line), so only
// unreadable records are matched by location. A replaced envelope takes
// no part in threading, so the copy takes its place in its thread; it
// still counts as a message found.

// Supersession is an envelope or unreadable record a copy replaced.
type Supersession struct {
	Orig string // location of the replaced record
	By   int    // the copy, an envelope index
	Key  bool   // an envelope with the copy's key; else an unreadable record
}

// Superseded lists what copies replaced, envelopes in source order, then
// unreadable records.
func (a *Archive) Superseded() []Supersession { return a.superseded }

// IsCopy reports whether envelope i is a failures file's copy that takes
// part in threading.
func (a *Archive) IsCopy(i int) bool { return a.copies[i] }

// HasCopy reports whether a thread's members hold a failures file's copy.
func (a *Archive) HasCopy(members []int) bool {
	for _, m := range members {
		if a.copies[m] {
			return true
		}
	}
	return false
}

// Replaced reports whether a copy replaced envelope i: it is in no
// thread.
func (a *Archive) Replaced(i int) bool { return a.replaced[i] }

// supersede finds what the copies replace. It returns the replaced
// envelopes, for threading to leave out, removes the replaced unreadable
// records from a.Bad and fills a.superseded and a.copies.
func (a *Archive) supersede() (map[int]bool, error) {
	if len(a.idx.corrects) == 0 {
		return nil, nil
	}
	byKey := make(map[string]int)
	byLoc := make(map[string]int)
	order := a.sourceOrder()
	for _, i := range order { // in source order: the last copy wins
		if loc, ok := a.idx.corrects[int32(i)]; ok {
			byKey[a.idx.key(i)] = i
			byLoc[loc] = i
		}
	}
	skip := make(map[int]bool)
	a.copies = make(map[int]bool)
	for _, i := range order {
		if by, ok := byKey[a.idx.key(i)]; ok && by != i {
			skip[i] = true
			env, err := a.idx.envelope(i)
			if err != nil {
				return nil, err
			}
			a.superseded = append(a.superseded, Supersession{Orig: env.Loc.String(), By: by, Key: true})
			continue
		}
		if _, copied := a.idx.corrects[int32(i)]; copied {
			a.copies[i] = true
		}
	}
	kept := a.Bad[:0]
	for _, b := range a.Bad {
		loc := b.Err.Loc.String()
		if by, ok := byLoc[loc]; ok {
			a.superseded = append(a.superseded, Supersession{Orig: loc, By: by})
			continue
		}
		kept = append(kept, b)
	}
	a.Bad = kept
	return skip, nil
}

// sourceOrder lists the envelopes in the order of the whole archive:
// index order, but in a chunk (chunks.go), whose recorded envelopes come
// after the new ones.
func (a *Archive) sourceOrder() []int {
	order := make([]int, a.idx.len())
	for i := range order {
		order[i] = i
	}
	if a.since != nil {
		slices.SortFunc(order, func(i, j int) int { return cmp.Compare(a.since.seq[i], a.since.seq[j]) })
	}
	return order
}
