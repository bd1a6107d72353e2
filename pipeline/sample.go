package pipeline

import (
	"context"
	"fmt"

	"github.com/threadlift/threadlift/pipeline/archive"
)

// SampleTickets reads the sources (envelopes, as validate does) and maps
// threads spread evenly over the archive until it has n distinct tickets,
// mapping at most 4n threads: the tickets a preflight looks up. threads is
// how many threads the archive holds.
func SampleTickets(ctx context.Context, opts Options, n int) (tickets []int64, threads int, err error) {
	opts.defaults()
	a, err := archive.Read(ctx, opts.Formats, opts.Sources, opts.Read, opts.Threading, nil)
	if err != nil {
		return nil, 0, err
	}
	defer a.Close()
	total := len(a.Threads)
	if n <= 0 || total == 0 {
		return nil, total, nil
	}
	tries := min(total, 4*n)
	seen := map[int64]bool{}
	for k := range tries {
		if err := ctx.Err(); err != nil {
			return nil, total, err
		}
		t := a.Threads[k*total/tries]
		plan, _, err := mapThread(a, opts.Mapper, t, mapLoad)
		if err != nil {
			return nil, total, fmt.Errorf("map thread %s: %w", t.Key, err)
		}
		if id := plan.TicketID; id != 0 && !seen[id] {
			seen[id] = true
			tickets = append(tickets, id)
			if len(tickets) == n {
				break
			}
		}
	}
	return tickets, total, nil
}
