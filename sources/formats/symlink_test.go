package formats

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/threadlift/threadlift/sources"
)

// TestAttachmentSymlinkMayNotLeaveTheFolder: an attachment path that is,
// or passes through, a symbolic link pointing outside the source file's
// folder is refused like "../secret" is; a link that stays inside is
// fine, and so is a source opened through a linked folder. Before, the
// check looked at the path as written and uploaded the outside file.
func TestAttachmentSymlinkMayNotLeaveTheFolder(t *testing.T) {
	root := t.TempDir()
	outside := filepath.Join(root, "outside")
	export := filepath.Join(root, "export")
	for _, d := range []string{outside, export, filepath.Join(export, "files")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{filepath.Join(outside, "secret.txt"), filepath.Join(export, "files", "ok.txt")} {
		if err := os.WriteFile(f, []byte("data"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		filepath.Join(export, "secret-link.txt"): filepath.Join(outside, "secret.txt"),
		filepath.Join(export, "out"):             outside,
		filepath.Join(export, "in-link.txt"):     filepath.Join(export, "files", "ok.txt"),
		filepath.Join(root, "export-link"):       export,
	}
	for link, target := range links {
		if err := os.Symlink(target, link); err != nil {
			t.Skipf("symlinks not available: %v", err)
		}
	}
	rows := []struct{ att, want string }{
		{"secret-link.txt", "attachment-path"},
		{"out/secret.txt", "attachment-path"},
		{"in-link.txt", ""},
		{"files/ok.txt", ""},
	}
	var csvData, jsonData strings.Builder
	csvData.WriteString("thread_id,created_at,from,to,body,attachments\n")
	for i, r := range rows {
		csvData.WriteString("t" + string(rune('0'+i)) + ",2024-01-01 10:00:00,a@example.com,b@example.com,hi," + r.att + "\n")
		jsonData.WriteString(`{"thread_id":"t` + string(rune('0'+i)) + `","created_at":"2024-01-01 10:00:00","from":"a@example.com","to":"b@example.com","body":"hi","attachments":["` + r.att + `"]}` + "\n")
	}
	if err := os.WriteFile(filepath.Join(export, "m.csv"), []byte(csvData.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(export, "m.jsonl"), []byte(jsonData.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, src := range []struct{ typ, path string }{
		{"csv", filepath.Join(export, "m.csv")},
		{"csv", filepath.Join(root, "export-link", "m.csv")},
		{"json", filepath.Join(export, "m.jsonl")},
		{"json", filepath.Join(root, "export-link", "m.jsonl")},
	} {
		r, err := Registry().Open(src.typ, src.path, sources.Options{Now: jsonNow})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; ; i++ {
			env, err := r.Next()
			if err != nil {
				break
			}
			m, err := r.Load(env)
			if err != nil {
				t.Fatalf("%s: Load: %v", src.path, err)
			}
			var uploaded []string
			for _, a := range m.Attachments {
				uploaded = append(uploaded, a.Path)
			}
			refused := false
			for _, is := range m.Issues {
				refused = refused || (is.Rule == "attachment-path" && is.Severity == sources.SeverityError)
			}
			want := rows[i]
			if want.want != "" && (!refused || len(uploaded) > 0) {
				t.Errorf("%s: attachment %q: uploaded %v, refused %v; want it refused", src.path, want.att, uploaded, refused)
			}
			if want.want == "" && (refused || len(uploaded) != 1) {
				t.Errorf("%s: attachment %q: uploaded %v, issues %v; want it uploaded", src.path, want.att, uploaded, m.Issues)
			}
		}
		r.Close()
	}
}
