// Package pipeline owns a run: read every source (envelopes only), thread,
// then per thread load bodies, map, validate and — for import — post with
// retries, reconciliation and the checkpoint, on a bounded worker pool.
// Reading, the envelope index and threading are package archive's; each
// source is opened by its type through Options.Formats (sources/formats).
//
// Validate and import share everything up to the point of the write; the
// dry run is that one gate.
//
// Import decides what a thread sends from the checkpoint's rows of its
// ticket (post.go): a message key imported in any part of the thread —
// its own row, or a thread it was imported as before a backfill joined
// them or it split off — is never sent again, and new messages go to the
// side conversation of the earliest imported part. Before the first write
// to a ticket that the checkpoint cannot vouch for (vouch.go: its last run
// did not end cleanly, or it was found stale, or it is new and the ticket
// is among the first it writes to), the ticket is listed and what it holds
// recorded. A source file that changed since the scan fails its threads
// (source-changed) instead of feeding them garbage. --limit counts threads
// that sent a request.
//
// Verify reads the sources the same way, then reads back every side
// conversation of every ticket the plan puts threads on (one ticket at a
// time per worker, in ticket order, paced by the client like import) and
// compares keys: present exactly once, missing (and why), duplicated,
// unexpected. With Adopt it records what each ticket holds into the
// checkpoint (checkpoint.Store.Adopt), so that the next import sends only
// what is missing.
package pipeline
