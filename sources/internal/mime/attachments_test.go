package mime

import (
	"testing"
)

// TestRFC2231Param covers what mime.ParseMediaType leaves out.
func TestRFC2231Param(t *testing.T) {
	tests := []struct{ v, key, want string }{
		{`attachment; filename*=ISO-8859-1''caf%E9.txt`, "filename", "café.txt"},
		{`attachment; filename*0*=windows-1252''a%80; filename*1="b c"; filename*2*=%E9`, "filename", "a€b cé"},
		{`image/png; name*=utf-8'en'%E2%82%AC.png`, "name", "€.png"},
		{`attachment; filename="plain.txt"`, "filename", ""},
		{`attachment; xfilename*=utf-8''x`, "filename", ""},
	}
	for _, tt := range tests {
		if got := rfc2231Param(tt.v, tt.key); got != tt.want {
			t.Errorf("rfc2231Param(%q, %s) = %q, want %q", tt.v, tt.key, got, tt.want)
		}
	}
}
