package sources_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/threadlift/threadlift/sources"
)

// TestRecordErrorMatchesRule: a caller tells a record error by its rule
// with errors.Is, gets at it with errors.As through any wrapping, and the
// rule still reads (and marshals) as the name reports show.
func TestRecordErrorMatchesRule(t *testing.T) {
	const other sources.Rule = "other-rule"
	cause := errors.New("row has 3 fields, the header has 4")
	var err error = &sources.RecordError{Loc: sources.Location{File: "a.csv", Line: 7}, Rule: sources.RuleTooLarge, Err: cause}
	err = fmt.Errorf("read a.csv: %w", err)

	if !errors.Is(err, sources.RuleTooLarge) {
		t.Errorf("errors.Is(%v, RuleTooLarge) = false, want true", err)
	}
	if errors.Is(err, other) {
		t.Errorf("errors.Is(%v, %q) = true, want false", err, other)
	}
	if !errors.Is(err, cause) {
		t.Errorf("errors.Is(%v, its cause) = false: the cause must stay reachable", err)
	}
	var re *sources.RecordError
	if !errors.As(err, &re) || re.Rule != sources.RuleTooLarge {
		t.Fatalf("errors.As(%v) = %v, want the *RecordError with rule too-large", err, re)
	}
	var rule sources.Rule
	if !errors.As(err, &rule) || rule != sources.RuleTooLarge {
		t.Errorf("errors.As(%v, *Rule) = %q, want too-large", err, rule)
	}
	if got := re.Error(); got != "a.csv:7: row has 3 fields, the header has 4" {
		t.Errorf("Error() = %q: the rule must not change the message", got)
	}
	if s := string(re.Rule); s != "too-large" {
		t.Errorf("string(Rule) = %q, want too-large", s)
	}
	if b, _ := json.Marshal(struct{ Rule sources.Rule }{re.Rule}); string(b) != `{"Rule":"too-large"}` {
		t.Errorf("JSON of a rule = %s, want the bare name", b)
	}
}
