package formats

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/csv"
	"github.com/threadlift/threadlift/sources/json"
)

// TestOpenAttachmentFiles: csv and json attachments are their files, given
// by path; a file that changed or is gone is an error naming the path.
func TestOpenAttachmentFiles(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "files"), 0o755)
	content := bytes.Repeat([]byte("attachment bytes\n"), 1000)
	os.WriteFile(filepath.Join(dir, "files", "a.txt"), content, 0o644)
	os.WriteFile(filepath.Join(dir, "files", "b.pdf"), []byte("%PDF-1.4"), 0o644)
	csvPath := filepath.Join(dir, "x.csv")
	os.WriteFile(csvPath, []byte("thread_id,message_id,created_at,from,to,subject,body,attachments\n"+
		"t1,m1,2024-01-01T10:00:00Z,a@example.com,b@example.com,s,body,files/a.txt;files/b.pdf\n"), 0o644)
	jsonPath := filepath.Join(dir, "x.jsonl")
	os.WriteFile(jsonPath, []byte(`{"thread_id":"t1","message_id":"m1","created_at":"2024-01-01T10:00:00Z","from":"a@example.com","to":"b@example.com","body":"b","attachments":["files/a.txt","files/b.pdf"]}`+"\n"), 0o644)

	for _, tc := range []struct {
		name string
		open func(string, sources.Options) (sources.Reader, error)
		path string
	}{{"csv", csv.Open, csvPath}, {"json", json.Open, jsonPath}} {
		t.Run(tc.name, func(t *testing.T) {
			os.WriteFile(filepath.Join(dir, "files", "a.txt"), content, 0o644)
			r, err := tc.open(tc.path, sources.Options{Now: testNow})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			env, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			m, err := r.Load(env)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Attachments) != 2 {
				t.Fatalf("attachments %+v, issues %v", m.Attachments, m.Issues)
			}
			wantSum := sha256.Sum256(content)
			n, sum := readAttachment(t, r, m, 0)
			if n != int64(len(content)) || sum != hex.EncodeToString(wantSum[:]) || m.Attachments[0].Size != n {
				t.Errorf("attachment 0: %d bytes (Size %d), sha %s; want %d bytes", n, m.Attachments[0].Size, sum, len(content))
			}
			if n, _ := readAttachment(t, r, m, 1); n != 8 {
				t.Errorf("attachment 1: %d bytes, want 8", n)
			}
			// changed size
			os.WriteFile(filepath.Join(dir, "files", "a.txt"), content[:10], 0o644)
			if _, err := r.(sources.AttachmentReader).OpenAttachment(m, 0); !errors.Is(err, sources.ErrAttachmentChanged) || !strings.Contains(err.Error(), "a.txt") {
				t.Errorf("OpenAttachment(shrunk file) = %v, want ErrAttachmentChanged naming a.txt", err)
			}
			// replaced by a directory
			os.Remove(filepath.Join(dir, "files", "a.txt"))
			os.Mkdir(filepath.Join(dir, "files", "a.txt"), 0o755)
			if _, err := r.(sources.AttachmentReader).OpenAttachment(m, 0); err == nil || !strings.Contains(err.Error(), "a.txt") {
				t.Errorf("OpenAttachment(directory) = %v, want an error naming a.txt", err)
			}
			os.Remove(filepath.Join(dir, "files", "a.txt"))
			if _, err := r.(sources.AttachmentReader).OpenAttachment(m, 0); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "a.txt") {
				t.Errorf("OpenAttachment(missing) = %v, want ErrNotExist naming a.txt", err)
			}
		})
	}
}
