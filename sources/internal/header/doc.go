// Package header reads an RFC 5322 header block as real archives write it:
// capped, hashed for the content key as it is read (ReadBlock), split into
// fields with lines that are not fields repaired rather than dropped
// (ParseRepair), unfolded and made UTF-8 (Header), and what it says about
// the envelope: ids, references, subject and date with its fallbacks
// (FillEnvelope). Every format of whole messages (mbox today) reads its
// messages' headers through it.
package header
