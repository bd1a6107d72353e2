package mbox

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/threadlift/threadlift/sources"

	"github.com/emersion/go-message"
	// go-message decodes non-UTF-8 text parts only with its charsets registered.
	_ "github.com/emersion/go-message/charset"
	"github.com/google/go-cmp/cmp"

	"github.com/threadlift/threadlift/internal/fixtures"
)

// loadAll reads every message of an mbox (or .eml) file. The reader is
// closed by the test's cleanup.
func loadAll(t testing.TB, path string, opts sources.Options) (sources.Reader, []*sources.Message) {
	t.Helper()
	r, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { r.Close() })
	var msgs []*sources.Message
	for {
		env, err := r.Next()
		if err == io.EOF {
			return r, msgs
		}
		if err != nil {
			t.Fatalf("Next(%s): %v", path, err)
		}
		m, err := r.Load(env)
		if err != nil {
			t.Fatalf("Load(%s): %v", env.Loc, err)
		}
		msgs = append(msgs, m)
	}
}

// readAttachment reads attachment i of m through OpenAttachment and
// returns its length and SHA-256.
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

func skipNoCorpus(t testing.TB) {
	if _, err := os.Stat(corpusDir); err != nil {
		t.Skipf("corpus %s not available: %v", corpusDir, err)
	}
}

