package formats

import (
	"errors"
	"testing"

	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/mbox"
)

func TestOpen(t *testing.T) {
	if _, err := Registry().Open("pst", "x", sources.Options{}); !errors.Is(err, sources.ErrUnsupported) {
		t.Errorf("Open(pst) error = %v, want ErrUnsupported", err)
	}
	r, err := Registry().Open("mbox", "../mbox/testdata/basic.mbox", sources.Options{Name: "archive.mbox"})
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
	if _, err := r.Next(); !errors.Is(err, sources.ErrClosed) {
		t.Errorf("Next after Close = %v, want ErrClosed", err)
	}
	if _, err := mbox.Open("../mbox/testdata/does-not-exist.mbox", sources.Options{}); err == nil {
		t.Error("mbox.Open of a missing file: no error")
	}
}
