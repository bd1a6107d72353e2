package header

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReferences(t *testing.T) {
	tests := []struct {
		refs, irt, self string
		want            []string
	}{
		{"<a@x> <b@x>", "<b@x>", "c@x", []string{"a@x", "b@x"}},
		{"<a@x>", "<b@x> (sent)", "c@x", []string{"a@x", "b@x"}},
		{"<a@x> <c@x> <b@x>", "", "c@x", []string{"a@x", "b@x"}},
		{"", "Other person's message of Sat <p@x>", "c@x", []string{"p@x"}},
		{"<a@x> <> junk <b c>", "your message", "", []string{"a@x"}},
		{"a@x b@x", "", "", []string{"a@x", "b@x"}},
		{"<b@x> <a@x>", "<b@x>", "", []string{"a@x", "b@x"}},
	}
	for _, tt := range tests {
		if got := references(tt.refs, tt.irt, tt.self); !cmp.Equal(got, tt.want) {
			t.Errorf("references(%q, %q, %q) = %q, want %q", tt.refs, tt.irt, tt.self, got, tt.want)
		}
	}
	for in, want := range map[string]string{" <Ab@X> ": "Ab@X", "plain@x": "plain@x", "": "", "<a@x> <b@x>": "a@x"} {
		if got := normalizeID(in); got != want {
			t.Errorf("normalizeID(%q) = %q, want %q", in, got, want)
		}
	}
}
