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
		line, err := readLine(br)
		if err != nil && err != io.EOF {
			return err
		}
		if _, err := w.Write(line); err != nil {
			return err
		}
		if bytes.HasSuffix(line, []byte("\r\n")) {
			eol = "\r\n"
		} else if !bytes.HasSuffix(line, []byte("\n")) {
			_, err := io.WriteString(w, "\n")
			return err // a From line alone: nothing else to copy
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
	bol, inHeader, dropping := true, true, false
	var tail []byte // the last bytes written, to end the record with a blank line
	for {
		frag, err := br.ReadSlice('\n')
		if len(frag) > 0 {
			if bol && inHeader {
				switch {
				case len(bytes.TrimRight(frag, "\r\n")) == 0:
					inHeader, dropping = false, false
				case frag[0] == ' ' || frag[0] == '\t': // a continuation line: as its field
				default:
					dropping = len(frag) > len(sources.MarkSourceHeader) &&
						strings.EqualFold(string(frag[:len(sources.MarkSourceHeader)+1]), sources.MarkSourceHeader+":")
				}
			}
			if !dropping {
				if _, werr := w.Write(frag); werr != nil {
					return werr
				}
				tail = append(tail, frag...)
				if len(tail) > 4 {
					tail = append(tail[:0], tail[len(tail)-4:]...)
				}
			}
			bol = frag[len(frag)-1] == '\n'
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if !mbox {
		return nil
	}
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
