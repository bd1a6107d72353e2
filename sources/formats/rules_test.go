package formats

import (
	"errors"
	"io"
	"testing"

	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/csv"
	"github.com/threadlift/threadlift/sources/json"
	"github.com/threadlift/threadlift/sources/mbox"
)

// TestRecordErrorsMatchTheirRule: each format's unreadable records match
// their rule with errors.Is, spelled as reports have always shown it.
func TestRecordErrorsMatchTheirRule(t *testing.T) {
	tests := []struct {
		typ, file, data string
		rule            sources.Rule
		name            string
	}{
		{"csv", "a.csv", "thread_id,created_at,from,to,body\nt1,2024-01-01 10:00:00,a@x.com,b@x.com,\"open\n", csv.RuleUnterminatedQuote, "unterminated-quote"},
		{"csv", "a.csv", "thread_id,created_at,from,to,body\nt1,2024-01-01 10:00:00,a@x.com,b@x.com,x\"y\n", csv.RuleBadQuote, "bad-quote"},
		{"csv", "a.csv", "thread_id,created_at,from,to,body\nt1,2024-01-01 10:00:00\n", csv.RuleWrongColumnCount, "wrong-column-count"},
		{"csv", "a.csv", "thread_id,created_at,from,to,body\nt\xff,2024-01-01 10:00:00,a@x.com,b@x.com,x\n", csv.RuleNotUTF8, "not-utf8"},
		{"json", "a.jsonl", "{\"thread_id\": \n", json.RuleInvalidJSON, "invalid-json"},
		{"json", "a.jsonl", "{\"thread_id\":\"t\",\"created_at\":\"2024-01-01 10:00:00\",\"from\":\"a@x.com\",\"to\":\"b@x.com\",\"body\":\"x\"}\n[1]\n", json.RuleMixedShape, "mixed-shape"},
		{"json", "a.json", "[1]", json.RuleWrongType, "wrong-type"},
		{"mbox", "a.mbox", "\x1f\x8b\x08\x00rest", mbox.RuleCompressed, "compressed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Registry().Open(tt.typ, writeTemp(t, tt.file, tt.data), sources.Options{Now: testNow})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var found error
			for {
				_, err := r.Next()
				if err == io.EOF {
					break
				}
				if err == nil {
					continue
				}
				var re *sources.RecordError
				if !errors.As(err, &re) {
					t.Fatalf("Next: %v", err)
				}
				if found == nil {
					found = err
				}
			}
			if found == nil {
				t.Fatalf("no record error, want %s", tt.name)
			}
			if !errors.Is(found, tt.rule) {
				t.Errorf("errors.Is(%v, %s) = false", found, tt.name)
			}
			var re *sources.RecordError
			errors.As(found, &re)
			if string(re.Rule) != tt.name || string(tt.rule) != tt.name {
				t.Errorf("rule %q (constant %q), want it spelled %q", re.Rule, tt.rule, tt.name)
			}
		})
	}
}
