package maildir

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
	"github.com/threadlift/threadlift/sources/mbox"
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

func msg(id, refs string) string {
	s := "From: a@example.com\nTo: b@example.com\nSubject: s " + id + "\nDate: Mon, 1 Jan 2024 10:00:00 +0000\nMessage-ID: <" + id + ">\n"
	if refs != "" {
		s += "References: <" + refs + ">\n"
	}
	return s + "\nbody " + id + "\n>From the mbox escaping, which a maildir does not have\n"
}

// maildirTree is a Maildir++ root with INBOX, .Sent and .Archive.2020,
// files in tmp/, dot files, an empty file, a bare-CR file and flags.
func maildirTree(t testing.TB) string {
	root := t.TempDir()
	write(t, root, "cur/1700000002.M2P1.host:2,S", msg("b@x", "a@x"))
	write(t, root, "cur/1700000001.M1P1.host:2,RS", msg("a@x", ""))
	write(t, root, "new/1700000003.M3P1.host", msg("c@x", ""))
	write(t, root, "tmp/1700000009.M9P1.host", msg("never@x", ""))
	write(t, root, "cur/.DS_Store", "junk")
	write(t, root, "dovecot-uidlist", "3 V1 N4\n")
	write(t, root, "cur/1700000004.M4P1.host:2,", "")
	write(t, root, ".Sent/cur/1700000005.M5P1.host:2,S", msg("d@x", "a@x"))
	write(t, root, ".Archive.2020/new/1700000006.M6P1.host", strings.ReplaceAll(msg("e@x", ""), "\n", "\r"))
	return root
}

// records reads every record of a maildir: its location, key, references
// and issues, or its record error; and the loaded body.
func records(t testing.TB, root string, folders []string) string {
	t.Helper()
	r, err := Open(root, sources.Options{Name: "Maildir", Now: testNow, Format: sources.FormatOptions{Folders: folders}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var b strings.Builder
	for {
		env, err := r.Next()
		if err == io.EOF {
			break
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
		fmt.Fprintf(&b, "%s: key %s refs %v date %s issues %v\n  body %q\n", env.Loc, env.Key(), env.References,
			env.Date.UTC().Format(time.RFC3339), env.Issues, m.Body)
	}
	return b.String()
}

// TestMaildirGolden: cur/ then new/, names sorted, tmp/ and dot files
// never read, an empty file reported, INBOX by default and folders as
// asked; bodies as written (no mboxrd unescaping).
func TestMaildirGolden(t *testing.T) {
	root := maildirTree(t)
	var got strings.Builder
	for _, f := range [][]string{nil, {".Sent"}, {"all"}} {
		fmt.Fprintf(&got, "# folders %v\n%s", f, records(t, root, f))
	}
	golden := filepath.Join("testdata", "maildir.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != string(want) {
		t.Errorf("maildir records differ from %s (run go test -update):\n%s", golden, got.String())
	}
}

// TestMaildirOpenErrors: a folder that is no maildir, an unknown folder.
func TestMaildirOpenErrors(t *testing.T) {
	root := maildirTree(t)
	if _, err := Open(t.TempDir(), sources.Options{}); !errors.Is(err, ErrNotMaildir) {
		t.Errorf("Open(empty folder) = %v, want ErrNotMaildir", err)
	}
	if _, err := Open(root, sources.Options{Format: sources.FormatOptions{Folders: []string{".Nope"}}}); !errors.Is(err, ErrNotMaildir) {
		t.Errorf("Open(folders .Nope) = %v, want ErrNotMaildir", err)
	}
}

// FuzzMessageFile reads any bytes as a message file (a maildir message,
// an .eml): Next and Load never panic, the one record spans the file.
func FuzzMessageFile(f *testing.F) {
	f.Add([]byte(msg("a@x", "b@x")))
	f.Add([]byte("From x Mon Jan  1 10:00:00 2024\n" + msg("a@x", "")))
	f.Add([]byte("\r\nSubject: x\r\r\rbody"))
	f.Add([]byte("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nx\n--b--\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := mbox.NewMessage(strings.NewReader(string(data)), int64(len(data)), sources.Options{Name: "m.eml", Now: testNow, MaxMessageBytes: 1 << 20}, nil)
		if err != nil {
			t.Fatal(err)
		}
		env, err := r.Next()
		if err != nil {
			return // a record error or nothing: fine
		}
		if env.Loc.Offset != 0 || env.Size != int64(len(data)) {
			t.Fatalf("record at %d size %d, want the whole file (%d)", env.Loc.Offset, env.Size, len(data))
		}
		if _, err := r.Load(env); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Next(); err != io.EOF {
			t.Fatalf("second Next = %v, want io.EOF: a message file is one record", err)
		}
	})
}

// TestMaildirLoadsShareBuffers: one reader's loads share their buffers
// (mbox.Buffers); quoted-printable and multipart messages loaded one
// after the other decode each as itself.
func TestMaildirLoadsShareBuffers(t *testing.T) {
	root := t.TempDir()
	for i := range 6 {
		body := fmt.Sprintf("Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\ncaf=C3=A9 %d\n", i)
		if i%2 == 1 {
			body = fmt.Sprintf("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\npart=20%d\n--b--\n", i)
		}
		write(t, root, fmt.Sprintf("cur/%d:2,S", i), fmt.Sprintf("From: a@example.com\nTo: b@example.com\nDate: Mon, 1 Jan 2024 10:00:00 +0000\nMessage-ID: <%d@x>\nMIME-Version: 1.0\n%s", i, body))
	}
	r, err := Open(root, sources.Options{Name: "M", Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := 0; ; i++ {
		env, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		m, err := r.Load(env)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("café %d", i)
		if i%2 == 1 {
			want = fmt.Sprintf("part %d", i)
		}
		if strings.TrimSpace(m.Body) != want {
			t.Errorf("message %d body %q, want %q", i, m.Body, want)
		}
	}
}
