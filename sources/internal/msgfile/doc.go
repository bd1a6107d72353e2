// Package msgfile reads a list of message files, one message per file,
// as one source: what the maildir and eml formats share. The format
// packages find the files (maildir: cur/ and new/ of the folders asked
// for; eml: a folder walked recursively); this package turns each file
// into a record through sources/mbox's single-message reader, so that a
// message reads the same, with the same keys, body and issues, whether it
// is a file of its own or one message of an mbox.
//
// No file is held open: Next opens, scans the header of and closes one
// file at a time, and Load opens the record's file again. Memory holds the
// sorted list of names, not the messages.
package msgfile
