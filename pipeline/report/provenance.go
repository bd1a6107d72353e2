package report

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Provenance says where a report or summary comes from, so that a page
// handed around can be told apart from the next one.
type Provenance struct {
	GeneratedAt string `json:"generated_at"` // RFC 3339, UTC
	Version     string `json:"version"`      // threadlift's
	Commit      string `json:"commit,omitempty"`
	Config      string `json:"config"`  // the config file, as an absolute path
	Sources     string `json:"sources"` // e.g. "1,955 files (mbox), 2.1 GiB"
}

// NewProvenance fills a Provenance; sources describes the source files.
func NewProvenance(at time.Time, version, commit, config string, sources []SourceStats) *Provenance {
	return &Provenance{
		GeneratedAt: at.UTC().Format(time.RFC3339),
		Version:     version,
		Commit:      commit,
		Config:      config,
		Sources:     DescribeSources(sources),
	}
}

// DescribeSources sums up source files in a few words: "3 files (2 mbox,
// 1 csv), 1.2 GiB".
func DescribeSources(ss []SourceStats) string {
	if len(ss) == 0 {
		return "no source file"
	}
	formats := map[string]int{}
	var bytes int64
	for _, s := range ss {
		formats[s.Format]++
		bytes += s.Bytes
	}
	var parts []string
	names := make([]string, 0, len(formats))
	for f := range formats {
		names = append(names, f)
	}
	slices.Sort(names)
	for _, f := range names {
		if len(formats) == 1 {
			parts = append(parts, f)
		} else {
			parts = append(parts, formatInt(formats[f])+" "+f)
		}
	}
	return fmt.Sprintf("%s file%s (%s), %s", formatInt(len(ss)), plural(len(ss)), strings.Join(parts, ", "), formatBytes(bytes))
}

// shortCommit is the first 12 characters of a commit id.
func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}
