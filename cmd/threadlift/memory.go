package main

import (
	"context"
	"math"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// The garbage collector's default target is twice the live heap. Most of
// threadlift's live heap on a big archive is the envelope index (about
// 150 bytes per message once its cold part spills to disk, issue 15) and
// what threading builds from it, which live for the whole run and hold
// almost no pointers, so doubling them buys nothing but resident memory.
// It runs for every command; import holds the same index plus the
// checkpoint's state of each thread. governMemory keeps the target at the
// live heap plus a headroom instead, through the GC memory limit, which
// the runtime treats as soft: when more is truly live, it is used.
//
// The headroom stays a quarter of the live heap. An eighth was measured
// (issue 15, validate of 400k messages, 2 cores): peak RSS 105 MiB
// instead of 118-123, but 48-57 s of CPU instead of 32-34, twice the
// collections and page faults. validate allocates fast (it decodes every
// message), and a collection costs more the bigger the live heap: the
// room between collections must grow with the live heap for the
// collector's share of the CPU to stay the same.
const (
	memHeadroomMin  = 8 << 20 // what decoding a few threads at once needs
	memHeadroomFrac = 4       // or a quarter of the live heap, if more
	memGovernEvery  = 100 * time.Millisecond
)

// memoryLimit is the limit for a live heap of live bytes when the runtime
// holds other bytes besides the heap (stacks, metadata).
func memoryLimit(live, other uint64) int64 {
	headroom := max(uint64(memHeadroomMin), live/memHeadroomFrac)
	l := live + headroom
	if l < live || l+other < l || l+other > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(l + other)
}

// governMemory adjusts the GC memory limit to the live heap until ctx
// ends. A GOMEMLIMIT set by the user wins: then it does nothing.
func governMemory(ctx context.Context, getenv func(string) string) {
	if getenv("GOMEMLIMIT") != "" {
		return
	}
	samples := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}
	v := make([]uint64, len(samples))
	go func() {
		t := time.NewTicker(memGovernEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				debug.SetMemoryLimit(math.MaxInt64)
				return
			case <-t.C:
			}
			metrics.Read(samples)
			for i, s := range samples {
				if s.Value.Kind() != metrics.KindUint64 {
					return // a runtime without these metrics: leave the default
				}
				v[i] = s.Value.Uint64()
			}
			heap := v[2] + v[3] + v[4] + v[5]
			other := uint64(0)
			if v[1] > heap {
				other = v[1] - heap
			}
			debug.SetMemoryLimit(memoryLimit(v[0], other))
		}
	}()
}
