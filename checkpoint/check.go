package checkpoint

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Integrity checks.
//
// PRAGMA quick_check reads every page of the file: seconds at a million
// messages, and as much RSS as the page cache lets it take. It protects
// writes: a run must not build on a damaged file (a torn copy, a disk
// fault), so every writable open checks the whole file before its first
// write (Open, or in the background with Options.DeferCheck). A read-only
// open (status, failures, verify without --adopt) writes nothing for a
// damage to spread into; it runs probe instead, which reads the schema,
// the small tables whole and the root and both edges of every other
// table: a torn copy is refused at once, as before, and a damaged page
// that a read meets later fails that read with ErrUnusable (see wrap).

// smallTables are checked whole by probe: a row per run, one row, a row
// per ticket looked up since trust was lost.
var smallTables = []string{"meta", "runs", "vouched"}

// probe is the check of a read-only open: PRAGMA quick_check of the
// schema and of smallTables, and, for every other table, its first and
// last row, which reads the pages from its root down both edges.
func (s *Store) probe(ctx context.Context) error {
	for _, t := range append([]string{"sqlite_schema"}, smallTables...) {
		if err := s.quickCheck(ctx, s.db, t); err != nil {
			return err
		}
	}
	edges, err := s.edgeQueries(ctx)
	if err != nil {
		return err
	}
	for _, q := range edges {
		var v any
		if err := s.db.QueryRowContext(ctx, q).Scan(&v); err != nil {
			return s.wrapUnusable("check", err)
		}
	}
	return nil
}

// edgeQueries returns, for every table not in smallTables, the queries
// that read its first and its last row: min and max of its rowid, or of
// the first column of its primary key for a WITHOUT ROWID table (each
// answered by one descent of the b-tree).
func (s *Store) edgeQueries(ctx context.Context) ([]string, error) {
	// One query: a read-only store has a single connection.
	rows, err := s.db.QueryContext(ctx, `SELECT l.name, l.wr, coalesce((SELECT p.name FROM pragma_table_info(l.name) p WHERE p.pk = 1), '')
		FROM pragma_table_list l WHERE l.schema = 'main' AND l.type = 'table' AND l.name NOT LIKE 'sqlite\_%' ESCAPE '\'
		ORDER BY l.name`)
	if err != nil {
		return nil, s.wrapUnusable("check", err)
	}
	defer rows.Close()
	var qs []string
	for rows.Next() {
		var table, pk string
		var withoutRowid bool
		if err := rows.Scan(&table, &withoutRowid, &pk); err != nil {
			return nil, s.wrapUnusable("check", err)
		}
		if slices.Contains(smallTables, table) {
			continue
		}
		col := "rowid"
		if withoutRowid {
			col = quoteIdent(pk)
		}
		qs = append(qs, fmt.Sprintf("SELECT min(%s) FROM %s", col, quoteIdent(table)),
			fmt.Sprintf("SELECT max(%s) FROM %s", col, quoteIdent(table)))
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrapUnusable("check", err)
	}
	return qs, nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
