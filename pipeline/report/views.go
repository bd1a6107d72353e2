package report

import (
	"cmp"
	"path"
	"slices"
	"strings"
)

// sourceRow is one row of the page's sources tables: a file, or a folder
// of files summed up.
type sourceRow struct {
	Name                        string // a file, or a folder ending in "/"
	Files                       int
	Formats                     string
	Bytes                       int64
	Messages, Threads, Rejected int
}

// sourcesView is the page's sources section. An archive of thousands of
// files would make a table of thousands of rows (1,955 files were 439 KB
// of a 575 KB page): beyond the cap, files are summed up by folder, the
// folders with the most rejections first, and the files with the most
// rejections get a table of their own. report.json lists every file.
type sourcesView struct {
	Files    int  // source files in all
	ByFolder bool // Rows are folders
	Rows     []sourceRow
	More     int // rows left out
	// Worst are the files with the most rejections (ByFolder only);
	// WorstMore counts the other files with rejections.
	Worst     []sourceRow
	WorstMore int
}

func newSourcesView(ss []SourceStats, limit int) sourcesView {
	v := sourcesView{Files: len(ss)}
	files := make([]sourceRow, 0, len(ss))
	for _, s := range ss {
		files = append(files, sourceRow{Name: s.File, Files: 1, Formats: s.Format, Bytes: s.Bytes, Messages: s.Messages, Threads: s.Threads, Rejected: s.Rejected})
	}
	byRejections := func(a, b sourceRow) int {
		return cmp.Or(cmp.Compare(b.Rejected, a.Rejected), cmp.Compare(b.Messages, a.Messages), cmp.Compare(a.Name, b.Name))
	}
	if len(files) <= limit {
		slices.SortStableFunc(files, func(a, b sourceRow) int { return cmp.Compare(b.Rejected, a.Rejected) })
		v.Rows = files
		return v
	}
	v.ByFolder = true
	folders := map[string]*sourceRow{}
	formats := map[string]map[string]bool{}
	for _, f := range files {
		dir := path.Dir(strings.ReplaceAll(f.Name, `\`, "/")) + "/"
		r := folders[dir]
		if r == nil {
			r = &sourceRow{Name: dir}
			folders[dir] = r
			formats[dir] = map[string]bool{}
		}
		r.Files++
		r.Bytes += f.Bytes
		r.Messages += f.Messages
		r.Threads += f.Threads
		r.Rejected += f.Rejected
		formats[dir][f.Formats] = true
	}
	for dir, r := range folders {
		fs := make([]string, 0, len(formats[dir]))
		for f := range formats[dir] {
			fs = append(fs, f)
		}
		slices.Sort(fs)
		r.Formats = strings.Join(fs, ", ")
		v.Rows = append(v.Rows, *r)
	}
	slices.SortFunc(v.Rows, byRejections)
	if len(v.Rows) > limit {
		v.Rows, v.More = v.Rows[:limit], len(v.Rows)-limit
	}
	for _, f := range files {
		if f.Rejected > 0 {
			v.Worst = append(v.Worst, f)
		}
	}
	slices.SortFunc(v.Worst, byRejections)
	if len(v.Worst) > limit {
		v.Worst, v.WorstMore = v.Worst[:limit], len(v.Worst)-limit
	}
	return v
}

// plansView is the per-plan duration table. Where the write bucket binds,
// a bigger plan changes nothing: every row then has the same duration,
// and the page says why instead of leaving it to be guessed.
type plansView struct {
	Rows []PlanDuration
	// Writes is write_requests_per_10_minutes; AllWrites is true when it
	// binds on every plan, SomeWrites when on some.
	Writes                int
	AllWrites, SomeWrites bool
}

func newPlansView(d Duration) plansView {
	v := plansView{Rows: d.ByPlan, Writes: d.WriteRequestsPer10Minutes}
	n := 0
	for _, p := range d.ByPlan {
		if p.LimitedBy == LimitedByWrites {
			n++
		}
	}
	v.AllWrites = n > 0 && n == len(d.ByPlan)
	v.SomeWrites = n > 0 && !v.AllWrites
	return v
}

// limitName says in words which limit binds.
func limitName(by string) string {
	switch by {
	case LimitedByWrites:
		return "write bucket (write_requests_per_10_minutes)"
	case LimitedByRequests:
		return "requests per minute"
	}
	return "no limit"
}
