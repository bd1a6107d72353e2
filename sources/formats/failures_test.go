package formats

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/threadlift/threadlift/sources"
)

// readRecords returns every envelope and record error of a source.
func readRecords(t *testing.T, typ, path string, opts sources.Options) (sources.Reader, []sources.FailedRecord) {
	t.Helper()
	if opts.Now == nil {
		opts.Now = jsonNow
	}
	if opts.Name == "" {
		opts.Name = filepath.Base(path)
	}
	r, err := Registry().Open(typ, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	var out []sources.FailedRecord
	for {
		env, err := r.Next()
		if err == io.EOF {
			return r, out
		}
		var re *sources.RecordError
		switch {
		case errors.As(err, &re):
			out = append(out, sources.FailedRecord{Bad: re})
		case err != nil:
			t.Fatal(err)
		default:
			out = append(out, sources.FailedRecord{Env: env})
		}
	}
}

// TestFailuresFilesReadBackAsCorrections writes every record of a source
// as a failures file and reads it back: each readable record comes back
// with its key and thread, marked as a correction of its location, in
// every shape (mbox LF and CRLF, a bare message, csv with CRLF and a
// prefix, json lines, array and thread objects). Written twice (a failures
// file of a failures file), the marks are replaced, not doubled.
func TestFailuresFilesReadBackAsCorrections(t *testing.T) {
	mbox := "From a@example.com Mon Mar  4 09:00:00 2024\nFrom: a@example.com\nTo: b@example.com\nSubject: s\nDate: Mon, 4 Mar 2024 10:00:00 +0000\nMessage-ID: <m1>\n\n>From body\n\n" +
		"From b@example.com Mon Mar  4 09:00:00 2024\nFrom: b@example.com\nTo: a@example.com\nSubject: no id\nDate: Mon, 4 Mar 2024 11:00:00 +0000\n\nbody\n"
	tests := []struct {
		name, typ, file, data string
		opts                  sources.Options
	}{
		{"mbox", "mbox", "a.mbox", mbox, sources.Options{}},
		{"mbox crlf", "mbox", "a.mbox", strings.ReplaceAll(mbox, "\n", "\r\n"), sources.Options{}},
		{"eml", "mbox", "a.eml", "From: a@example.com\nTo: b@example.com\nSubject: s\nDate: Mon, 4 Mar 2024 10:00:00 +0000\n\nbody\n", sources.Options{}},
		{"csv crlf", "csv", "m.csv", "thread_id,message_id,created_at,from,to,body\r\n1,a,2024-01-01 10:00:00,a@example.com,b@example.com,\"multi\r\nline\"\r\n1,,2024-01-01 11:00:00,b@example.com,a@example.com,no id\r\n2,b,2024-01-01 12:00:00,a@example.com,b@example.com,\"bad\"quote\r\n", sources.Options{ThreadKeyPrefix: "p:"}},
		{"jsonl", "json", "m.jsonl", `{"thread_id":"1","message_id":"a","created_at":"2024-01-01 10:00:00","from":"a@example.com","to":"b@example.com","body":"x"}` + "\n" +
			`{"thread_id":1,"created_at":"2024-01-01 11:00:00","from":"b@example.com","to":"a@example.com","body":"no id"}` + "\n{\"thread_id\": tru}\n", sources.Options{}},
		{"json array", "json", "m.json", "[\n {\"thread_id\":\"1\",\"message_id\":\"a\",\"created_at\":\"2024-01-01 10:00:00\",\n  \"from\":\"a@example.com\",\"to\":\"b@example.com\",\"body\":\"x\"}\n]\n", sources.Options{}},
		{"json threads", "json", "t.json", `{"thread_id":"1","subject":"s","messages":[{"message_id":"a","created_at":"2024-01-01 10:00:00","from":"a@example.com","to":"b@example.com","body":"x"},{"created_at":"2024-01-01 11:00:00","from":"b@example.com","to":"a@example.com","body":"no id"}]}` + "\n", sources.Options{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, tt.file)
			if err := os.WriteFile(path, []byte(tt.data), 0o644); err != nil {
				t.Fatal(err)
			}
			r, recs := readRecords(t, tt.typ, path, tt.opts)
			fw := r.(sources.FailureWriter)
			copyPath := filepath.Join(dir, "copy-"+fw.FailuresName(tt.file))
			write := func(r sources.Reader, recs []sources.FailedRecord, to string) {
				var b bytes.Buffer
				if err := r.(sources.FailureWriter).WriteFailures(&b, recs); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(to, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write(r, recs, copyPath)
			r2, back := readRecords(t, tt.typ, copyPath, tt.opts)
			var want, bad []sources.FailedRecord
			for _, rec := range recs {
				if rec.Env != nil {
					want = append(want, rec)
				} else {
					bad = append(bad, rec)
				}
			}
			var got []*sources.Envelope
			for _, rec := range back {
				if rec.Env != nil {
					got = append(got, rec.Env)
				}
			}
			if len(got) != len(want) {
				data, _ := os.ReadFile(copyPath)
				t.Fatalf("read back %d records, want %d:\n%s", len(got), len(want), data)
			}
			for i, g := range got {
				w := want[i].Env
				if g.Key() != w.Key() || g.ThreadID != w.ThreadID || g.Corrects != w.Loc.String() {
					t.Errorf("record %d: key %q thread %q corrects %q; want %q %q %q", i, g.Key(), g.ThreadID, g.Corrects, w.Key(), w.ThreadID, w.Loc)
				}
			}
			for _, b := range bad {
				data, _ := os.ReadFile(copyPath)
				if !strings.Contains(string(data), `"`+b.Bad.Loc.String()+`"`) {
					t.Errorf("the unreadable record at %s is not in the copy with its mark:\n%s", b.Bad.Loc, data)
				}
			}
			// A failures file of the failures file: marks replaced.
			again := filepath.Join(dir, "again-"+fw.FailuresName(tt.file))
			write(r2, back, again)
			_, back2 := readRecords(t, tt.typ, again, tt.opts)
			data, _ := os.ReadFile(again)
			if n := strings.Count(string(data), sources.MarkSourceHeader) + strings.Count(string(data), sources.MarkSourceField+`"`); n != len(back) && tt.typ != "csv" {
				t.Errorf("%d marks for %d records:\n%s", n, len(back), data)
			}
			for i, rec := range back2 {
				if rec.Env != nil && i < len(back) && back[i].Env != nil && (rec.Env.Key() != back[i].Env.Key() || rec.Env.Corrects != back[i].Env.Loc.String()) {
					t.Errorf("second copy, record %d: key %q corrects %q; want %q %q", i, rec.Env.Key(), rec.Env.Corrects, back[i].Env.Key(), back[i].Env.Loc)
				}
			}
		})
	}
}
