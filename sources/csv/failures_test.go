package csv

import (
	"bytes"
	"encoding/csv"
	"io"
	"strings"
	"testing"
)

// FuzzSkipCSVFields: what skipCSVFields leaves of a row is what
// encoding/csv reads after the first n fields.
func FuzzSkipCSVFields(f *testing.F) {
	for _, s := range []string{`"a","b",c,d`, `a,b`, `"x""y",,z`, "\"multi\nline\",b,c\n", `,,`} {
		f.Add(s, 2)
	}
	f.Fuzz(func(t *testing.T, row string, n int) {
		n = n%4 + 1
		if n < 1 {
			n = 1
		}
		if strings.HasPrefix(row, "\n") || strings.HasPrefix(row, "\r") {
			return // encoding/csv skips blank lines; a scanned row never starts with one
		}
		cr := csv.NewReader(strings.NewReader(row))
		cr.FieldsPerRecord = -1
		all, err := cr.Read()
		if err != nil {
			return
		}
		if _, err := cr.Read(); err != io.EOF {
			return // more than one row: the scanner hands rows one by one
		}
		rest, ok := skipCSVFields([]byte(row), n)
		if !ok {
			if len(all) > n && !strings.ContainsAny(row, "\r") {
				t.Errorf("skipCSVFields(%q, %d) failed; encoding/csv reads %d fields", row, n, len(all))
			}
			return
		}
		got, err := csv.NewReader(bytes.NewReader(rest)).Read()
		if err != nil && !(err == io.EOF && len(all) == n+1 && all[n] == "") {
			t.Fatalf("rest %q of %q does not parse: %v", rest, row, err)
		}
		if err == nil && strings.Join(got, "\x00") != strings.Join(all[n:], "\x00") {
			t.Errorf("skipCSVFields(%q, %d) left %q = %q, want %q", row, n, rest, got, all[n:])
		}
	})
}
