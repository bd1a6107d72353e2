//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// TestReadOnlyCheckpointFolder: import on a checkpoint whose folder or
// file cannot be written exits 3 saying "read-only" and the path, never
// "unusable" (which invites deleting a good checkpoint); status still
// reads it. Run as nobody when the tests run as root.
func TestReadOnlyCheckpointFolder(t *testing.T) {
	srv := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", Token: token, AutoCreateTickets: true})
	root := os.Geteuid() == 0
	bin := binary
	if root {
		// The test binary's folder is private: copy it where nobody may run it.
		d := t.TempDir()
		os.Chmod(d, 0o755)
		os.Chmod(filepath.Dir(d), 0o755)
		data, err := os.ReadFile(binary)
		if err != nil {
			t.Fatal(err)
		}
		bin = filepath.Join(d, "threadlift")
		if err := os.WriteFile(bin, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	runAs := func(args ...string) result {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "TL_TEST_TOKEN="+token)
		if root {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		}
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		code := 0
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return result{code, out.String(), errb.String()}
	}
	for _, what := range []string{"folder", "file"} {
		t.Run(what, func(t *testing.T) {
			dir, cfg := setup(t, srv.URL)
			os.Chmod(dir, 0o777)
			os.Chmod(filepath.Dir(dir), 0o755)
			state := filepath.Join(dir, "state")
			path := filepath.Join(state, "threadlift.db")
			os.MkdirAll(state, 0o755)
			s, err := checkpoint.Open(context.Background(), path, checkpoint.Options{})
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			t.Cleanup(func() { os.Chmod(state, 0o755) })
			if what == "folder" {
				os.Chmod(path, 0o666)
				os.Chmod(state, 0o555)
			} else {
				os.Chmod(path, 0o444)
				os.Chmod(state, 0o777)
			}
			r := runAs("import", "-c", cfg, "--no-progress")
			if r.code != 3 || !strings.Contains(r.stderr, "read-only") || !strings.Contains(r.stderr, path) || strings.Contains(r.stderr, "unusable") {
				t.Errorf("import on a read-only checkpoint %s: exit %d, stderr %q; want 3, \"read-only\" and %s, never \"unusable\"", what, r.code, r.stderr, path)
			}
			if r := runAs("status", "-c", cfg); r.code != 0 {
				t.Errorf("status on a read-only checkpoint %s: exit %d, stderr %q", what, r.code, r.stderr)
			}
		})
	}
}

// TestLockThroughBindMount: the checkpoint file bind-mounted at another
// path (in a private mount namespace: needs root and unshare) meets the
// same lock.
func TestLockThroughBindMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a bind mount")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare(1)")
	}
	if err := exec.Command("unshare", "-m", "true").Run(); err != nil {
		t.Skipf("cannot make a mount namespace here: %v", err)
	}
	srv := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", Token: token, AutoCreateTickets: true})
	dir, cfg := setup(t, srv.URL)
	real := filepath.Join(dir, "state", "threadlift.db")
	os.MkdirAll(filepath.Dir(real), 0o755)
	holder, err := checkpoint.Open(context.Background(), real, checkpoint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	mnt := filepath.Join(dir, "mnt.db")
	if err := os.WriteFile(mnt, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("unshare", "-m", "sh", "-c", `mount --bind "$1" "$2" && exec "$3" import -c "$4" --no-progress`, "sh", real, mnt, binary, cfg)
	cmd.Env = append(os.Environ(), "TL_TEST_TOKEN="+token, "THREADLIFT_CHECKPOINT="+mnt)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || !strings.Contains(errb.String(), "locked by another run") {
		t.Errorf("import through a bind mount of the checkpoint while locked: %v, stderr %q; want exit 3 and the lock", err, errb.String())
	}
	if n := srv.RequestCount("total"); n != 0 {
		t.Errorf("%d requests reached Zendesk while the checkpoint was locked", n)
	}
}

// TestCheckReadOnlyCheckpointFolder: a checkpoint folder the user cannot
// write to fails check. As root (who may write anywhere), the binary runs
// as nobody.
func TestCheckReadOnlyCheckpointFolder(t *testing.T) {
	srv := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", Token: token, AutoCreateTickets: true})
	dir, cfg := setup(t, srv.URL)
	setRate(t, cfg, "200")
	state := filepath.Join(dir, "state")
	os.Mkdir(state, 0o555)
	os.Chmod(state, 0o555)
	cmd := exec.Command(binary, "check", "-c", cfg)
	cmd.Env = append(os.Environ(), "TL_TEST_TOKEN="+token)
	if os.Geteuid() == 0 {
		// nobody must reach the binary and the config.
		for _, d := range []string{filepath.Dir(binary), dir, filepath.Dir(dir)} {
			os.Chmod(d, 0o755)
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("check = %v, want exit 3\n%s", err, out.String())
	}
	if l := checkLine(out.String(), "checkpoint"); !strings.HasPrefix(l, "FAIL ") || !strings.Contains(l, "not writable") {
		t.Errorf("checkpoint line = %q, want FAIL not writable\n%s", l, out.String())
	}
}
