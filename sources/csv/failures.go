package csv

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/threadlift/threadlift/sources"
)

var _ sources.FailureWriter = (*reader)(nil)

// FailuresName keeps a csv file's name.
func (r *reader) FailuresName(name string) string { return name }

// WriteFailures writes the header row and each row as it is in the file,
// the two mark columns in front. A failures file read as a source has them
// in front already: its rows get new values in them.
func (r *reader) WriteFailures(w io.Writer, recs []sources.FailedRecord) error {
	sources.SortRecords(recs)
	if r.headerEnd <= r.headerStart {
		return nil // an empty file has no rows
	}
	header := make([]byte, r.headerEnd-r.headerStart)
	if _, err := r.ra.ReadAt(header, r.headerStart); err != nil && err != io.EOF {
		return fmt.Errorf("read the header of %s: %w", r.opts.Name, err)
	}
	eol := "\n"
	if bytes.HasSuffix(header, []byte("\r\n")) {
		eol = "\r\n"
	}
	marked := r.markCol == 0 && r.keyCol == 1 // our own layout
	bw := bufio.NewWriter(w)
	if !marked {
		bw.WriteString(sources.MarkSourceField + "," + sources.MarkKeyField + ",")
	}
	bw.Write(header)
	if !bytes.HasSuffix(header, []byte("\n")) {
		bw.WriteString(eol)
	}
	for _, rec := range recs {
		var off, size int64
		loc, key := "", ""
		if rec.Env != nil {
			off, size, loc, key = rec.Env.Loc.Offset, rec.Env.Size, rec.Env.Loc.String(), rec.Env.Key()
		} else {
			off, size, loc = rec.Bad.Loc.Offset, rec.Bad.Size, rec.Bad.Loc.String()
		}
		if size <= 0 || off+size > r.size {
			continue
		}
		row := make([]byte, size)
		if _, err := r.ra.ReadAt(row, off); err != nil && err != io.EOF {
			return fmt.Errorf("read %s: %w", loc, err)
		}
		if marked {
			if rest, ok := skipCSVFields(row, 2); ok {
				row = rest
			}
		}
		bw.WriteString(csvQuote(loc) + "," + csvQuote(key) + ",")
		bw.Write(row)
		if !bytes.HasSuffix(row, []byte("\n")) {
			bw.WriteString(eol)
		}
	}
	return bw.Flush()
}

// csvQuote quotes a csv field.
func csvQuote(s string) string {
	if s == "" {
		return ""
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// skipCSVFields returns row without its first n fields (and their
// commas); ok is false when it has fewer.
func skipCSVFields(row []byte, n int) ([]byte, bool) {
	i := 0
	for range n {
		if i < len(row) && row[i] == '"' {
			i++
			for {
				j := bytes.IndexByte(row[i:], '"')
				if j < 0 {
					return row, false
				}
				i += j + 1
				if i < len(row) && row[i] == '"' {
					i++ // a doubled quote
					continue
				}
				break
			}
		} else {
			for i < len(row) && row[i] != ',' && row[i] != '\n' && row[i] != '\r' {
				i++
			}
		}
		if i >= len(row) || row[i] != ',' {
			return row, false
		}
		i++
	}
	return row[i:], true
}
