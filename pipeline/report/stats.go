package report

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Bucket is one bar of a distribution: the items whose value lies in
// [Min, Max] (Max nil: no upper bound).
type Bucket struct {
	Label string `json:"label"`
	Min   int    `json:"min"`
	Max   *int   `json:"max"`
	Count int    `json:"count"`
}

// Distribution describes a set of counts (messages per thread, ...).
type Distribution struct {
	Count  int     `json:"count"` // items measured
	Total  int     `json:"total"` // sum of their values
	Min    int     `json:"min"`
	Max    int     `json:"max"`
	Mean   float64 `json:"mean"` // rounded to 2 decimals
	Median int     `json:"median"`
	P95    int     `json:"p95"`
	// Buckets always holds the same bars, empty ones included, so that
	// reports compare: 1, 2, 3-5, 6-10, 11-20, 21-50, 51-100, 101-500,
	// 501-1000, 1001+. Values below 1 fall into the first.
	Buckets []Bucket `json:"buckets"`
}

// bucketBounds are the lower bounds of the distribution bars.
var bucketBounds = [...]int{1, 2, 3, 6, 11, 21, 51, 101, 501, 1001}

// NewDistribution describes values (which it sorts in place).
func NewDistribution(values []int) Distribution {
	d := Distribution{Count: len(values)}
	for i, lo := range bucketBounds {
		b := Bucket{Min: lo}
		if i+1 < len(bucketBounds) {
			hi := bucketBounds[i+1] - 1
			b.Max = &hi
			if hi == lo {
				b.Label = fmt.Sprint(lo)
			} else {
				b.Label = fmt.Sprintf("%d–%d", lo, hi)
			}
		} else {
			b.Label = fmt.Sprintf("%d+", lo)
		}
		d.Buckets = append(d.Buckets, b)
	}
	if len(values) == 0 {
		return d
	}
	slices.Sort(values)
	for _, v := range values {
		d.Total += v
		i := len(bucketBounds) - 1
		for i > 0 && v < bucketBounds[i] {
			i--
		}
		d.Buckets[i].Count++
	}
	d.Min, d.Max = values[0], values[len(values)-1]
	d.Mean = math.Round(float64(d.Total)/float64(len(values))*100) / 100
	d.Median = values[(len(values)-1)/2]
	d.P95 = values[int(math.Ceil(0.95*float64(len(values))))-1]
	return d
}

// Plan is a Zendesk plan's account-wide request ceiling (api-notes.md).
type Plan struct {
	Name              string
	RequestsPerMinute int
}

// Plans are the Zendesk plans the report predicts durations for.
var Plans = []Plan{
	{"Suite Team", 200},
	{"Suite Growth / Professional", 400},
	{"Suite Enterprise", 700},
	{"Enterprise Plus / High Volume add-on", 2500},
}

// What limits a predicted duration.
const (
	LimitedByRequests = "requests_per_minute"
	LimitedByWrites   = "write_requests_per_10_minutes"
	LimitedByNone     = "none"
)

// Duration is the predicted length of the import.
type Duration struct {
	Requests                  int     `json:"requests"`
	RequestsPerMinute         int     `json:"requests_per_minute"`
	WriteRequestsPer10Minutes int     `json:"write_requests_per_10_minutes"`
	Seconds                   float64 `json:"seconds"`
	Human                     string  `json:"human"`
	LimitedBy                 string  `json:"limited_by"`
	// EffectiveRequestsPerMinute is the pace the limits allow: the tighter
	// of requests_per_minute and a tenth of write_requests_per_10_minutes
	// (0: no limit).
	EffectiveRequestsPerMinute float64 `json:"effective_requests_per_minute"`
	// ByPlan is the same prediction at each plan's ceiling, the write
	// bucket unchanged.
	ByPlan []PlanDuration `json:"by_plan"`
}

// PlanDuration is the predicted import duration on one plan.
type PlanDuration struct {
	Plan              string  `json:"plan"`
	RequestsPerMinute int     `json:"requests_per_minute"`
	Seconds           float64 `json:"seconds"`
	Human             string  `json:"human"`
	LimitedBy         string  `json:"limited_by"`
	// EffectiveRequestsPerMinute is the pace on this plan: where the
	// write bucket binds, it is the same on every plan, and so is the
	// duration.
	EffectiveRequestsPerMinute float64 `json:"effective_requests_per_minute"`
}

// PredictDuration is how long n write requests take at the given limits
// (0: no limit): the tighter of the account ceiling and the write bucket
// decides. It also predicts the duration on each of Plans.
func PredictDuration(n, perMinute, writesPer10Min int) Duration {
	sec, by := predict(n, perMinute, writesPer10Min)
	d := Duration{Requests: n, RequestsPerMinute: perMinute, WriteRequestsPer10Minutes: writesPer10Min,
		Seconds: sec, Human: HumanDuration(sec), LimitedBy: by, EffectiveRequestsPerMinute: pace(perMinute, writesPer10Min)}
	for _, p := range Plans {
		s, b := predict(n, p.RequestsPerMinute, writesPer10Min)
		d.ByPlan = append(d.ByPlan, PlanDuration{Plan: p.Name, RequestsPerMinute: p.RequestsPerMinute, Seconds: s, Human: HumanDuration(s), LimitedBy: b,
			EffectiveRequestsPerMinute: pace(p.RequestsPerMinute, writesPer10Min)})
	}
	return d
}

// pace is the requests per minute the limits allow (0: no limit),
// rounded to one decimal.
func pace(perMinute, writesPer10Min int) float64 {
	p := float64(perMinute)
	if w := float64(writesPer10Min) / 10; writesPer10Min > 0 && (p == 0 || w < p) {
		p = w
	}
	return math.Round(p*10) / 10
}

func predict(n, perMinute, writesPer10Min int) (float64, string) {
	var sec float64
	by := LimitedByNone
	if perMinute > 0 {
		sec, by = float64(n)/float64(perMinute)*60, LimitedByRequests
	}
	if writesPer10Min > 0 {
		if w := float64(n) / float64(writesPer10Min) * 600; w > sec || by == LimitedByNone {
			sec, by = w, LimitedByWrites
		}
	}
	return math.Round(sec*10) / 10, by
}

// HumanDuration formats seconds for people: "45s", "1m23s" (seconds are
// shown below 10 minutes), "3h12m", "4.5 days".
func HumanDuration(sec float64) string {
	d := time.Duration(sec * float64(time.Second)).Round(time.Second)
	switch {
	case d < time.Minute:
		return d.String()
	case d < 10*time.Minute:
		m, s := int(d/time.Minute), int(d%time.Minute/time.Second)
		if s == 0 {
			return fmt.Sprintf("%dm", m)
		}
		return fmt.Sprintf("%dm%ds", m, s)
	case d < 48*time.Hour:
		s := d.Round(time.Minute).String()
		return s[:len(s)-2] // drop the "0s"
	}
	return fmt.Sprintf("%.1f days", d.Hours()/24)
}
