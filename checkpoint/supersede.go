package checkpoint

import (
	"context"
	"fmt"
	"strings"
)

// Supersede deletes the records that could not be read (threads with key
// "", rejected) at the given source locations: corrected copies of them,
// from a failures file added as a source, replaced them (issue 11), and
// Failures no longer lists them. Locations are matched as stored.
func (s *Store) Supersede(ctx context.Context, sources []string) error {
	const batch = 500
	return s.tx(ctx, fmt.Sprintf("record %d records replaced by corrected copies", len(sources)), func(ctx context.Context, tx *wtx) error {
		for len(sources) > 0 {
			n := min(batch, len(sources))
			args := make([]any, 0, n)
			for _, src := range sources[:n] {
				args = append(args, src)
			}
			in := "(" + strings.TrimSuffix(strings.Repeat("?,", n), ",") + ")"
			if _, err := tx.ExecContext(ctx, `DELETE FROM threads WHERE key = '' AND state = 'rejected' AND source IN `+in, args...); err != nil {
				return err
			}
			sources = sources[n:]
		}
		return nil
	})
}
