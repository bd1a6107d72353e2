// Package pipeline owns a run: read every source (envelopes only), thread,
// then per thread load bodies, map, validate and — for import — post with
// retries, reconciliation and the checkpoint, on a bounded worker pool.
// Reading, the envelope index and threading are package archive's; each
// source is opened by its type through Options.Formats (sources/formats).
//
// Validate and import share reading, threading, loading a thread's bodies
// and mapping it (archive.Read, archive.LoadThread, mapping.Mapper.Map);
// then Validate (validate.go) checks every plan and adds it to the
// report, on its own pool of workers, and never opens the checkpoint or
// the client. import --dry-run is validate: Import itself has no dry
// run. ImportThreads (threads.go) reads the envelopes again for an
// import's threads.csv, each thread's row from the checkpoint.
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
// An import records its read of the sources in the checkpoint, and a
// backfill whose files only grew reads just what was appended
// (appended.go, archive.ReadSince); anything else reads in full and logs
// why. A full read of an archive past Options.ReadChunk messages goes a
// chunk at a time (chunks.go: import; batches.go: validate, verify and
// the other reports), so that memory stays bounded at any size.
//
// How an import runs (import.go, worker.go, post.go, lookup.go,
// ledger.go, retry.go). Import reads the sources and the checkpoint at
// once, then a feed hands each thread with work left to one of
// Options.Workers workers. It runs under two contexts (runContexts):
// take says whether a new thread may start (not after a signal, nor past
// --max-duration); work is what requests run under: it outlives a signal
// by StopTimeout, so that in-flight writes finish and are recorded, and
// ends at once on a fatal error. A worker loads and maps its thread,
// takes its ticket's lock and posts it (posting): each step reads the
// ticket's rows and goes reconcile → upload → write-ahead → send →
// record, chunk by chunk (mapping.Chunk). Every request that may be
// retried, read or write, goes through one loop, retrier.call: an
// attempt budget, full-jitter backoff, the client's shared Retry-After
// gate, and the zendesk package's classification handed back as a
// verdict (a write whose outcome is unknown is looked up before it is
// sent again). Every checkpoint write of a worker goes through its
// ledger, which speaks in the worker's terms and returns errors already
// classified (a refused write stops the run); it holds the answer to the
// worker's last request until its next write, so that one commit
// records both (measured: BenchmarkNewThreadWrites, and P3 of make
// bench).
//
// Verify reads the sources the same way, then reads back every side
// conversation of every ticket the plan puts threads on (one ticket at a
// time per worker, in ticket order, paced by the client like import) and
// compares keys: present exactly once, missing (and why), duplicated,
// unexpected. With Adopt it records what each ticket holds into the
// checkpoint (checkpoint.Store.Adopt), so that the next import sends only
// what is missing.
package pipeline
