// Package thread owns grouping messages into conversations: the JWZ
// algorithm over Message-ID, In-Reply-To and References (and, on request,
// normalized subjects), explicit thread ids for csv/json records, duplicate
// detection, and the stable thread key of contract §4.
//
// It is pure: it sees only light items (ids, references, subject, date,
// order), never bodies, and does no I/O, so an archive of millions of
// messages is threaded from envelopes alone.
package thread
