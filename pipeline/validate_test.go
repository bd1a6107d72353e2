package pipeline

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/quotedprintable"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/threadlift/threadlift/internal/fixtures"
	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/pipeline/report"
)

// writeMixedMbox writes a deterministic mbox of about size bytes that looks
// like the benchmark's realistic archive (bench/cmd/genmbox) in small:
// threads of 1–12 messages, plain text in quoted-printable, base64 and
// 8-bit legacy charsets, HTML-only messages, base64 attachments, some
// broken parts (bad base64, a missing closing boundary), repeated
// Message-IDs, messages without a recipient and mboxrd-escaped "From "
// lines. It returns the file's path.
func writeMixedMbox(tb testing.TB, size int64, seed uint64) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "mixed.mbox")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriter(f)
	rng := rand.New(rand.NewPCG(seed, 7))
	words := strings.Fields("the order invoice refund team Müller straße café résumé año " +
		"ticket shipping please thanks problem answer account login reset contract déjà")
	text := func(n int) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			b.WriteString(words[rng.IntN(len(words))])
			if i%11 == 10 {
				b.WriteString(".\n")
			} else {
				b.WriteByte(' ')
			}
		}
		if rng.IntN(6) == 0 {
			b.WriteString("\nFrom the desk of the team\n>From a quoted line\n")
		}
		return b.String()
	}
	latin1 := func(s string) string {
		var b strings.Builder
		for _, r := range s {
			if r < 256 {
				b.WriteByte(byte(r))
			} else {
				b.WriteByte('?')
			}
		}
		return b.String()
	}
	qp := func(s string) string {
		var b strings.Builder
		qw := quotedprintable.NewWriter(&b)
		io.WriteString(qw, s)
		qw.Close()
		return b.String()
	}
	b64 := func(p []byte) string {
		s := base64.StdEncoding.EncodeToString(p)
		var b strings.Builder
		for len(s) > 76 {
			b.WriteString(s[:76] + "\n")
			s = s[76:]
		}
		b.WriteString(s + "\n")
		return b.String()
	}
	escape := func(body string) string { // mboxrd
		lines := strings.SplitAfter(body, "\n")
		for i, l := range lines {
			if t := strings.TrimLeft(l, ">"); strings.HasPrefix(t, "From ") {
				lines[i] = ">" + l
			}
		}
		return strings.Join(lines, "")
	}
	var written int64
	date := time.Date(2021, 3, 1, 9, 0, 0, 0, time.UTC)
	for thread := 1; written < size; thread++ {
		ticket := 1000 + rng.IntN(300)
		n := 1 + rng.IntN(12)
		for i := 1; i <= n && written < size; i++ {
			date = date.Add(time.Duration(1+rng.IntN(600)) * time.Minute)
			id := fmt.Sprintf("<%d.%d@example.com>", thread, i)
			if thread%7 == 0 && i == 2 {
				id = fmt.Sprintf("<%d.1@example.com>", thread) // a repeated Message-ID
			}
			var h strings.Builder
			fmt.Fprintf(&h, "From user%d@example.com %s\n", i, date.Format("Mon Jan _2 15:04:05 2006"))
			fmt.Fprintf(&h, "From: =?iso-8859-1?Q?J=F6rg_Sm=E9th?= <user%d@example.com>\n", i)
			if thread%13 != 0 || i != 1 { // else rejected: no recipient
				fmt.Fprintf(&h, "To: Team <team@example.com>\n")
			}
			if rng.IntN(3) == 0 {
				fmt.Fprintf(&h, "Cc: a@example.com, \"Broken\" <nowhere>, b@example.com\n")
			}
			re := ""
			if i > 1 {
				re = "Re: "
				fmt.Fprintf(&h, "In-Reply-To: <%d.%d@example.com>\nReferences: <%d.1@example.com>\n", thread, i-1, thread)
			}
			fmt.Fprintf(&h, "Subject: %s[#%d] %s\n", re, ticket, words[thread%len(words)])
			fmt.Fprintf(&h, "Date: %s\nMessage-ID: %s\n", date.Format(time.RFC1123Z), id)
			fmt.Fprintf(&h, "X-Zendesk-Ticket-Id: %d\nMIME-Version: 1.0\n", ticket)
			body := text(40 + rng.IntN(200))
			var m string
			switch k := rng.IntN(10); {
			case k < 3:
				m = "Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\n" + qp(latin1(body))
			case k < 5:
				m = "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n" + b64([]byte(body))
			case k < 6:
				m = "Content-Type: text/plain; charset=windows-1252\nContent-Transfer-Encoding: 8bit\n\n" + latin1(body)
			case k < 8:
				html := "<html><body><p>" + strings.ReplaceAll(body, "\n", "</p><p>") + "</p><img src=\"cid:logo@x\"></body></html>"
				m = "Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n" + qp(html)
			default:
				att := make([]byte, 2000+rng.IntN(40000))
				for j := range att {
					att[j] = byte(rng.UintN(256))
				}
				enc := b64(att)
				if rng.IntN(8) == 0 {
					enc = enc[:len(enc)/2] + "*!*" + enc[len(enc)/2:len(enc)-3] + "\n" // bad base64
				}
				bd := fmt.Sprintf("b%d.%d", thread, i)
				m = "Content-Type: multipart/mixed; boundary=\"" + bd + "\"\n\npreamble\n--" + bd +
					"\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\n" + qp(latin1(body)) +
					"\n--" + bd + "\nContent-Type: application/pdf; name=\"doc" + fmt.Sprint(i) + ".pdf\"\nContent-Transfer-Encoding: base64\n" +
					"Content-Disposition: attachment; filename=\"doc" + fmt.Sprint(i) + ".pdf\"\n\n" + enc
				if rng.IntN(10) > 0 {
					m += "--" + bd + "--\n"
				}
			}
			msg := h.String() + escape(m)
			if !strings.HasSuffix(msg, "\n") {
				msg += "\n"
			}
			msg += "\n"
			w.WriteString(msg)
			written += int64(len(msg))
		}
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return path
}

