package mbox

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/internal/header"

	"github.com/emersion/go-mbox"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/threadlift/threadlift/internal/fixtures"
)

const corpusDir = "../../../shared/corpora/mail"

// strictCount counts messages independently of the reader, by contract
// §3's rule written out plainly: after a BOM and blank lines, a file that
// starts with "From " has one message per line that starts "From " and is
// either of envelope shape after an empty line, or of envelope shape or a
// bare "From WORD" directly followed by a header field (CR stripped);
// Content-Length is not honoured here. Any other non-empty file is one
// message.
func strictCount(data []byte) int {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	lines := strings.Split(string(data), "\n")
	i := 0
	for i < len(lines) && strings.TrimSpace(lines[i]) == "" {
		i++
	}
	if i == len(lines) {
		return 0
	}
	if !strings.HasPrefix(lines[i], "From ") {
		return 1
	}
	n := 1
	for j := i + 1; j < len(lines); j++ {
		l := strings.TrimSuffix(lines[j], "\r")
		if !strings.HasPrefix(l, "From ") {
			continue
		}
		blank := strings.TrimSuffix(lines[j-1], "\r") == ""
		header := j+1 < len(lines) && refHeaderField.MatchString(lines[j+1])
		switch {
		case refEnvelope.MatchString(l) && (blank || header):
			n++
		case refBare.MatchString(l) && header:
			n++
		}
	}
	return n
}

var (
	refEnvelope    = regexp.MustCompile(`(?i)^From \S.* (mon|tue|wed|thu|fri|sat|sun) (jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec) +\d{1,2} \d{1,2}:\d{1,2}(:\d{1,2})?( ([a-z]{1,5}|[-+]\d{4}))? \d{4}( ([a-z]{1,5}|[-+]\d{4}))?\s*$`)
	refBare        = regexp.MustCompile(`^From +\S+\s*$`)
	refHeaderField = regexp.MustCompile(`^[!-9;-~]+:`)
)

func corpusFiles(t testing.TB) []string {
	if _, err := os.Stat(corpusDir); err != nil {
		t.Skipf("corpus %s not available: %v", corpusDir, err)
	}
	var files []string
	filepath.WalkDir(corpusDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".mbox") {
			files = append(files, p)
		}
		return nil
	})
	if len(files) == 0 {
		t.Skip("no .mbox file in the corpus")
	}
	return files
}

func TestMboxCorpus(t *testing.T) {
	files := corpusFiles(t)
	total := 0
	for _, p := range files {
		rel, _ := filepath.Rel(corpusDir, p)
		t.Run(rel, func(t *testing.T) {
			envs, _ := checkSplit(t, p)
			total += len(envs)
		})
	}
	t.Logf("%d files, %d messages", len(files), total)
}

// checkSplit reads the mbox at p and checks that its envelopes are as
// many as the strict separator count and tile the file from its first
// "From " line to its end.
func checkSplit(t *testing.T, p string) ([]*sources.Envelope, []*sources.Message) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	envs, msgs := readMbox(t, p, sources.Options{})
	if want := strictCount(data); len(envs) != want {
		t.Errorf("%d envelopes, strict separator count %d", len(envs), want)
	}
	var end int64
	for i, e := range envs {
		if i > 0 && e.Loc.Offset != end {
			t.Errorf("envelope %d at %d, previous ended at %d", i, e.Loc.Offset, end)
		}
		if !bytes.HasPrefix(data[e.Loc.Offset:], []byte("From ")) {
			t.Errorf("envelope %d: no From line at offset %d", i, e.Loc.Offset)
		}
		end = e.Loc.Offset + e.Size
		if msgs[i].Envelope != e {
			t.Errorf("message %d does not point at its envelope", i)
		}
	}
	if end != int64(len(data)) {
		t.Errorf("last envelope ends at %d, file is %d bytes", end, len(data))
	}
	return envs, msgs
}

