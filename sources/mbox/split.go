package mbox

import (
	"bytes"
	"fmt"
	"io"

	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/internal/header"
)

// Where an mbox message starts (contract §3, the referee's rule):
//
//   - at the start of the file, after a byte-order mark and blank lines;
//   - at a "From " line after a blank line when the line has the envelope
//     shape "From SENDER DATE" (an asctime-style date, with or without a
//     zone: "From a@b Mon Sep 17 00:00:00 2001", Gmail's "From 1234@xxx
//     Wed Aug 18 07:56:10 +0000 2021", "From a@b Wed Feb  9 22:02 MET
//     2000");
//   - at a line of envelope shape, or a bare "From -" / "From SENDER" with
//     no other words, that is directly followed by a header field, blank
//     line before it or not (some clients write the next message's "From
//     - " line right after the previous body's last line);
//   - where a Content-Length ends exactly at such a line, after at most
//     two line ends, or at the end of the file (mboxcl).
//
// Any other "From " line is body text: "From the first day, we..." after
// a blank line is a paragraph, not a message. A separator taken without a
// blank line before it, and a Content-Length that is not honoured, are
// warnings of the message concerned.

// Rules of the warnings the splitter raises.
const (
	RuleSeparatorNoBlank     sources.Rule = "separator-without-blank-line"
	RuleContentLengthIgnored sources.Rule = "content-length-ignored"
	// RuleCompressed is the RecordError of a compressed file.
	RuleCompressed sources.Rule = "compressed"
)

const contentLengthWindowBefore = 4 // bytes read before a Content-Length's end, to see the line before it

// fromKind is the shape of a line that starts with "From ".
type fromKind int

const (
	fromBody     fromKind = iota // body text
	fromBare                     // "From -", "From SENDER": one word
	fromEnvelope                 // "From SENDER DATE"
)

// fromLineKind classifies a "From " line (without its line end; at most
// maxFromLine bytes of it).
func fromLineKind(line []byte) fromKind {
	rest := trimEOL(line[len(fromPrefix):])
	var w [12][]byte // words: an envelope line has at most a few
	n := 0
	for len(rest) > 0 {
		rest = bytes.TrimLeft(rest, " \t")
		if len(rest) == 0 {
			break
		}
		i := bytes.IndexAny(rest, " \t")
		if i < 0 {
			i = len(rest)
		}
		if n == len(w) {
			return fromBody // too many words for an envelope line
		}
		w[n] = rest[:i]
		n++
		rest = rest[i:]
	}
	switch {
	case n == 0:
		return fromBody
	case n == 1:
		return fromBare
	}
	// The date is asctime-style: weekday, month, day, time, then the year,
	// with a zone before or after the year. The sender may hold spaces
	// (pipermail's "user at example.com"): look for the weekday anywhere
	// after the first word.
	for i := 1; i+4 <= n; i++ {
		if asctimeDate(w[i:n]) {
			return fromEnvelope
		}
	}
	return fromBody
}

// asctimeDate reports whether words are exactly an asctime-style date:
// "Mon Sep 17 00:00:00 2001", "Wed Feb 9 22:02 MET 2000", "Wed Aug 18
// 07:56:10 +0000 2021", "Mon Sep 17 00:00:00 2001 +0200".
func asctimeDate(w [][]byte) bool {
	if len(w) < 5 || len(w) > 7 || !weekday3(w[0]) || !month3(w[1]) || !digits(w[2], 1, 2) || !clock(w[3]) {
		return false
	}
	rest := w[4:]
	if len(rest) > 1 && isZone(rest[0]) { // zone before the year
		rest = rest[1:]
	}
	if !digits(rest[0], 4, 4) {
		return false
	}
	rest = rest[1:]
	if len(rest) == 1 && isZone(rest[0]) { // zone after the year
		rest = rest[1:]
	}
	return len(rest) == 0
}

func weekday3(b []byte) bool {
	return len(b) == 3 && oneOf3(b, "montuewedthufrisatsun")
}

func month3(b []byte) bool {
	return len(b) == 3 && oneOf3(b, "janfebmaraprmayjunjulaugsepoctnovdec")
}

// oneOf3 reports whether the three letters of b, in any case, are one of
// the three-letter words of list (written one after the other, lower
// case). It allocates nothing: every message's From line goes through it.
func oneOf3(b []byte, list string) bool {
	c0, c1, c2 := b[0]|0x20, b[1]|0x20, b[2]|0x20
	for i := 0; i+3 <= len(list); i += 3 {
		if list[i] == c0 && list[i+1] == c1 && list[i+2] == c2 {
			return true
		}
	}
	return false
}

