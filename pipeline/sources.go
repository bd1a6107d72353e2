package pipeline

import (
	"fmt"
	"slices"
	"strings"

	"github.com/threadlift/threadlift/pipeline/archive"
	"github.com/threadlift/threadlift/pipeline/report"
	"github.com/threadlift/threadlift/sources"
)

// Source is one input file (archive.Source).
type Source = archive.Source

// emptySources returns an issue per source that held no record at all
// (sources.RuleEmptySource): a warning, never fatal, for every format.
func emptySources(a *archive.Archive) []report.Issue {
	var out []report.Issue
	for _, st := range a.Stats() {
		if st.Messages > 0 || len(st.Skipped) > 0 {
			continue
		}
		name := st.File()
		out = append(out, report.Issue{
			Severity: string(sources.SeverityWarning), Rule: string(sources.RuleEmptySource),
			Source:  sources.Location{File: name}.String(),
			Message: fmt.Sprintf("the %s source %s holds no message (%d bytes): is it the file you meant, and of that type?", st.Type, name, st.Bytes),
		})
	}
	return out
}

// RuleSkipped is the warning for the records a source left out on
// purpose (mbox skip_labels): counted and reported, never dropped
// silently.
const RuleSkipped = "skipped"

// sourceIssues are the issues of whole sources: empty ones, and those
// that skipped records on purpose.
func sourceIssues(a *archive.Archive) []report.Issue {
	out := emptySources(a)
	for _, st := range a.Stats() {
		if n := skippedCount(st.Skipped); n > 0 {
			out = append(out, report.Issue{
				Severity: string(sources.SeverityWarning), Rule: RuleSkipped,
				Source:  sources.Location{File: st.File(), Offset: sources.WholeFile}.String(),
				Message: fmt.Sprintf("%d messages of %s left out as the config asks (%s): not imported", n, st.File(), skippedReasons(st.Skipped)),
			})
		}
	}
	return out
}

func skippedCount(m map[string]int) int {
	n := 0
	for _, k := range m {
		n += k
	}
	return n
}

// skippedReasons lists the reasons and counts, "label Spam: 10, label Trash: 2".
func skippedReasons(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		keys[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return strings.Join(keys, ", ")
}

// sourceNames maps the File of a record's location to the name of its
// source: the same for a file source, the folder's for a record of a
// folder source (maildir, eml), whose location is the folder's name then
// the file's path inside it.
type sourceNames map[string]bool

func newSourceNames(a *archive.Archive) sourceNames {
	n := sourceNames{}
	for _, st := range a.Stats() {
		n[st.File()] = true
	}
	return n
}

func (n sourceNames) of(file string) string {
	for f := file; f != ""; {
		if n[f] {
			return f
		}
		i := strings.LastIndexByte(f, '/')
		if i < 0 {
			break
		}
		f = f[:i]
	}
	return file
}
