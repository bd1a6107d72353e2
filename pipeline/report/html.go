package report

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"html/template"
	"io"
	"math"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

// The page is built once per call; parsing is cheap next to reading an
// archive, and keeping no package state keeps the package free of init.
func templates() (*template.Template, error) {
	return template.New("").Funcs(template.FuncMap{
		"num":   formatInt,
		"bytes": formatBytes,
		"f1":    func(f float64) string { return fmt.Sprintf("%.1f", f) },
		"lower": strings.ToLower,
		"human": HumanDuration,
		"short": shortCommit,
		"limit": limitName,
		"div10": func(n int) float64 { return float64(n) / 10 },
	}).ParseFS(templateFS, "templates/*.tmpl")
}

// HTMLOptions tune the HTML pages. The zero value means the defaults.
type HTMLOptions struct {
	// ExamplesPerRule caps the examples shown per rule (default 20); every
	// occurrence is in report.json.
	ExamplesPerRule int
	// SampleBytes caps each pretty-printed payload preview (default 32 KiB).
	SampleBytes int
	// ThreadsCSV says that threads.csv was written next to the page (the
	// page then points to it).
	ThreadsCSV bool
	// SourceRows caps the rows of the sources table, and of the table of
	// the files with the most rejections (default 25); report.json lists
	// every file.
	SourceRows int
}

func (o *HTMLOptions) defaults() {
	if o.ExamplesPerRule <= 0 {
		o.ExamplesPerRule = 20
	}
	if o.SampleBytes <= 0 {
		o.SampleBytes = 32 << 10
	}
	if o.SourceRows <= 0 {
		o.SourceRows = 25
	}
}

type card struct {
	Label, Value, Note, Class string
}

type bar struct {
	X, Y, W, H     float64
	Label, Tooltip string
	LabelX, LabelY float64
	ShowLabel      bool
}

// chart is an SVG bar chart laid out in Go, so that the page needs no
// script.
type chart struct {
	ID, Title     string
	Width, Height float64
	Bars          []bar
	Empty         bool
	Max           int
	AxisY, AxisX0 float64
	AxisX1        float64
	Rotate        bool
}

const (
	chartW, chartH       = 760.0, 260.0
	chartLeft, chartTop  = 48.0, 16.0
	chartRight           = 12.0
	chartBottom          = 56.0
	chartMaxLabelsOnAxis = 24
)

func newChart(id, title string, labels []string, values []int, tooltip func(i int) string) chart {
	c := chart{ID: id, Title: title, Width: chartW, Height: chartH, AxisX0: chartLeft, AxisX1: chartW - chartRight, AxisY: chartH - chartBottom}
	for _, v := range values {
		c.Max = max(c.Max, v)
	}
	if len(values) == 0 || c.Max == 0 {
		c.Empty = true
		return c
	}
	plotW := chartW - chartLeft - chartRight
	plotH := chartH - chartTop - chartBottom
	slot := plotW / float64(len(values))
	gap := math.Min(slot*0.2, 6)
	every := int(math.Ceil(float64(len(values)) / chartMaxLabelsOnAxis))
	c.Rotate = len(values) > 12
	for i, v := range values {
		h := float64(v) / float64(c.Max) * plotH
		if v > 0 && h < 1 {
			h = 1
		}
		x := chartLeft + float64(i)*slot + gap/2
		b := bar{X: x, Y: c.AxisY - h, W: slot - gap, H: h, Label: labels[i], Tooltip: tooltip(i),
			LabelX: x + (slot-gap)/2, LabelY: c.AxisY + 14, ShowLabel: i%every == 0}
		c.Bars = append(c.Bars, b)
	}
	return c
}

type ruleView struct {
	Rule, Severity string
	Count          int
	Examples       []Issue
	More           int
}

type sampleView struct {
	Sample
	Pretty    string
	Truncated bool
	Size      int
}

type reportView struct {
	R            *Report
	Cards        []card
	Months       chart
	PerThread    chart
	Rules        []ruleView
	Samples      []sampleView
	Examples     int
	TicketsShown int
	Sources      sourcesView
	Plans        plansView
	ThreadsCSV   bool
}

