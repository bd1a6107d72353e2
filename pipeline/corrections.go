package pipeline

import (
	"context"
	"fmt"

	"github.com/threadlift/threadlift/pipeline/archive"
	"github.com/threadlift/threadlift/pipeline/report"
	"github.com/threadlift/threadlift/sources"
)

// Corrections (issue 11): a failures file's copy, fixed by the user and
// added as a source, replaces the record it is a copy of; the archive
// package decides what each copy replaces (pipeline/archive/corrections.go).
// Here: the warnings that say so, and what import does about it.

// supersededIssues are warnings saying which records copies replaced.
func supersededIssues(a *archive.Archive) ([]report.Issue, error) {
	sup := a.Superseded()
	out := make([]report.Issue, 0, len(sup))
	for _, s := range sup {
		by, err := a.Envelope(s.By)
		if err != nil {
			return nil, err
		}
		out = append(out, report.Issue{
			Severity: string(sources.SeverityWarning), Rule: RuleSuperseded,
			MessageKey: by.Key(), Source: s.Orig,
			Message: fmt.Sprintf("replaced by its corrected copy at %s (from a failures file)", by.Loc),
		})
	}
	return out, nil
}

// RuleSuperseded is the warning on a record a failures file's copy
// replaces.
const RuleSuperseded = "superseded"

// copiesImported reports whether every member of a done thread that is a
// copy was imported already: such a thread has nothing new. A copy that
// replaced a rejected message makes the thread grow by it.
func (im *importer) copiesImported(ctx context.Context, key string, members []int) (bool, error) {
	imported, err := im.store.ImportedMessages(ctx, key)
	if err != nil {
		return false, err
	}
	for _, m := range members {
		if im.a.IsCopy(m) && !imported[im.a.Key(m)] {
			return false, nil
		}
	}
	return true, nil
}

// resolveSuperseded removes from the checkpoint the unreadable records
// that copies replaced: they have no key for a copy to take over. A
// replaced message needs nothing: its copy has its key and takes over its
// row when it is registered.
func (im *importer) resolveSuperseded(ctx context.Context) error {
	var locs []string
	for _, s := range im.a.Superseded() {
		if !s.Key {
			locs = append(locs, s.Orig)
		}
	}
	if len(locs) == 0 {
		return nil
	}
	if err := im.store.Supersede(ctx, locs); err != nil {
		return fmt.Errorf("record the records replaced by corrected copies: %w", err)
	}
	im.opts.Logger.Info().Int("records", len(locs)).Msg("unreadable records replaced by their corrected copies from failures files")
	return nil
}