func validateOptions(srcs ...Source) Options {
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	o := Options{
		Sources: srcs,
		Mapper: mapping.New(mapping.Options{
			Ticket:              mapping.TicketRules{Header: "X-Zendesk-Ticket-Id", DefaultTicketID: 1},
			MaxEventsPerRequest: 4,
			Attachments:         mapping.AttachmentPolicy{MaxBytes: 30000},
			Now:                 func() time.Time { return now },
		}),
		Now: func() time.Time { return now },
	}
	o.Read.Now = o.Now
	return o
}

// TestValidateReportSameForAnyWorkers checks that threads are added to the
// report in thread order whatever the number of workers: the report of a
// mixed archive, and of a generated one and corpus files (when there) of
// every format, is the same with one worker as with several.
func TestValidateReportSameForAnyWorkers(t *testing.T) {
	srcs := []Source{{Type: "mbox", Path: writeMixedMbox(t, 3<<20, 1), Name: "mixed.mbox"}}
	srcs = append(srcs, Source{Type: "csv", Path: "../sources/csv/testdata/good.csv", Name: "good.csv", Fields: map[string]string{
		"thread_id": "conversation", "message_id": "msg id", "ticket_id": "ticket", "created_at": "when",
		"from": "Sender", "to": "recipients", "body": "text", "html_body": "html", "attachments": "files"}})
	for _, p := range []string{"../sources/json/testdata/threads.json", "../sources/json/testdata/messages.jsonl"} {
		srcs = append(srcs, Source{Type: "json", Path: p, Name: filepath.Base(p)})
	}
	gen := fixtures.Generate(generatedArchive(7))
	srcs = append(srcs, Source{Type: "mbox", Path: fixtures.WriteMbox(t, t.TempDir(), "generated.mbox", gen), Name: "generated.mbox"})
	root := filepath.Join("..", "..", "shared", "corpora")
	for _, rel := range []string{
		"mail/linux-mips-public-inbox/linux-mips-2006-10_1500msgs.mbox",
		"mail/ponymail-unit-tests/httpd-users-2020-07.mbox",
		"mail/ponymail-unit-tests/nexus-html-only.mbox",
		"helpdesk/twcs/sample.csv",
		"helpdesk/freshdesk/v2_conversations.json",
	} {
		if _, err := os.Stat(filepath.Join(root, rel)); err == nil {
			srcs = append(srcs, Source{Type: corpusFormat(rel), Path: filepath.Join(root, rel), Name: rel, Fields: corpusFields(rel)})
		}
	}
	for _, c := range []struct {
		name string
		srcs []Source
	}{{"mixed", srcs[:1]}, {"all", srcs}} {
		t.Run(c.name, func(t *testing.T) {
			var want *report.Report
			for _, workers := range []int{1, 2, 5} {
				rep, err := ValidateReport(context.Background(), validateOptions(c.srcs...), ReportOptions{Workers: workers, Samples: 5})
				if err != nil {
					t.Fatalf("ValidateReport(workers=%d): %v", workers, err)
				}
				if want == nil {
					want = rep
					if rep.Threads < 50 || rep.Attachments.Count == 0 || len(rep.Samples) == 0 {
						t.Fatalf("the archive is too plain to test anything: %d threads, %d attachments, %d samples",
							rep.Threads, rep.Attachments.Count, len(rep.Samples))
					}
					continue
				}
				if diff := cmp.Diff(want, rep); diff != "" {
					t.Errorf("report with %d workers differs from the one with 1 (-1 +%d):\n%s", workers, workers, diff)
				}
			}
		})
	}
}

