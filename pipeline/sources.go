package pipeline

import (
	"fmt"

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
		if st.Messages > 0 {
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
