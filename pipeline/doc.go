// Package pipeline owns a run: read every source (envelopes only), thread,
// then per thread load bodies, map, validate and — for import — post with
// retries, reconciliation and the checkpoint, on a bounded worker pool.
//
// Validate and import share everything up to the point of the write; the
// dry run is that one gate.
//
// Verify reads the sources the same way, then reads back every side
// conversation of every ticket the plan puts threads on (one ticket at a
// time per worker, in ticket order, paced by the client like import) and
// compares keys: present exactly once, missing (and why), duplicated,
// unexpected. With Adopt it records what each ticket holds into the
// checkpoint (checkpoint.Store.Adopt), so that the next import sends only
// what is missing.
package pipeline
