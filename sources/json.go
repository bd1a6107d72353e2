package sources

import "fmt"

// OpenJSON opens a json source (contract §3). Being built.
func OpenJSON(path string, opts Options) (Reader, error) {
	return nil, fmt.Errorf("open %s as json: %w", path, ErrUnsupported)
}
