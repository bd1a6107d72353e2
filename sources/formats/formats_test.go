package sources

import (
	"errors"
	"testing"
)

func TestOpen(t *testing.T) {
	if _, err := Open("maildir", "x", Options{}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Open(maildir) error = %v, want ErrUnsupported", err)
	}
	r, err := Open("mbox", "testdata/basic.mbox", Options{Name: "archive.mbox"})
	if err != nil {
		t.Fatal(err)
	}
	e, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if got := e.Loc.String(); got != "archive.mbox@0" {
		t.Errorf("Loc = %s, want archive.mbox@0", got)
	}
	r.Close()
	if _, err := r.Next(); !errors.Is(err, ErrClosed) {
		t.Errorf("Next after Close = %v, want ErrClosed", err)
	}
	if _, err := OpenMbox("testdata/does-not-exist.mbox", Options{}); err == nil {
		t.Error("OpenMbox of a missing file: no error")
	}
}
