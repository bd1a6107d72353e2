// Package archive owns the light, whole-archive view of a run: it reads
// every source once (envelopes only), keeps the envelopes in a compact,
// interned index, decides what a failures file's corrected copies
// replace, and threads the rest. Bodies are loaded from it one thread at
// a time, by each envelope's location.
//
// It exists apart from the pipeline because memory is its whole concern:
// the index holds every message of the archive for the length of the run,
// about a hundred and fifty bytes each in memory and no pointers
// (index.go), so that a 1 GB mbox validates in little memory; what only
// loading a message reads (its location, size, hash and subject) spills
// to unlinked temporary files past a small budget (cold.go), so that the
// memory per message stays that whatever the archive's size. What a run does with the threads
// (mapping, posting, the checkpoint) is the pipeline's.
//
// A backfill reads less (since.go, record.go, encode.go): Read's result
// can be recorded in the checkpoint (ScanRecord, checkpoint.RecordScan),
// and ReadSince then reads only the bytes appended to each file since,
// rebuilding from the record the threads the new records may join and
// those with work left; its Archive holds those threads only.
//
// A big archive is read in chunks instead (chunks.go, issue 15): each
// chunk is threaded with the recorded threads it is linked to, as an
// appended read is, so that memory holds a chunk whatever the archive's
// size (ReadChunks, for import); or in two passes through a temporary
// record, handing complete threads a chunk at a time (batches.go,
// ReadBatches, for validate and verify).
//
// An Archive is read once by Read and then only read from: its methods
// are safe for concurrent use, LoadThread included (the readers' Load is).
// Envelopes are named by their index i, 0 ≤ i < Len, in the order they
// were read; thread members are such indices.
package archive