func digits(b []byte, lo, hi int) bool {
	if len(b) < lo || len(b) > hi {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// clock is hh:mm or hh:mm:ss (one or two digits each).
func clock(b []byte) bool {
	parts, n := 0, 0
	for _, c := range b {
		switch {
		case c == ':':
			if n == 0 {
				return false
			}
			parts, n = parts+1, 0
		case c >= '0' && c <= '9' && n < 2:
			n++
		default:
			return false
		}
	}
	return n > 0 && (parts == 1 || parts == 2)
}

// isZone is a numeric zone (+0000) or a zone name of up to five letters.
func isZone(b []byte) bool {
	if len(b) == 5 && (b[0] == '+' || b[0] == '-') {
		return digits(b[1:], 4, 4)
	}
	if len(b) == 0 || len(b) > 5 {
		return false
	}
	return isAlphaZone(string(b))
}

// startsMessage reports whether a "From " line of kind k starts a message
// when the line after it begins with next, and the line before it was
// blank or not (contract §3).
func startsMessage(k fromKind, prevBlank bool, next []byte) bool {
	switch k {
	case fromEnvelope:
		return prevBlank || header.IsField(next)
	case fromBare:
		return header.IsField(next)
	}
	return false
}

// clBoundary checks a Content-Length whose body starts at bodyStart and
// ends at end: it is honoured when end is followed by at most two line
// ends and then a line that starts a message, or the end of the file. It
// returns where the next message starts (r.size at the end of the file),
// whether the line before it is blank, and otherwise why the
// Content-Length is ignored.
func (r *reader) clBoundary(bodyStart, end int64) (next int64, prevBlank bool, why string) {
	if end > r.size {
		return 0, false, fmt.Sprintf("it ends at byte %d, past the end of the file (%d bytes)", end, r.size)
	}
	from := max(bodyStart, end-contentLengthWindowBefore)
	buf := make([]byte, int(end-from)+4+maxFromLine+header.MaxFieldNameBytes+2)
	n, err := r.ra.ReadAt(buf, from)
	if err != nil && err != io.EOF {
		return 0, false, fmt.Sprintf("reading at byte %d: %v", end, err)
	}
	buf = buf[:n]
	before, at := buf[:end-from], buf[end-from:]
	i, ends := 0, 0
	for ends < 2 {
		switch {
		case bytes.HasPrefix(at[i:], []byte("\r\n")):
			i += 2
		case bytes.HasPrefix(at[i:], []byte("\n")):
			i++
		default:
			ends = 2
			continue
		}
		ends++
	}
	next = end + int64(i)
	// Whether the line before next is blank: the line ends just skipped
	// and the bytes before end tell.
	prev := append(append([]byte(nil), before...), at[:i]...)
	prevBlank = next == bodyStart || bytes.HasSuffix(prev, []byte("\n\n")) || bytes.HasSuffix(prev, []byte("\n\r\n"))
	if next == r.size {
		return next, prevBlank, ""
	}
	if i == 0 && end > bodyStart && !bytes.HasSuffix(before, []byte("\n")) {
		return 0, false, fmt.Sprintf("it ends at byte %d, inside a line", end)
	}
	line := at[i:]
	if !bytes.HasPrefix(line, fromPrefix) {
		return 0, false, fmt.Sprintf("it ends at byte %d, which is not followed by a \"From \" line", end)
	}
	var nextLine []byte
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line, nextLine = line[:j], line[j+1:]
	}
	// "Such a line": of envelope shape, or bare and followed by a header
	// field; a blank line before it is not needed.
	if k := fromLineKind(line[:min(len(line), maxFromLine)]); k != fromEnvelope && !startsMessage(k, false, nextLine) {
		return 0, false, fmt.Sprintf("it ends at byte %d, at a \"From \" line that does not start a message", end)
	}
	return next, prevBlank, ""
}

// compressedKind names the compression of a file that starts with head,
// or returns "".
func compressedKind(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return "gzip"
	case bytes.HasPrefix(head, []byte("BZh")) && len(head) >= 4 && head[3] >= '1' && head[3] <= '9':
		return "bzip2"
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "zstd"
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		return "xz"
	}
	return ""
}

// decompressHint is the command that decompresses a file of kind.
func decompressHint(kind string) string {
	switch kind {
	case "gzip":
		return "gunzip"
	case "bzip2":
		return "bunzip2"
	case "zstd":
		return "unzstd"
	case "xz":
		return "unxz"
	}
	return ""
}

// isAlphaZone reports whether s is letters only, as a zone name is.
func isAlphaZone(s string) bool {
	for _, c := range s {
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}
