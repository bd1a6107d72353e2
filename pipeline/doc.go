// Package pipeline owns a run: read every source (envelopes only), thread,
// then per thread load bodies, map, validate and — for import — post with
// retries, reconciliation and the checkpoint, on a bounded worker pool.
//
// Validate and import share everything up to the point of the write; the
// dry run is that one gate.
package pipeline
