// Package sources owns reading conversation archives: the Message,
// Envelope, Address, Attachment and Location types, the Reader interface,
// and the mbox, csv and json readers.
//
// Reading happens in two passes so that memory does not grow with the size
// of the archive's bodies. Next walks a source once and returns a light
// Envelope per record (ids, references, date, byte offset, size). Load
// reads one record again by its Location and decodes it fully into a
// Message. Threading works on envelopes only; bodies are loaded one thread
// at a time.
package sources