// WriteHTML renders the validation report as one self-contained page:
// inline CSS and SVG, no script, nothing fetched. Every string from the
// archive goes through html/template's escaping and is shown as text.
func WriteHTML(w io.Writer, r *Report, o HTMLOptions) error {
	o.defaults()
	t, err := templates()
	if err != nil {
		return err
	}
	v := reportView{R: r, Examples: o.ExamplesPerRule, TicketsShown: len(r.TopTickets),
		Sources: newSourcesView(r.Sources, o.SourceRows), Plans: newPlansView(r.Duration), ThreadsCSV: o.ThreadsCSV}
	dur := "no limit set"
	if r.Duration.LimitedBy != LimitedByNone && r.Duration.LimitedBy != "" {
		dur = r.Duration.Human
	}
	v.Cards = []card{
		{Label: "Threads", Value: formatInt(r.Threads), Note: fmt.Sprintf("on %s ticket%s", formatInt(r.Tickets), plural(r.Tickets))},
		{Label: "Messages", Value: formatInt(r.Messages), Note: fmt.Sprintf("%s importable", formatInt(r.ImportableMsgs))},
		{Label: "Valid threads", Value: formatInt(r.ValidThreads), Class: "ok"},
		{Label: "Rejected threads", Value: formatInt(r.InvalidThreads), Note: fmt.Sprintf("and %s rejected messages", formatInt(r.RejectedMsgs)), Class: classIf(r.InvalidThreads+r.RejectedMsgs > 0, "bad")},
		{Label: "Predicted duration", Value: dur, Note: fmt.Sprintf("%s requests", formatInt(r.RequestsPlanned))},
	}
	labels, values := monthSeries(r.MessagesPerMonth)
	v.Months = newChart("chart-months", "Messages per month", labels, values, func(i int) string {
		return fmt.Sprintf("%s: %s messages", labels[i], formatInt(values[i]))
	})
	var bl []string
	var bv []int
	for _, b := range r.MessagesPerThread.Buckets {
		bl, bv = append(bl, b.Label), append(bv, b.Count)
	}
	v.PerThread = newChart("chart-per-thread", "Messages per thread", bl, bv, func(i int) string {
		return fmt.Sprintf("%s messages: %s threads", bl[i], formatInt(bv[i]))
	})
	v.Rules = rulesView(r, o.ExamplesPerRule)
	for _, s := range r.Samples {
		v.Samples = append(v.Samples, newSampleView(s, o.SampleBytes))
	}
	return t.ExecuteTemplate(w, "report.html.tmpl", v)
}

func classIf(c bool, class string) string {
	if c {
		return class
	}
	return ""
}

// monthSeries fills the months without messages between the first and
// the last, unless the span is absurd (a few bad dates), in which case
// only the months that hold messages are shown.
func monthSeries(ms []MonthCount) ([]string, []int) {
	var labels []string
	var values []int
	if len(ms) == 0 {
		return nil, nil
	}
	first, err1 := time.Parse("2006-01", ms[0].Month)
	last, err2 := time.Parse("2006-01", ms[len(ms)-1].Month)
	span := (last.Year()-first.Year())*12 + int(last.Month()-first.Month()) + 1
	if err1 != nil || err2 != nil || span > 240 {
		for _, m := range ms {
			labels, values = append(labels, m.Month), append(values, m.Messages)
		}
		return labels, values
	}
	have := make(map[string]int, len(ms))
	for _, m := range ms {
		have[m.Month] = m.Messages
	}
	for d := first; !d.After(last); d = d.AddDate(0, 1, 0) {
		k := d.Format("2006-01")
		labels, values = append(labels, k), append(values, have[k])
	}
	return labels, values
}

func rulesView(r *Report, limit int) []ruleView {
	idx := make(map[[2]string]int, len(r.IssuesByRule))
	out := make([]ruleView, len(r.IssuesByRule))
	for i, rc := range r.IssuesByRule {
		idx[[2]string{rc.Rule, rc.Severity}] = i
		out[i] = ruleView{Rule: rc.Rule, Severity: rc.Severity, Count: rc.Count, More: max(0, rc.Count-limit)}
	}
	for _, is := range r.Issues {
		i, ok := idx[[2]string{is.Rule, is.Severity}]
		if ok && len(out[i].Examples) < limit {
			out[i].Examples = append(out[i].Examples, is)
		}
	}
	return out
}

func newSampleView(s Sample, limit int) sampleView {
	var buf bytes.Buffer
	pretty := string(s.Body)
	if err := json.Indent(&buf, s.Body, "", "  "); err == nil {
		pretty = buf.String()
	}
	v := sampleView{Sample: s, Size: len(pretty)}
	if len(pretty) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(pretty[cut]) {
			cut--
		}
		pretty, v.Truncated = pretty[:cut], true
	}
	v.Pretty = pretty
	return v
}

