package formats

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/mbox"
)

var testNow = func() time.Time { return time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC) }

var jsonNow = testNow

const fidelityHead = "From a@example.com Mon Mar  4 09:00:00 2024\nFrom: a@example.com\nTo: b@example.com\nSubject: s\nDate: Mon, 4 Mar 2024 10:00:00 +0000\nMessage-ID: <m@example.com>\n"

func writeTemp(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func contentKey(fields ...string) string {
	h := sha256.Sum256([]byte(strings.Join(fields, "\x00")))
	return "sha256:" + hex.EncodeToString(h[:])
}

// loadOne reads the one message of an mbox.
func loadOne(t *testing.T, text string) *sources.Message {
	t.Helper()
	r, err := mbox.Open(writeTemp(t, "one.mbox", text), sources.Options{Now: testNow})
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

func readAttachment(t testing.TB, r sources.Reader, m *sources.Message, i int) (int64, string) {
	t.Helper()
	rc, err := r.(sources.AttachmentReader).OpenAttachment(m, i)
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
