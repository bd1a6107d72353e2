package sources

import (
	"fmt"
	"os"
	"strings"
)

// Open opens a source file of the given type: "mbox", "csv" or "json".
// Any other type gives an error wrapping ErrUnsupported.
func Open(typ, path string, opts Options) (Reader, error) {
	switch strings.ToLower(strings.TrimSpace(typ)) {
	case "mbox":
		return OpenMbox(path, opts)
	case "csv":
		return OpenCSV(path, opts)
	case "json":
		return OpenJSON(path, opts)
	}
	return nil, fmt.Errorf("open %s as %q: %w", path, typ, ErrUnsupported)
}

// openFile opens a source file, refusing a directory.
func openFile(path, kind string) (*os.File, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if st.IsDir() {
		f.Close()
		return nil, nil, fmt.Errorf("open %s %s: is a directory", kind, path)
	}
	return f, st, nil
}