// TestAttachmentsCorpus checks names (RFC 2047 and RFC 2231, UTF-8 and
// other charsets, continuations), content types, sizes, inline rules and
// part locators of real messages, and the content OpenAttachment returns.
// The SHA-256 values were computed outside Go (Python's email package,
// base64 parts).
func TestAttachmentsCorpus(t *testing.T) {
	skipNoCorpus(t)
	type att struct {
		Part, Name, ContentType string
		Size                    int64
		Inline                  bool
		ContentID               string
		SHA256                  string // "" = not checked
	}
	tests := []struct {
		file string
		want []att
	}{
		{"hyperkitty/attachment-1.eml", []att{{"2", "puntogil.vcf", "text/x-vcard", 55, false, "", ""}}},
		// 7bit part in a nested multipart
		{"hyperkitty/attachment-2.eml", []att{{"1.2", "signature.asc", "application/pgp-signature", 267, false, "", ""}}},
		// RFC 2047 ISO-8859-1 Q-encoded filename
		{"hyperkitty/attachment-4.eml", []att{{"2", "todo-déjeuner.txt", "text/plain", 112, false, "", ""}}},
		// RFC 2231 UTF-8 filename (every byte percent-encoded)
		{"hyperkitty/attachment-5.eml", []att{{"2", "todo-déjeuner.txt", "text/plain", 112, false, "", ""}}},
		// RFC 2231 ISO-8859-1: mime.ParseMediaType drops it, rfc2231Param decodes it
		{"mime4j/core/src/test/resources/mimetools-testmsgs/attachment-filename-encoding-Latin1.msg",
			[]att{{"2", "attachment.äöü", "text/plain", 5, false, "", ""}}},
		{"mime4j/core/src/test/resources/mimetools-testmsgs/attachment-filename-encoding-UTF8.msg",
			[]att{{"2", "attachment.äöü", "text/plain", 5, false, "", ""}}},
		// a message whose whole body is the (inline) attachment: part "1";
		// RFC 2231 ISO-8859-1 with spaces
		{"ruby-mail/attachment_emails/attachment_with_quoted_filename.eml",
			[]att{{"1", "Eelanalüüsi päring.jpg", "image/jpeg", 1952, true, "", "87dc350433afd8507ac4db9344ea72ac64bae71671aed61a10a85c10d50bd6b6"}}},
		// RFC 2047 UTF-8 B-encoded filename
		{"ruby-mail/multi_charset/japanese_attachment.eml", []att{{"2", "てすと.txt", "text/plain", 33, false, "", ""}}},
		// RFC 2231 continuations (filename*0*, filename*1*)
		{"ruby-mail/multi_charset/japanese_attachment_long_name.eml",
			[]att{{"1", "かきくけこかきくけこかきくけこかきくけこかきくけこ.txt", "text/plain", 18, false, "", ""}}},
		// images referenced by cid: from the HTML (two parts share one id)
		{"php-mime-mail-parser/issue115.eml", []att{
			{"1.2", "logo.jpg", "image/gif", 2695, true, "same1", "0678808ad4ccd1f149e2f094e06c5e7c47548c6036d81b84bfce4b0f715cfb5d"},
			{"1.3", "background.jpg", "image/gif", 18255, true, "same1", "972641cf4ae73668b7ecb99b67bb369f9eacf6ebe17afcbed63238816c13ff64"},
			{"2", "attachment.txt", "text/plain", 2229, false, "", "01cd8c74b53a251af94a6d865dc80a48c221f6bed334128d99ca5572238fbbf9"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			p := filepath.Join(corpusDir, tt.file)
			if _, err := os.Stat(p); err != nil {
				t.Skipf("%s not available", p)
			}
			r, msgs := loadAll(t, p, sources.Options{})
			if len(msgs) != 1 {
				t.Fatalf("%d messages, want 1", len(msgs))
			}
			m := msgs[0]
			var got []att
			for i, a := range m.Attachments {
				n, sum := readAttachment(t, r, m, i)
				if n != a.Size {
					t.Errorf("attachment %d (%s): OpenAttachment read %d bytes, Size is %d", i, a.Name, n, a.Size)
				}
				g := att{a.Part, a.Name, a.ContentType, a.Size, a.Inline, a.ContentID, ""}
				if tt.want != nil && i < len(tt.want) && tt.want[i].SHA256 != "" {
					g.SHA256 = sum
				}
				got = append(got, g)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("attachments (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAttachmentsMatchGoMessage reads every non-text attachment of several
// corpora through OpenAttachment and compares it with what go-message's own
// entity walk (its own transfer decoders) reads from the same part.
func TestAttachmentsMatchGoMessage(t *testing.T) {
	skipNoCorpus(t)
	dirs := []string{"hyperkitty", "php-mime-mail-parser", "mime4j/core/src/test/resources/mimetools-testmsgs",
		"flanker", "ruby-mail/attachment_emails", "spamscope-mail-parser", "enmime/testdata/mail"}
	var compared, total int
	for _, d := range dirs {
		files, _ := filepath.Glob(filepath.Join(corpusDir, d, "*"))
		for _, p := range files {
			if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
				continue
			}
			r, msgs := loadAll(t, p, sources.Options{})
			for _, m := range msgs {
				if len(m.Attachments) == 0 {
					continue
				}
				want := goMessageParts(t, r, m)
				for i, a := range m.Attachments {
					total++
					n, sum := readAttachment(t, r, m, i)
					if n != a.Size {
						t.Errorf("%s attachment %d (%s): read %d bytes, Size %d", m.Loc, i, a.Name, n, a.Size)
					}
					if strings.HasPrefix(a.ContentType, "text/") || hasRule(m.Issues, "bad-encoding") {
						continue // go-message converts text charsets; its decoders stop at bad bytes
					}
					if w, ok := want[a.Part]; ok {
						compared++
						if w != sum {
							t.Errorf("%s part %s (%s): SHA-256 %s, go-message reads %s", m.Loc, a.Part, a.Name, sum, w)
						}
					}
				}
			}
		}
	}
	t.Logf("%d attachments read, %d compared with go-message", total, compared)
	if compared < 50 {
		t.Errorf("only %d attachments compared with go-message", compared)
	}
}

// TestAttachmentsGenerated is TestAttachmentsCorpus and
// TestAttachmentsMatchGoMessage on a generated mailbox, which every clone
// has: names (RFC 2047 and RFC 2231, UTF-8 and ISO-8859-1,
// continuations), content types, sizes, inline images referenced by cid:,
// part locators and content, against what the generator wrote, and
// against go-message's own walk of the same part.
func TestAttachmentsGenerated(t *testing.T) {
	a := fixtures.Generate(fixtures.Options{Seed: 5, Threads: 30, MaxReplies: 2, AttachmentEvery: 1, Charsets: true})
	path := fixtures.WriteMbox(t, t.TempDir(), "attachments.mbox", a)
	r, msgs := loadAll(t, path, sources.Options{})
	if len(msgs) != a.Messages() {
		t.Fatalf("%d messages, want %d", len(msgs), a.Messages())
	}
	type att struct {
		Part, Name, ContentType string
		Size                    int64
		Inline                  bool
		ContentID               string
		SHA256                  string
	}
	i, compared, kinds := 0, 0, map[string]bool{}
	for _, th := range a.Threads {
		for _, wm := range th.Messages {
			m := msgs[i]
			i++
			var want, got []att
			for _, wa := range wm.Attachments {
				sum := sha256.Sum256(wa.Data)
				want = append(want, att{wa.Part, wa.Name, wa.ContentType, int64(len(wa.Data)), wa.Inline, wa.ContentID, hex.EncodeToString(sum[:])})
				kinds[wa.ContentType+fmt.Sprint(wa.Inline)] = true
			}
			gm := goMessageParts(t, r, m)
			for k, ga := range m.Attachments {
				n, sum := readAttachment(t, r, m, k)
				if n != ga.Size {
					t.Errorf("%s attachment %d (%s): OpenAttachment read %d bytes, Size is %d", m.Loc, k, ga.Name, n, ga.Size)
				}
				got = append(got, att{ga.Part, ga.Name, ga.ContentType, ga.Size, ga.Inline, ga.ContentID, sum})
				if !strings.HasPrefix(ga.ContentType, "text/") { // go-message converts text charsets
					if w, ok := gm[ga.Part]; !ok || w != sum {
						t.Errorf("%s part %s (%s): SHA-256 %s, go-message reads %q", m.Loc, ga.Part, ga.Name, sum, w)
					}
					compared++
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s (%s): attachments (-generated +read):\n%s", m.Loc, wm.ID, diff)
			}
			for _, is := range m.Issues {
				t.Errorf("%s: issue %s", m.Loc, is)
			}
		}
	}
	if a.Attachments() < 50 || len(kinds) < 5 || compared < 25 {
		t.Errorf("%d attachments of %d kinds, %d compared with go-message: the archive is too plain", a.Attachments(), len(kinds), compared)
	}
}

func hasRule(is []sources.Issue, rule string) bool {
	for _, i := range is {
		if i.Rule == rule {
			return true
		}
	}
	return false
}

// goMessageParts returns the SHA-256 of the decoded body of every leaf
// part of m's record as go-message reads it, by part locator; nil when
// go-message cannot read the message.
func goMessageParts(t testing.TB, r sources.Reader, m *sources.Message) map[string]string {
	raw, err := r.(sources.RawReader).Raw(m.Envelope)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(raw)
	if b, _ := br.Peek(5); string(b) == "From " {
		br.ReadString('\n')
	}
	e, err := message.Read(br)
	if e == nil || (err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err)) {
		return nil
	}
	out := map[string]string{}
	e.Walk(func(path []int, part *message.Entity, err error) error {
		if err != nil {
			return err
		}
		if part.MultipartReader() != nil {
			return nil
		}
		loc := make([]int, len(path))
		for i, p := range path {
			loc[i] = p + 1
		}
		h := sha256.New()
		if _, err := io.Copy(h, part.Body); err != nil {
			return nil
		}
		out[partLocator(loc)] = hex.EncodeToString(h.Sum(nil))
		return nil
	})
	return out
}

const inlineMbox = `From a@example.com Mon Sep 17 00:00:00 2001
From: A <a@example.com>
To: b@example.com
Subject: inline rules
Message-ID: <inline@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=MIX

--MIX
Content-Type: multipart/related; boundary=REL

--REL
Content-Type: text/html; charset=utf-8

<p>logo <img src="cid:Logo%40example.com"> and <div style="background:url(cid:bg@example.com)">x</div></p>
--REL
Content-Type: image/png; name=logo.png
Content-Disposition: inline
Content-ID: <logo@example.com>
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--REL
Content-Type: image/gif
Content-ID: <bg@example.com>
Content-Transfer-Encoding: base64

R0lGODlh
--REL
Content-Type: image/png; name=unused.png
Content-Disposition: inline
Content-ID: <unused@example.com>
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--REL--
--MIX
Content-Type: image/jpeg; name=photo.jpg
Content-Disposition: inline; filename=photo.jpg
Content-Transfer-Encoding: base64

/9j/4AAQ
--MIX
Content-Type: application/octet-stream
Content-Disposition: attachment; filename="=?utf-8?q?r=C3=A9sum=C3=A9.txt?="
Content-Transfer-Encoding: quoted-printable

caf=C3=A9 =3D ok=
 soft
>From escaped
--MIX--

`

// TestAttachmentInlineRules: inline parts referenced by cid: are kept with
// Inline and ContentID, an unreferenced inline part of a multipart/related
// is left out, an inline part of a multipart/mixed is kept; a cid-referenced
// part without a disposition is Inline; the unnamed one gets a made-up
// name numbered after the filtering. Content comes back decoded
// (quoted-printable, mboxrd unescaping).
func TestAttachmentInlineRules(t *testing.T) {
	p := filepath.Join(t.TempDir(), "inline.mbox")
	if err := os.WriteFile(p, []byte(inlineMbox), 0o644); err != nil {
		t.Fatal(err)
	}
	r, msgs := loadAll(t, p, sources.Options{})
	m := msgs[0]
	type att struct {
		Part, Name, ContentType string
		Size                    int64
		Inline                  bool
		ContentID               string
		Content                 string
	}
	dec := func(s string) string { b, _ := base64.StdEncoding.DecodeString(s); return string(b) }
	want := []att{
		{"1.2", "logo.png", "image/png", 8, true, "logo@example.com", dec("iVBORw0KGgo=")},
		{"1.3", "attachment-2.bin", "image/gif", 6, true, "bg@example.com", dec("R0lGODlh")},
		{"2", "photo.jpg", "image/jpeg", 6, true, "", dec("/9j/4AAQ")},
		{"3", "résumé.txt", "application/octet-stream", 28, false, "", "café = ok soft\nFrom escaped"},
	}
	var got []att
	for i, a := range m.Attachments {
		rc, err := r.(sources.AttachmentReader).OpenAttachment(m, i)
		if err != nil {
			t.Fatalf("OpenAttachment(%d): %v", i, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("read attachment %d: %v", i, err)
		}
		got = append(got, att{a.Part, a.Name, a.ContentType, a.Size, a.Inline, a.ContentID, string(b)})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("attachments (-want +got):\n%s", diff)
	}
	if _, err := r.(sources.AttachmentReader).OpenAttachment(m, len(m.Attachments)); err == nil {
		t.Error("OpenAttachment(out of range) succeeded")
	}
}

// TestOpenAttachmentChanged: a file changed after Load is detected.
func TestOpenAttachmentChanged(t *testing.T) {
	tests := []struct {
		name     string
		old, new string
		atOpen   bool // the error comes from OpenAttachment, not from reading
	}{
		{"header", "Subject: inline rules", "Subject: inline rulez", true},
		{"part type", "Content-Type: application/octet-stream", "Content-Type: application/octet-streaX", true},
		{"shorter", "caf=C3=A9", "=C3=A9=C3", false},
		{"longer", "=3D ok", "abc ok", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "inline.mbox")
			if err := os.WriteFile(p, []byte(inlineMbox), 0o644); err != nil {
				t.Fatal(err)
			}
			r, msgs := loadAll(t, p, sources.Options{})
			m := msgs[0]
			i := len(m.Attachments) - 1
			changed := strings.Replace(inlineMbox, tt.old, tt.new, 1)
			if changed == inlineMbox || len(changed) != len(inlineMbox) {
				t.Fatal("bad test: the change must keep the length")
			}
			if err := os.WriteFile(p, []byte(changed), 0o644); err != nil {
				t.Fatal(err)
			}
			rc, err := r.(sources.AttachmentReader).OpenAttachment(m, i)
			if err == nil {
				_, err = io.Copy(io.Discard, rc)
				rc.Close()
				if tt.atOpen && err != nil {
					t.Errorf("the change was found only while reading: %v", err)
				}
			} else if !tt.atOpen {
				t.Errorf("OpenAttachment: %v, want the change found while reading", err)
			}
			if !errors.Is(err, sources.ErrAttachmentChanged) {
				t.Errorf("error %v, want ErrAttachmentChanged", err)
			}
		})
	}
}

// TestOpenAttachmentConcurrent opens the attachments of a corpus mbox and
// of a synthetic one from several goroutines at once (run with -race).
func TestOpenAttachmentConcurrent(t *testing.T) {
	p := filepath.Join(t.TempDir(), "many.mbox")
	var b strings.Builder
	for k := range 20 {
		s := strings.Replace(inlineMbox, "inline@example.com", fmt.Sprintf("inline%d@example.com", k), 1)
		s = strings.Replace(s, "/9j/4AAQ", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{byte(k)}, 6000)), 1)
		b.WriteString(s)
	}
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, path string) {
		r, msgs := loadAll(t, path, sources.Options{})
		type key struct{ m, i int }
		want := map[key]string{}
		for mi, m := range msgs {
			for i := range m.Attachments {
				_, want[key{mi, i}] = readAttachment(t, r, m, i)
			}
		}
		if len(want) == 0 {
			t.Fatal("no attachments")
		}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for round := range 3 {
					for mi := range msgs {
						m := msgs[(mi+g*7+round)%len(msgs)]
						mIdx := (mi + g*7 + round) % len(msgs)
						for i := range m.Attachments {
							rc, err := r.(sources.AttachmentReader).OpenAttachment(m, i)
							if err != nil {
								errs <- err
								return
							}
							h := sha256.New()
							_, err = io.Copy(h, rc)
							rc.Close()
							if err != nil {
								errs <- err
								return
							}
							if got := hex.EncodeToString(h.Sum(nil)); got != want[key{mIdx, i}] {
								errs <- fmt.Errorf("%s attachment %d: SHA-256 %s, want %s", m.Loc, i, got, want[key{mIdx, i}])
								return
							}
						}
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
	t.Run("synthetic", func(t *testing.T) { check(t, p) })
	t.Run("corpus", func(t *testing.T) {
		c := filepath.Join(corpusDir, "php-mime-mail-parser", "issue115.eml")
		if _, err := os.Stat(c); err != nil {
			t.Skipf("%s not available", c)
		}
		check(t, c)
	})
}

// BenchmarkLargeAttachment loads a message holding a 256 MiB base64
// attachment and streams it through OpenAttachment (checking its SHA-256),
// reporting the peak heap in use above the baseline (sampled every 5 ms),
// the growth of the process's peak RSS and that peak itself.
func BenchmarkLargeAttachment(b *testing.B) {
	if testing.Short() {
		b.Skip("writes a 350 MB file")
	}
	const size = 256 << 20
	p := filepath.Join(b.TempDir(), "large.mbox")
	want := writeLargeMbox(b, p, size)

	var peakHeap uint64
	var rssBefore, rssAfter syscall.Rusage
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseHeap := ms.HeapInuse
	syscall.Getrusage(syscall.RUSAGE_SELF, &rssBefore)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // sample the heap during the run
		defer close(done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peakHeap = max(peakHeap, ms.HeapInuse)
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		r, msgs := loadAll(b, p, sources.Options{MaxMessageBytes: 1 << 30})
		m := msgs[0]
		if len(m.Attachments) != 1 || m.Attachments[0].Size != size {
			b.Fatalf("attachments %+v, issues %v", m.Attachments, m.Issues)
		}
		rc, err := r.(sources.AttachmentReader).OpenAttachment(m, 0)
		if err != nil {
			b.Fatal(err)
		}
		h := sha256.New()
		n, err := io.Copy(h, rc)
		rc.Close()
		if err != nil || n != size {
			b.Fatalf("copied %d bytes: %v", n, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != want {
			b.Fatalf("SHA-256 %s, want %s", got, want)
		}
		r.Close()
	}
	b.StopTimer()
	close(stop)
	<-done
	syscall.Getrusage(syscall.RUSAGE_SELF, &rssAfter)
	b.ReportMetric(float64(peakHeap-min(peakHeap, baseHeap))/(1<<20), "MiB-heap")
	// Linux reports ru_maxrss in KiB. The growth is 0 when the run never
	// went above the peak the process had already reached; the absolute
	// peak bounds it from above.
	b.ReportMetric(float64(rssAfter.Maxrss-rssBefore.Maxrss)/1024, "MiB-maxrss-growth")
	b.ReportMetric(float64(rssAfter.Maxrss)/1024, "MiB-maxrss")
}

// writeLargeMbox writes an mbox holding one message with a size-byte
// base64 attachment, streaming, and returns the attachment's SHA-256.
func writeLargeMbox(b *testing.B, path string, size int) string {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprint(w, "From a@example.com Mon Sep 17 00:00:00 2001\nFrom: A <a@example.com>\nTo: b@example.com\n"+
		"Subject: large\nMessage-ID: <large@example.com>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B\n\n"+
		"--B\nContent-Type: text/plain\n\nsee attached\n--B\nContent-Type: application/octet-stream\n"+
		"Content-Disposition: attachment; filename=large.bin\nContent-Transfer-Encoding: base64\n\n")
	h := sha256.New()
	chunk := make([]byte, 57*1024) // 57 bytes = one 76-character line
	line := make([]byte, 77)
	var x uint32 = 1
	for written := 0; written < size; {
		n := min(len(chunk), size-written)
		for i := range chunk[:n] {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			chunk[i] = byte(x)
		}
		h.Write(chunk[:n])
		for off := 0; off < n; off += 57 {
			end := min(off+57, n)
			k := base64.StdEncoding.EncodedLen(end - off)
			base64.StdEncoding.Encode(line, chunk[off:end])
			line[k] = '\n'
			w.Write(line[:k+1])
		}
		written += n
	}
	fmt.Fprint(w, "--B--\n")
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// partLocator formats a part path as an IMAP section number, as
// Attachment.Part holds it.
func partLocator(path []int) string {
	if len(path) == 0 {
		return "1"
	}
	s := make([]string, len(path))
	for i, p := range path {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ".")
}