// TestValidateSamplesShowHTMLText checks that a sample of an HTML-only
// message carries the text derived from the HTML, as import sends it,
// although validate loads messages without it.
func TestValidateSamplesShowHTMLText(t *testing.T) {
	path := filepath.Join(t.TempDir(), "html.mbox")
	mbox := "From a@example.com Mon Jan  4 08:09:28 2021\n" +
		"From: A <a@example.com>\nTo: B <b@example.com>\nSubject: [#7] hello\n" +
		"Date: Mon, 04 Jan 2021 08:09:28 +0000\nMessage-ID: <1@example.com>\n" +
		"Content-Type: text/html; charset=utf-8\n\n<html><body><p>Hello <b>there</b></p></body></html>\n"
	if err := os.WriteFile(path, []byte(mbox), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := ValidateReport(context.Background(), validateOptions(Source{Type: "mbox", Path: path}), ReportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Samples) != 1 {
		t.Fatalf("ValidateReport: %d samples, want 1", len(rep.Samples))
	}
	if body := string(rep.Samples[0].Body); !strings.Contains(body, `"body":"Hello *there*"`) {
		t.Errorf("sample body = %s, want the text of the HTML in body", body)
	}
}

// TestValidateInterrupted checks that a cancelled context stops validate
// with ErrInterrupted, however many workers are busy.
func TestValidateInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	o := validateOptions(Source{Type: "mbox", Path: writeMixedMbox(t, 2<<20, 2)})
	o.Progress = &cancelAfter{n: 5, cancel: cancel}
	_, err := ValidateReport(ctx, o, ReportOptions{Workers: 3})
	if err == nil || !strings.Contains(err.Error(), ErrInterrupted.Error()) {
		t.Fatalf("ValidateReport after cancel = %v, want %v", err, ErrInterrupted)
	}
}

// cancelAfter cancels after n threads are done.
type cancelAfter struct {
	nopProgress
	n      int
	cancel func()
}

func (c *cancelAfter) ThreadDone() {
	if c.n--; c.n == 0 {
		c.cancel()
	}
}

// BenchmarkValidate measures validate's throughput (MB/s of archive) on a
// generated mixed archive; THREADLIFT_BENCH_MBOX=FILE measures another
// file (make bench's realistic archive, say).
func BenchmarkValidate(b *testing.B) {
	path := os.Getenv("THREADLIFT_BENCH_MBOX")
	if path == "" {
		path = writeMixedMbox(b, 16<<20, 1)
	}
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	o := validateOptions(Source{Type: "mbox", Path: path})
	b.SetBytes(st.Size())
	b.ResetTimer()
	for b.Loop() {
		if _, err := Validate(context.Background(), o); err != nil {
			b.Fatal(err)
		}
	}
}
