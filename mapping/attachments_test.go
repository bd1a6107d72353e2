package mapping

import (
	"testing"

	"github.com/threadlift/threadlift/sources"
)

func TestAttachmentNameRules(t *testing.T) {
	tests := []struct {
		name, clean, ext string
	}{
		{"report.PDF", "report.PDF", "pdf"},
		{"evil.exe.", "evil.exe.", "exe"},
		{"evil.exe ", "evil.exe ", "exe"},
		{"evil.exe. . .", "evil.exe. . .", "exe"},
		{"evil.scr\u200b", "evil.scr", "scr"},
		{"evil.\uff45\uff58\uff45", "evil.\uff45\uff58\uff45", "exe"},
		{"nul\x00byte.txt", "nulbyte.txt", "txt"},
		{"tab\tbell\adel\x7fc1\u0085.txt", "tabbelldelc1.txt", "txt"},
		{"invoice\u202efdp.exe", "invoicefdp.exe", "exe"},
		{"bom\ufeff.doc", "bom.doc", "doc"},
		{"bad\xffutf8.txt", "bad\ufffdutf8.txt", "txt"},
		{"\x00\x01", "", ""},
		{"no extension", "no extension", ""},
	}
	for _, tt := range tests {
		if got, _ := cleanName(tt.name); got != tt.clean {
			t.Errorf("cleanName(%q) = %q, want %q", tt.name, got, tt.clean)
		}
		if got := extension(tt.name); got != tt.ext {
			t.Errorf("extension(%q) = %q, want %q", tt.name, got, tt.ext)
		}
	}
	pol := AttachmentPolicy{Deny: []string{".EXE", "scr"}}
	for _, n := range []string{"evil.exe.", "evil.exe ", "evil.scr\u200b", "EVIL.EXE", "evil.\uff45\uff58\uff45"} {
		if pol.refused(sources.Attachment{Name: n}) == "" {
			t.Errorf("deny list let %q through", n)
		}
	}
}
