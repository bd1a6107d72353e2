package checkpoint

import (
	"bytes"
	"os"
	"strconv"
)

// diskWrites returns what this process has written so far, -1 each when
// unknown (/proc/self/io): wchar, the bytes handed to write(2) and
// pwrite(2) (SQLite's WAL frames and the checkpoints that copy them into
// the file), and write_bytes, the page-cache bytes it dirtied, which is
// what storage is asked to write back (a kernel with large folios counts
// a whole folio for a page written into it).
func diskWrites() (wchar, dirtied int64) {
	wchar, dirtied = -1, -1
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1, -1
	}
	for line := range bytes.Lines(b) {
		k, v, ok := bytes.Cut(line, []byte(": "))
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
		if err != nil {
			continue
		}
		switch string(k) {
		case "wchar":
			wchar = n
		case "write_bytes":
			dirtied = n
		}
	}
	return wchar, dirtied
}
