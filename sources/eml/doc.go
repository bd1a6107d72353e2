// Package eml reads folders of message files (.eml: Outlook and
// Thunderbird exports, got-your-back backups, often nested by year and
// month) as one source per folder, or a single message file. Each file
// is one message, read by the same code as an mbox message
// (sources/internal/msgfile). An Outlook binary .msg (an OLE compound
// file) is refused with a reason, not parsed; a .msg that is RFC 822
// text is read.
package eml
