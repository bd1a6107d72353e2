package sources

import "fmt"

// OpenCSV opens a csv source (contract §3). Being built.
func OpenCSV(path string, opts Options) (Reader, error) {
	return nil, fmt.Errorf("open %s as csv: %w", path, ErrUnsupported)
}
