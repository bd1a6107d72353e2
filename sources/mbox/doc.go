// Package mbox reads mbox files (mboxo, mboxrd, mboxcl/mboxcl2, LF, CRLF
// or bare CR line ends) and single message files (.eml), as contract §3
// describes them: where a message starts (split.go, the referee's rule),
// byte offsets for every record, mboxrd unescaping, and the failures file
// of an mbox (the records copied as they are, marked).
//
// It owns the file format only. A message's header is read and repaired
// by sources/internal/header, its MIME tree decoded by
// sources/internal/mime: the mbox reader finds each message in the file,
// and hands them its bytes.
package mbox
