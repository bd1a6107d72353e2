package pipeline

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/threadlift/threadlift/mapping/thread"
	"github.com/threadlift/threadlift/pipeline/archive"
)

// What verify keeps of the plan between its two passes (issue 15): the
// plan maps every thread once, a batch at a time when the archive is
// read in batches (readForReport), and keeps per thread only its ticket,
// where to load it again and a digest of its key (about 48 bytes,
// whatever the thread's size; nothing per message). Reading the tickets
// back then loads their threads again: from the whole archive when it was
// read whole, else a group of tickets' threads at a time from the
// temporary record, about Options.ReadChunk messages of them.

// plannedThread is a thread the plan puts on a ticket.
type plannedThread struct {
	ticket int64
	// at loads the thread again: its index in the whole archive's
	// Threads, or its recorded id (Archive.RecordedIDs) when the archive
	// is read in batches.
	at int64
	// envelopes are its messages and duplicates: what loading it costs.
	envelopes int32
}

// plannedTicket is a ticket to read back and its threads, in thread
// order.
type plannedTicket struct {
	id        int64
	threads   []plannedThread
	envelopes int // of its threads
}

// keyTickets maps a thread key to the ticket the plan puts it on, to
// tell a side conversation on the wrong ticket: a sorted array of a
// 128-bit digest of each key (as checkpoint.DoneSet: two keys share one
// with a probability below 2^-100) and its ticket, 24 bytes a thread
// where a map of the keys cost ~100.
type keyTickets []keyTicket

type keyTicket struct {
	key    [16]byte
	ticket int64
}

func threadKeyDigest(key string) (d [16]byte) {
	s := sha256.Sum256([]byte(key))
	copy(d[:], s[:16])
	return d
}

func compareKeyTicket(a, b keyTicket) int { return bytes.Compare(a.key[:], b.key[:]) }

// seal sorts k for ticketOf. Of threads sharing a key, the last one
// planned wins.
func (k keyTickets) seal() keyTickets {
	slices.SortStableFunc(k, compareKeyTicket)
	out := k[:0]
	for i := range k {
		if i+1 < len(k) && k[i+1].key == k[i].key {
			continue
		}
		out = append(out, k[i])
	}
	return out
}

// ticketOf is the ticket the plan puts the thread key on; 0 when none.
func (k keyTickets) ticketOf(key string) int64 {
	i, ok := slices.BinarySearchFunc(k, keyTicket{key: threadKeyDigest(key)}, compareKeyTicket)
	if !ok {
		return 0
	}
	return k[i].ticket
}

// sortPlanned groups the planned threads by ticket, in ascending ticket
// order, each ticket's threads in thread order.
func (v *verifier) sortPlanned() {
	slices.SortStableFunc(v.planned, func(x, y plannedThread) int { return cmp.Compare(x.ticket, y.ticket) })
	v.keys = v.keys.seal()
	for i := 0; i < len(v.planned); {
		j := i + 1
		for j < len(v.planned) && v.planned[j].ticket == v.planned[i].ticket {
			j++
		}
		v.rep.TicketsTotal++
		i = j
	}
}

// loadedThreads is what a ticket's threads are mapped again from when
// the ticket is read back: the whole archive, or the threads of a group
// of tickets loaded from the temporary record, closed by the last
// holder's release.
type loadedThreads struct {
	a       *archive.Archive
	at      map[int64]int // recorded id → its index in a.Threads; nil for the whole archive
	holders atomic.Int32
}

func (l *loadedThreads) thread(at int64) (thread.Thread, error) {
	if l.at == nil {
		return l.a.Threads[at], nil
	}
	i, ok := l.at[at]
	if !ok {
		return thread.Thread{}, fmt.Errorf("thread %d is not in the temporary record", at)
	}
	return l.a.Threads[i], nil
}

func (l *loadedThreads) hold() { l.holders.Add(1) }

func (l *loadedThreads) release() {
	if l.at != nil && l.holders.Add(-1) == 0 {
		l.a.Close()
	}
}

// threadLoader hands each ticket, in the order they are read back, what
// its threads are mapped again from: when the archive was read in
// batches, the tickets' threads are loaded a group of tickets at a time
// (about Options.ReadChunk messages, at least one ticket), so that no
// more than the groups whose tickets are being mapped are held.
type threadLoader struct {
	r       *reportRead
	tickets []plannedTicket
	limit   int
	whole   *loadedThreads // the whole archive, when read whole
	cur     *loadedThreads // the group loaded last
	end     int            // tickets[:end] are in the groups loaded so far
}

func newThreadLoader(v *verifier, tickets []plannedTicket) *threadLoader {
	l := &threadLoader{r: v.read, tickets: tickets, limit: v.opts.ReadChunk}
	if v.a != nil {
		l.whole = &loadedThreads{a: v.a}
	}
	return l
}

// hold returns what the threads of tickets[k] are mapped from, held
// until release; k grows from call to call.
func (l *threadLoader) hold(ctx context.Context, k int) (*loadedThreads, error) {
	if l.whole != nil {
		return l.whole, nil
	}
	if k >= l.end {
		l.close()
		var ids []int64
		for n := 0; l.end < len(l.tickets) && (l.end == k || n+l.tickets[l.end].envelopes <= l.limit); l.end++ {
			n += l.tickets[l.end].envelopes
			for _, t := range l.tickets[l.end].threads {
				ids = append(ids, t.at)
			}
		}
		a, err := l.r.Load(ctx, ids)
		if err != nil {
			return nil, fmt.Errorf("verify: load the threads of ticket %d again: %w", l.tickets[k].id, err)
		}
		g := &loadedThreads{a: a, at: make(map[int64]int, len(a.Threads))}
		for i, id := range a.RecordedIDs() {
			g.at[id] = i
		}
		g.holders.Store(1) // the loader's, until the next group
		l.cur = g
	}
	l.cur.hold()
	return l.cur, nil
}

// close lets go of the group loaded last.
func (l *threadLoader) close() {
	if l.cur != nil {
		l.cur.release()
		l.cur = nil
	}
}
