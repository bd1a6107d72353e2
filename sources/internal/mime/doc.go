// Package mime decodes the body of one message whose header package
// header read: it walks the MIME tree with its own lenient multipart
// reader, decodes transfer encodings and charsets, chooses Body and
// HTMLBody, and finds the attachments (decode.go and attachments.go, the
// top comments, have the rules). FindPart finds one attachment again for
// sources.AttachmentReader. It knows nothing of the file a message comes
// from: that is the format's (sources/mbox).
package mime
