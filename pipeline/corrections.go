package pipeline

import (
	"context"
	"fmt"

	"github.com/threadlift/threadlift/pipeline/report"
	"github.com/threadlift/threadlift/sources"
)

// Corrections (issue 11): a record of a failures file (failures.go) that
// the user fixed and added as a source replaces the record it is a copy
// of. Without that, the fixed copy was a duplicate of the broken original
// (same Message-ID, read first) and was never imported, while the thread
// counted as done.
//
// A copy (an envelope with Corrects set) replaces every other envelope
// with its message key (the copy keeps its original's key: mbox in its
// Message-ID, csv/json in threadlift_key), and the unreadable record at
// the location it names (such a record has no key). Among copies with one
// key, the last read wins: a fix that failed again, copied and fixed once
// more, replaces the first fix. Locations alone do not identify a message
// (the messages of a JSON Lines thread object share a line), so only
// unreadable records are matched by location. A replaced envelope takes
// no part in threading, so the copy takes its place in its thread; it
// still counts as a message found.

// supersession is an envelope or unreadable record a copy replaces.
type supersession struct {
	orig string // location of the replaced record
	by   int    // index of the copy
	key  bool   // an envelope with the copy's key; else an unreadable record
}

// supersede finds what the copies replace. It returns the replaced
// envelopes, for threading to leave out, removes the replaced unreadable
// records from a.bad and fills a.superseded and a.copies.
func (a *archive) supersede() map[int]bool {
	if len(a.idx.corrects) == 0 {
		return nil
	}
	byKey := make(map[string]int)
	byLoc := make(map[string]int)
	for i := range a.idx.len() { // in source order: the last copy wins
		if loc, ok := a.idx.corrects[int32(i)]; ok {
			byKey[a.idx.key(i)] = i
			byLoc[loc] = i
		}
	}
	skip := make(map[int]bool)
	a.copies = make(map[int]bool)
	for i := range a.idx.len() {
		if by, ok := byKey[a.idx.key(i)]; ok && by != i {
			skip[i] = true
			a.superseded = append(a.superseded, supersession{orig: a.idx.envelope(i).Loc.String(), by: by, key: true})
			continue
		}
		if _, copied := a.idx.corrects[int32(i)]; copied {
			a.copies[i] = true
		}
	}
	kept := a.bad[:0]
	for _, b := range a.bad {
		loc := b.err.Loc.String()
		if by, ok := byLoc[loc]; ok {
			a.superseded = append(a.superseded, supersession{orig: loc, by: by})
			continue
		}
		kept = append(kept, b)
	}
	a.bad = kept
	return skip
}

// supersededIssues are warnings saying which records copies replaced.
func (a *archive) supersededIssues() []report.Issue {
	out := make([]report.Issue, 0, len(a.superseded))
	for _, s := range a.superseded {
		by := a.idx.envelope(s.by)
		out = append(out, report.Issue{
			Severity: string(sources.SeverityWarning), Rule: RuleSuperseded,
			MessageKey: by.Key(), Source: s.orig,
			Message: fmt.Sprintf("replaced by its corrected copy at %s (from a failures file)", by.Loc),
		})
	}
	return out
}

// RuleSuperseded is the warning on a record a failures file's copy
// replaces.
const RuleSuperseded = "superseded"

// hasCopy reports whether a thread holds a failures file's copy.
func (a *archive) hasCopy(members []int) bool {
	for _, m := range members {
		if a.copies[m] {
			return true
		}
	}
	return false
}

// copiesImported reports whether every member of a done thread that is a
// copy was imported already: such a thread has nothing new. A copy that
// replaced a rejected message makes the thread grow by it.
func (im *importer) copiesImported(ctx context.Context, key string, members []int) (bool, error) {
	imported, err := im.store.ImportedMessages(ctx, key)
	if err != nil {
		return false, err
	}
	for _, m := range members {
		if im.a.copies[m] && !imported[im.a.idx.key(m)] {
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
	if len(im.a.superseded) == 0 {
		return nil
	}
	var locs []string
	for _, s := range im.a.superseded {
		if !s.key {
			locs = append(locs, s.orig)
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
