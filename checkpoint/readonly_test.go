//go:build unix

package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// roHelperEnv makes the test binary open a checkpoint and print the
// outcome: see TestReadOnlyHelperProcess.
const roHelperEnv = "THREADLIFT_CHECKPOINT_RO_HELPER"

// TestReadOnlyHelperProcess is not a test: re-executed by
// TestReadOnlyCheckpoint (as an unprivileged user when the tests run as
// root, whom permissions do not stop), it opens the checkpoint named by
// roHelperEnv ("write:PATH" or "read:PATH") and prints "ok" or the error.
func TestReadOnlyHelperProcess(t *testing.T) {
	v := os.Getenv(roHelperEnv)
	if v == "" {
		t.Skip("helper process only")
	}
	mode, path, _ := strings.Cut(v, ":")
	s, err := Open(context.Background(), path, Options{ReadOnly: mode == "read"})
	if err == nil {
		_, err = s.Counts(context.Background())
		s.Close()
	}
	switch {
	case err == nil:
		fmt.Println("ok")
	case errors.Is(err, ErrReadOnly):
		fmt.Println("ErrReadOnly:", err)
	case errors.Is(err, ErrUnusable):
		fmt.Println("ErrUnusable:", err)
	default:
		fmt.Println("error:", err)
	}
	os.Exit(0)
}

// unprivileged runs the test binary's helper as a user whom permissions
// stop: the current one, or nobody (65534) when running as root. The
// binary is copied where that user may run it.
func unprivileged(t *testing.T) func(env string) string {
	t.Helper()
	bin := os.Args[0]
	root := os.Geteuid() == 0
	if root {
		dir := t.TempDir()
		ok(t, os.Chmod(dir, 0o755))
		ok(t, os.Chmod(filepath.Dir(dir), 0o755))
		src, err := os.Open(bin)
		ok(t, err)
		defer src.Close()
		bin = filepath.Join(dir, "checkpoint.test")
		dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
		ok(t, err)
		_, err = io.Copy(dst, src)
		ok(t, err)
		ok(t, dst.Close())
	}
	return func(env string) string {
		cmd := exec.Command(bin, "-test.run=^TestReadOnlyHelperProcess$", "-test.v=false")
		cmd.Env = append(os.Environ(), roHelperEnv+"="+env)
		if root {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helper: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
}

// TestReadOnlyCheckpoint: a checkpoint in a folder that cannot be written,
// or a checkpoint file that cannot be written, is reported as read-only
// with its path, never as unusable (the words for a corrupt file, which
// invite deleting it); a reader (status, failures) still reads it.
func TestReadOnlyCheckpoint(t *testing.T) {
	run := unprivileged(t)
	root := os.Geteuid() == 0
	ctx := context.Background()
	// writableBy makes p writable by the helper's user only when w.
	writableBy := func(p string, dir, w bool) {
		mode := os.FileMode(0o444)
		if dir {
			mode = 0o555
		}
		if w {
			mode |= 0o200
		}
		ok(t, os.Chmod(p, mode))
		if root {
			uid := 0
			if w {
				uid = 65534
			}
			ok(t, os.Chown(p, uid, uid))
		}
	}
	good := func(t *testing.T, dir string) string {
		path := filepath.Join(dir, "threadlift.db")
		s := openT(t, path)
		ok(t, s.Register(ctx, Thread{Key: "t", TicketID: 1}, msgs("m")))
		ok(t, s.Close()) // clean: the -wal is folded back and removed
		return path
	}
	tests := []struct {
		name      string
		setup     func(t *testing.T, dir string) string
		wantWrite string // in the writer's error
		reader    bool   // a reader opens it fine
	}{
		{"read-only folder, no checkpoint yet", func(t *testing.T, dir string) string {
			writableBy(dir, true, false)
			return filepath.Join(dir, "threadlift.db")
		}, "the folder", false},
		{"read-only folder, writable checkpoint", func(t *testing.T, dir string) string {
			p := good(t, dir)
			writableBy(p, false, true)
			writableBy(dir, true, false)
			return p
		}, "the folder", true},
		{"read-only checkpoint file", func(t *testing.T, dir string) string {
			p := good(t, dir)
			writableBy(p, false, false)
			writableBy(dir, true, true)
			return p
		}, "threadlift.db is not writable", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			ok(t, os.Chmod(base, 0o755))
			ok(t, os.Chmod(filepath.Dir(base), 0o755))
			dir := filepath.Join(base, "state")
			ok(t, os.Mkdir(dir, 0o755))
			path := tt.setup(t, dir)
			t.Cleanup(func() { os.Chmod(dir, 0o755) })

			out := run("write:" + path)
			if !strings.HasPrefix(out, "ErrReadOnly:") || !strings.Contains(out, tt.wantWrite) || !strings.Contains(out, path) || strings.Contains(out, "unusable") {
				t.Errorf("Open for writing said %q, want ErrReadOnly naming %s and %q, never \"unusable\"", out, path, tt.wantWrite)
			}
			if tt.reader {
				if out := run("read:" + path); out != "ok" {
					t.Errorf("Open for reading said %q, want ok", out)
				}
			}
		})
	}
}
