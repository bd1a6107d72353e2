// Package sources owns what every source format shares, and nothing of
// any one format: the Message, Envelope, Address, Attachment and Location
// types; the Reader protocol and the interfaces a reader may add
// (RawReader, AttachmentReader, OptionsLoader, FailureWriter); Options;
// the record rules csv and json share (Record); the marks of failures
// files; Issue, Severity, RecordError and Rule; and the Registry a run
// opens its sources through, by type name.
//
// Reading happens in two passes so that memory does not grow with the size
// of the archive's bodies. Next walks a source once and returns a light
// Envelope per record (ids, references, date, byte offset, size). Load
// reads one record again by its Location and decodes it fully into a
// Message. Threading works on envelopes only; bodies are loaded one thread
// at a time.
//
// Each format is a package of its own that imports this one, never the
// reverse: sources/mbox, sources/csv, sources/json, each describing itself
// with a Format; sources/formats builds the Registry of all of them, so
// that adding a format (maildir, eml) is a package and one line there.
// What the formats share beyond these types lives in sources/internal:
// charset, transfer (base64, quoted-printable), dates, addr, htmltext,
// header, mime and files.
package sources