// TestMboxGenerated is TestMboxCorpus on a generated mailbox (every clone
// has it): charsets, attachments, folded References, long threads, a
// missing root, body lines starting "From ". Each envelope must be the
// message the generator wrote, with its ids, references, subject and date.
func TestMboxGenerated(t *testing.T) {
	a := fixtures.Generate(fixtures.Options{Seed: 11, Threads: 80, MaxReplies: 4, LongThreads: 3, LongReplies: 12,
		MissingRoots: 5, AttachmentEvery: 3, Charsets: true})
	p := fixtures.WriteMbox(t, t.TempDir(), "generated.mbox", a)
	envs, _ := checkSplit(t, p)
	type env struct {
		ID, Subject string
		Refs        []string
		Date        time.Time
	}
	var want, got []env
	for _, th := range a.Threads {
		for _, m := range th.Messages {
			want = append(want, env{m.ID, m.Subject, m.References, m.Date.UTC()})
		}
	}
	for _, e := range envs {
		got = append(got, env{e.MessageID, e.Subject, e.References, e.Date.UTC()})
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("envelopes (-generated +read):\n%s", diff)
	}
}

func TestMboxCorpusSamples(t *testing.T) {
	p := filepath.Join(corpusDir, "git/t5100/sample.mboxrd.mbox")
	if _, err := os.Stat(p); err != nil {
		t.Skip("corpus sample missing")
	}
	envs, msgs := readMbox(t, p, sources.Options{})
	if len(envs) != 2 {
		t.Fatalf("%d messages, want 2", len(envs))
	}
	if !strings.HasPrefix(msgs[0].Body, "From the beginning, mbox should have been mboxrd\n") {
		t.Errorf("body 0 = %q, want it to start with the unescaped \"From the beginning\"", msgs[0].Body)
	}
	for _, want := range []string{"\n>From escaped\n", "\nFrom not mangled but this line should have been escaped\n"} {
		if !strings.Contains(msgs[0].Body, want) {
			t.Errorf("body 0 = %q, want it to contain %q", msgs[0].Body, want)
		}
	}
	for _, want := range []string{" >From unchanged\n", " From also unchanged\n", "\n>From\n"} {
		if !strings.Contains(msgs[1].Body, want) {
			t.Errorf("body 1 = %q, want it to contain %q", msgs[1].Body, want)
		}
	}
}

