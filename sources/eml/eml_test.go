package eml

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/threadlift/threadlift/sources"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func testNow() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }

func write(t testing.TB, root, name, data string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func msg(id string) string {
	return "From: a@example.com\nTo: b@example.com\nSubject: s " + id + "\nDate: Mon, 1 Jan 2024 10:00:00 +0000\nMessage-ID: <" + id + ">\n\nbody " + id + "\n"
}

func records(t testing.TB, path, name string) string {
	t.Helper()
	r, err := Open(path, sources.Options{Name: name, Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var b strings.Builder
	for {
		env, err := r.Next()
		if err == io.EOF {
			return b.String()
		}
		var re *sources.RecordError
		if errors.As(err, &re) {
			fmt.Fprintf(&b, "%s: unreadable %s: %v\n", re.Loc, re.Rule, re.Err)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		m, err := r.Load(env)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s: key %s issues %v body %q\n", env.Loc, env.Key(), env.Issues, m.Body)
	}
}

// TestEMLGolden: a folder nested by year and month, walked in sorted
// order; .eml and .msg in any case; other files and hidden ones not
// read; an Outlook binary .msg refused; an RFC 822 .msg read; a file
// starting with a "From " line read as one message; one file alone.
func TestEMLGolden(t *testing.T) {
	root := t.TempDir()
	write(t, root, "2021/02/b.eml", msg("b@x"))
	write(t, root, "2020/12/a.EML", msg("a@x"))
	write(t, root, "2020/12/c.msg", msg("c@x"))
	write(t, root, "2020/12/outlook.msg", "\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1"+strings.Repeat("\x00", 100))
	write(t, root, "2020/12/notes.txt", "not a message")
	write(t, root, ".trash/x.eml", msg("hidden@x"))
	write(t, root, "2020/12/._a.eml", "AppleDouble junk")
	write(t, root, "2022/from.eml", "From a@example.com Mon Jan  1 10:00:00 2024\n"+msg("f@x")+"\nFrom the start, a body line\n")
	got := "# folder\n" + records(t, root, "exports") + "# one file\n" + records(t, filepath.Join(root, "2021/02/b.eml"), "exports/b.eml")
	golden := filepath.Join("testdata", "eml.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("eml records differ from %s (run go test -update):\n%s", golden, got)
	}
}

// FuzzEMLFile reads any bytes as a file of an eml folder: one record or
// one record error, never a panic.
func FuzzEMLFile(f *testing.F) {
	f.Add([]byte(msg("a@x")))
	f.Add([]byte("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1"))
	f.Add([]byte{})
	f.Add([]byte("\x1f\x8b\x08\x00gzip"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		write(t, dir, "m.eml", string(data))
		r, err := Open(dir, sources.Options{Name: "d", Now: testNow, MaxMessageBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		env, err := r.Next()
		var re *sources.RecordError
		switch {
		case errors.As(err, &re):
			if re.Loc.String() != "d/m.eml" {
				t.Fatalf("record error at %s, want d/m.eml", re.Loc)
			}
		case err != nil:
			t.Fatal(err)
		default:
			if _, err := r.Load(env); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := r.Next(); err != io.EOF {
			t.Fatalf("second Next = %v, want io.EOF", err)
		}
	})
}
