package mbox

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/threadlift/threadlift/sources"
)

var _ sources.FailureWriter = (*reader)(nil)

// FailuresName keeps an mbox file's name.
func (r *reader) FailuresName(name string) string { return name }

// WriteFailures copies each record, marked (see sources.FailureWriter). A
// mark already there (a failures file read as a source) is replaced.
func (r *reader) WriteFailures(w io.Writer, recs []sources.FailedRecord) error {
	sources.SortRecords(recs)
	for _, rec := range recs {
		if rec.Env == nil {
			continue // mbox records are always read
		}
		raw, err := r.Raw(rec.Env)
		if err != nil {
			return err
		}
		id := ""
		if rec.Env.MessageID == "" {
			id = rec.Env.ContentKey
		}
		if err := writeMarkedMessage(w, raw, rec.Env.Loc.String(), id); err != nil {
			return fmt.Errorf("copy %s: %w", rec.Env.Loc, err)
		}
	}
	return nil
}

// writeMarkedMessage copies one mbox record (or a bare message) with the
// mark header, and a Message-ID when id is not empty, after its From
// line, dropping any mark header it had. A record of an mbox ends with a
// blank line, so that the next From line is a separator.
func writeMarkedMessage(w io.Writer, raw io.Reader, loc, id string) error {
	br := bufio.NewReaderSize(raw, 64<<10)
	head, _ := br.Peek(5)
	mbox := string(head) == "From "
	eol := "\n"
	if mbox {
		var done bool
		var err error
		if eol, done, err = copyFromLine(w, br); err != nil || done {
			return err
		}
	} else if b, _ := br.Peek(4096); bytes.Contains(b, []byte("\r\n")) {
		eol = "\r\n"
	}
	marks := sources.MarkSourceHeader + ": " + oneLine(loc) + eol
	if id != "" {
		marks += "Message-ID: <" + oneLine(id) + ">" + eol
	}
	if _, err := io.WriteString(w, marks); err != nil {
		return err
	}
	tail, err := copyUnmarked(w, br)
	if err != nil || !mbox {
		return err
	}
	return endRecord(w, tail, eol)
}

// copyFromLine copies an mbox record's From line and returns the line end
// it uses; done when the record is that line alone (then ended with "\n").
func copyFromLine(w io.Writer, br *bufio.Reader) (eol string, done bool, err error) {
	line, err := readLine(br)
	if err != nil && err != io.EOF {
		return "", false, err
	}
	if _, err := w.Write(line); err != nil {
		return "", false, err
	}
	if bytes.HasSuffix(line, []byte("\r\n")) {
		return "\r\n", false, nil
	}
	if !bytes.HasSuffix(line, []byte("\n")) {
		_, err := io.WriteString(w, "\n")
		return "\n", true, err // a From line alone: nothing else to copy
	}
	return "\n", false, nil
}

// copyUnmarked copies the rest of a message but the mark header lines of
// its header, and returns the last bytes written (up to 4), which say how
// the record must be ended.
func copyUnmarked(w io.Writer, br *bufio.Reader) ([]byte, error) {
	f := markFilter{bol: true, inHeader: true}
	var tail []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(frag) > 0 && f.keep(frag) {
			if _, werr := w.Write(frag); werr != nil {
				return nil, werr
			}
			tail = append(tail, frag...)
			if len(tail) > 4 {
				tail = append(tail[:0], tail[len(tail)-4:]...)
			}
		}
		switch {
		case err == bufio.ErrBufferFull: // a long line: its next fragment
		case err == io.EOF:
			return tail, nil
		case err != nil:
			return nil, err
		}
	}
}

// markFilter tells, fed a message's line fragments in order, which belong
// to a mark header field (with its continuation lines) and are dropped.
type markFilter struct {
	bol      bool // the next fragment begins a line
	inHeader bool
	dropping bool
}

// keep reports whether frag, the next fragment, is to be copied.
func (f *markFilter) keep(frag []byte) bool {
	if f.bol && f.inHeader {
		switch {
		case len(bytes.TrimRight(frag, "\r\n")) == 0:
			f.inHeader, f.dropping = false, false
		case frag[0] == ' ' || frag[0] == '\t': // a continuation line: as its field
		default:
			f.dropping = len(frag) > len(sources.MarkSourceHeader) &&
				strings.EqualFold(string(frag[:len(sources.MarkSourceHeader)+1]), sources.MarkSourceHeader+":")
		}
	}
	f.bol = frag[len(frag)-1] == '\n'
	return !f.dropping
}

// endRecord ends an mbox record with a blank line, given its last bytes.
func endRecord(w io.Writer, tail []byte, eol string) error {
	t := strings.ReplaceAll(string(tail), "\r", "")
	var end string
	switch {
	case strings.HasSuffix(t, "\n\n"):
	case strings.HasSuffix(t, "\n"):
		end = eol
	default:
		end = eol + eol
	}
	_, err := io.WriteString(w, end)
	return err
}

// readLine reads one line, whatever its length, with its line end.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		line = append(line, frag...)
		if err != bufio.ErrBufferFull {
			return line, err
		}
	}
}

// oneLine makes s safe as a one-line header value.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
}
