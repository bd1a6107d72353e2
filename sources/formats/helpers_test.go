package sources

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var fTestNow = func() time.Time { return time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC) }

var fJSONNow = fTestNow

const fFidelityHead = "From a@example.com Mon Mar  4 09:00:00 2024\nFrom: a@example.com\nTo: b@example.com\nSubject: s\nDate: Mon, 4 Mar 2024 10:00:00 +0000\nMessage-ID: <m@example.com>\n"

func fWriteTemp(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func fContentKey(fields ...string) string {
	h := sha256.Sum256([]byte(strings.Join(fields, "\x00")))
	return "sha256:" + hex.EncodeToString(h[:])
}

// fLoadOne reads the one message of an mbox.
func fLoadOne(t *testing.T, mbox string) *Message {
	t.Helper()
	r, err := OpenMbox(fWriteTemp(t, "one.mbox", mbox), Options{Now: fTestNow})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	env, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("more than one message: %v", err)
	}
	m, err := r.Load(env)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func fReadAttachment(t testing.TB, r Reader, m *Message, i int) (int64, string) {
	t.Helper()
	rc, err := r.(AttachmentReader).OpenAttachment(m, i)
	if err != nil {
		t.Fatalf("OpenAttachment(%s, %d): %v", m.Loc, i, err)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		t.Fatalf("reading attachment %d of %s: %v", i, m.Loc, err)
	}
	return n, hex.EncodeToString(h.Sum(nil))
}