// TestMboxRoundTrip writes messages with go-mbox's Writer (mboxo: it
// escapes "From " lines as ">From " but leaves ">From " lines alone, so
// the bodies here hold "From " lines only) and reads them back.
func TestMboxRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "rt.mbox")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w := mbox.NewWriter(f)
	var bodies []string
	base := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := 0; i < 50; i++ {
		body := fmt.Sprintf("Message %d.\n\nFrom the start of a line after a blank line.\nFrom right after a line.\n\nFrom %d again\n", i, i)
		if i%3 == 0 {
			body += strings.Repeat("long line ", 10000) + "\n"
		}
		if i%5 == 0 {
			body += "\n\nFrom \n"
		}
		bodies = append(bodies, body)
		mw, err := w.CreateMessage(fmt.Sprintf("sender%d@example.com", i), base.Add(time.Duration(i)*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(mw, "From: S <sender%d@example.com>\r\nTo: r@example.com\r\nSubject: m %d\r\nMessage-ID: <rt%d@example.com>\r\n\r\n%s",
			i, i, i, strings.ReplaceAll(body, "\n", "\r\n"))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	envs, msgs := readMbox(t, p, sources.Options{})
	if len(envs) != len(bodies) {
		t.Fatalf("read %d messages, wrote %d", len(envs), len(bodies))
	}
	for i, m := range msgs {
		if got := strings.TrimRight(m.Body, "\n"); got != strings.TrimRight(bodies[i], "\n") {
			t.Errorf("message %d body = %q, want %q", i, header.Clip([]byte(got), 200), header.Clip([]byte(bodies[i]), 200))
		}
		if want := fmt.Sprintf("rt%d@example.com", i); m.MessageID != want {
			t.Errorf("message %d id = %q, want %q", i, m.MessageID, want)
		}
		// no Date header: the From line's date is used, with a warning
		if want := base.Add(time.Duration(i) * time.Hour); !m.Date.Equal(want) {
			t.Errorf("message %d date = %v, want %v", i, m.Date, want)
		}
		if got := issueList(m.Issues); len(got) != 1 || got[0] != "warning date-fallback" {
			t.Errorf("message %d issues = %v", i, m.Issues)
		}
	}
}

func fuzzSeeds(f *testing.F) {
	for _, p := range []string{"basic.mbox", "mboxrd.mbox", "crlf_bom.mbox", "dates.mbox", "mime.mbox", "single.eml", "mboxcl.mbox"} {
		if b, err := os.ReadFile(filepath.Join("testdata", p)); err == nil {
			f.Add(b)
		}
	}
	for _, p := range []string{"git/t5100/sample.mboxrd.mbox", "mimekit/messages/multipart-digest.mbox", "hyperkitty/non-ascii-headers.mbox", "perceval/mbox/mbox_multipart.mbox"} {
		if b, err := os.ReadFile(filepath.Join(corpusDir, p)); err == nil {
			f.Add(b)
		}
	}
	for _, s := range fidelitySeeds() {
		f.Add([]byte(s))
	}
	if m, _ := filepath.Glob("testdata/fuzz-regress-*"); len(m) > 0 {
		for _, p := range m {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
}

// memReaderAt lets the fuzzer skip the file system.
type memReaderAt []byte

func (m memReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m)) {
		return 0, io.EOF
	}
	n := copy(p, m[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func FuzzMbox(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newReader(memReaderAt(data), int64(len(data)), nil,
			sources.Options{MaxMessageBytes: 1 << 20, Now: testNow}.WithDefaults("fuzz"), scanBufferBytes)
		var end int64
		for i := 0; ; i++ {
			env, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if i > len(data)+1 {
				t.Fatalf("more envelopes than bytes")
			}
			if env.Loc.Offset < end || env.Size < 0 || env.Loc.Offset+env.Size > int64(len(data)) {
				t.Fatalf("envelope %d out of place: offset %d size %d (previous end %d, file %d)", i, env.Loc.Offset, env.Size, end, len(data))
			}
			end = env.Loc.Offset + env.Size
			m, err := r.Load(env)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if int64(len(m.Body)+len(m.HTMLBody)) > 4*int64(len(data))+1024 {
				t.Fatalf("body of %d bytes from %d input bytes", len(m.Body)+len(m.HTMLBody), len(data))
			}
		}
	})
}

func writeBenchMbox(b *testing.B) (string, int64) {
	p := filepath.Join(b.TempDir(), "bench.mbox")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	body := strings.Repeat("The quick brown fox jumps over the lazy dog, again and again.\n", 60)
	att := strings.Repeat("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\n", 200)
	for i := 0; i < 2000; i++ {
		fmt.Fprintf(f, "From sender%d@example.com Mon Sep 17 00:00:00 2001\n", i)
		fmt.Fprintf(f, "From: Sender %d <sender%d@example.com>\nTo: list@example.com\nSubject: message %d\n", i, i, i)
		fmt.Fprintf(f, "Date: Mon, 17 Sep 2001 00:%02d:00 +0000\nMessage-ID: <m%d@example.com>\nReferences: <m%d@example.com>\n", i%60, i, i/2)
		if i%4 == 0 {
			fmt.Fprintf(f, "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b%d\n\n--b%d\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\n%s\n--b%d\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=f.bin\nContent-Transfer-Encoding: base64\n\n%s--b%d--\n\n", i, i, body, i, att, i)
		} else {
			fmt.Fprintf(f, "\n%s\n", body)
		}
	}
	st, _ := f.Stat()
	f.Close()
	return p, st.Size()
}

func BenchmarkMboxScan(b *testing.B) {
	p, size := writeBenchMbox(b)
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := Open(p, sources.Options{})
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := r.Next(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
		r.Close()
	}
}

func BenchmarkMboxLoad(b *testing.B) {
	p, size := writeBenchMbox(b)
	r, err := Open(p, sources.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	var envs []*sources.Envelope
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		} else if err != nil {
			b.Fatal(err)
		}
		envs = append(envs, e)
	}
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, e := range envs {
			if _, err := r.Load(e); err != nil {
				b.Fatal(err)
			}
		}
	}
}
