package sources

import (
	"fmt"
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