// WriteDir writes dir/report.json and dir/report.html.
func WriteDir(dir string, r *Report, o HTMLOptions) error {
	if err := WriteJSON(filepath.Join(dir, "report.json"), r); err != nil {
		return err
	}
	return WriteAtomic(filepath.Join(dir, "report.html"), func(w io.Writer) error {
		return WriteHTML(w, r, o)
	})
}

// RunReport is what `import --report` shows: the run summary and the
// checkpoint's failure records at the end of the run.
type RunReport struct {
	Summary  *Summary
	Failures []Failure
}

type failureGroup struct {
	ReasonCount
	Examples []Failure
	More     int
}

type runView struct {
	ThreadsCSV bool
	S          *Summary
	Cards      []card
	Outcomes   chart
	Groups     []failureGroup
	Examples   int
}

// WriteRunHTML renders the page of an import run.
func WriteRunHTML(w io.Writer, rr RunReport, o HTMLOptions) error {
	o.defaults()
	t, err := templates()
	if err != nil {
		return err
	}
	s := rr.Summary
	if s == nil {
		s = &Summary{}
	}
	rate := 0.0
	if s.ElapsedSeconds > 0 {
		rate = float64(s.Requests) / s.ElapsedSeconds * 60
	}
	v := runView{S: s, Examples: o.ExamplesPerRule, ThreadsCSV: o.ThreadsCSV}
	v.Cards = []card{
		{Label: "Imported", Value: formatInt(s.Imported), Note: fmt.Sprintf("%s events", formatInt(s.EventsImported)), Class: "ok"},
		{Label: "Already done", Value: formatInt(s.AlreadyDone)},
		{Label: "Failed", Value: formatInt(s.Failed), Class: classIf(s.Failed > 0, "bad")},
		{Label: "Rejected", Value: formatInt(s.Rejected), Note: fmt.Sprintf("and %s rejected messages", formatInt(s.RejectedMsgs)), Class: classIf(s.Rejected+s.RejectedMsgs > 0, "bad")},
		{Label: "Requests", Value: formatInt(s.Requests), Note: fmt.Sprintf("%s retries, %s rate-limited (429)", formatInt(s.Retries), formatInt(s.RateLimited))},
		{Label: "Elapsed", Value: HumanDuration(s.ElapsedSeconds), Note: fmt.Sprintf("%.0f requests/min", rate)},
	}
	labels := []string{"imported", "already done", "failed", "rejected", "left for later"}
	values := []int{s.Imported, s.AlreadyDone, s.Failed, s.Rejected, s.Skipped}
	v.Outcomes = newChart("chart-outcomes", "Threads by outcome", labels, values, func(i int) string {
		return fmt.Sprintf("%s: %s threads", labels[i], formatInt(values[i]))
	})
	counts := CountFailures(rr.Failures)
	idx := make(map[ReasonCount]int, len(counts))
	for i, c := range counts {
		k := c
		k.Count = 0
		idx[k] = i
		v.Groups = append(v.Groups, failureGroup{ReasonCount: c, More: max(0, c.Count-o.ExamplesPerRule)})
	}
	for _, f := range rr.Failures {
		k := ReasonCount{State: f.State, Kind: "thread", Rule: f.Rule}
		if f.MessageKey != "" {
			k.Kind = "message"
		}
		if i, ok := idx[k]; ok && len(v.Groups[i].Examples) < o.ExamplesPerRule {
			v.Groups[i].Examples = append(v.Groups[i].Examples, f)
		}
	}
	return t.ExecuteTemplate(w, "run.html.tmpl", v)
}

// WriteRunDir writes dir/summary.json and dir/report.html for an import
// run.
func WriteRunDir(dir string, rr RunReport, o HTMLOptions) error {
	if err := WriteJSON(filepath.Join(dir, "summary.json"), rr.Summary); err != nil {
		return err
	}
	return WriteAtomic(filepath.Join(dir, "report.html"), func(w io.Writer) error {
		return WriteRunHTML(w, rr, o)
	})
}

// formatInt writes n with thousands separators: 12,345.
func formatInt(n int) string { return message.NewPrinter(language.English).Sprint(n) }

func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
