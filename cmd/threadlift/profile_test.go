package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCPUProfileFlag(t *testing.T) {
	prof := filepath.Join(t.TempDir(), "cpu.prof")
	r := run(t, nil, "version", "--cpuprofile", prof)
	if r.code != 0 {
		t.Fatalf("version --cpuprofile: exit %d, %s", r.code, r.stderr)
	}
	if st, err := os.Stat(prof); err != nil || st.Size() == 0 {
		t.Errorf("no CPU profile written: %v", err)
	}
	// Hidden: for performance work, not for users.
	if h := run(t, nil, "--help"); h.code != 0 || strings.Contains(h.stdout, "cpuprofile") {
		t.Errorf("--help mentions --cpuprofile or failed: %d", h.code)
	}
}
