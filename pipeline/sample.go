package pipeline

import (
	"context"
	"fmt"
)

// SampleTickets reads the sources (envelopes, as validate does: in
// batches past Options.ReadChunk messages) and maps threads spread
// evenly over the archive until it has n distinct tickets, mapping at
// most 4n threads: the tickets a preflight looks up. threads is how many
// threads the archive holds.
func SampleTickets(ctx context.Context, opts Options, n int) (tickets []int64, threads int, err error) {
	opts.defaults()
	r, err := readForReport(ctx, opts, nil)
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	total := r.Threads()
	if n <= 0 || total == 0 {
		return nil, total, nil
	}
	tries := min(total, 4*n)
	seen := map[int64]bool{}
	k, offset := 0, 0 // the next try, and the threads of the batches before this one
	for k < tries && len(tickets) < n {
		a, err := r.Next(ctx)
		if err != nil {
			return nil, total, err // io.EOF: not expected, total counts the batches' threads
		}
		for ; k < tries && len(tickets) < n && k*total/tries < offset+len(a.Threads); k++ {
			if err := ctx.Err(); err != nil {
				a.Close()
				return nil, total, err
			}
			t := a.Threads[k*total/tries-offset]
			plan, _, err := mapThread(a, opts.Mapper, t, mapLoad)
			if err != nil {
				a.Close()
				return nil, total, fmt.Errorf("map thread %s: %w", t.Key, err)
			}
			if id := plan.TicketID; id != 0 && !seen[id] {
				seen[id] = true
				tickets = append(tickets, id)
			}
		}
		offset += len(a.Threads)
		a.Close()
	}
	return tickets, total, nil
}
