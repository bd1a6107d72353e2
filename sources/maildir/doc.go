// Package maildir reads maildirs (Dovecot, Courier, getmail, offlineimap;
// Maildir++ subfolders) as one source per maildir root: the messages of
// cur/ and new/ of the folders asked for, never tmp/ (files being
// delivered). Each file is one message, read by the same code as an mbox
// message (sources/internal/msgfile), so that the same message has the
// same keys whatever it is stored in. The flags in file names (":2,S")
// are ignored.
package maildir
