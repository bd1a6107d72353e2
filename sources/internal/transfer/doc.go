// Package transfer holds the lenient decoders of MIME transfer encodings,
// base64 and quoted-printable: they keep everything decodable where the
// standard library's stop at the first bad byte, and count what they
// skipped so that the caller can say so. It imports nothing of threadlift.
package transfer
