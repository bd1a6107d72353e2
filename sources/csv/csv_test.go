package csv

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/threadlift/threadlift/sources"

	"github.com/google/go-cmp/cmp"
)

// csvItem is what Next returned for one row: an envelope (loaded) or a
// record error.
type csvItem struct {
	env *sources.Envelope
	msg *sources.Message
	err *sources.RecordError
}

// readCSVFile reads every row of path, loads every envelope (concurrently,
// to exercise Load's safety) and checks Raw.
func readCSVFile(t testing.TB, path string, opts sources.Options) []csvItem {
	t.Helper()
	if opts.Now == nil {
		opts.Now = testNow
	}
	r, err := Open(path, opts)
	if err != nil {
		t.Fatalf("OpenCSV(%s): %v", path, err)
	}
	defer r.Close()
	var items []csvItem
	for {
		env, err := r.Next()
		if err == io.EOF {
			break
		}
		var re *sources.RecordError
		if errors.As(err, &re) {
			items = append(items, csvItem{err: re})
			continue
		}
		if err != nil {
			t.Fatalf("Next(%s) after %d rows: %v", path, len(items), err)
		}
		items = append(items, csvItem{env: env})
		if len(items) > 1<<20 {
			t.Fatalf("Next(%s) does not end", path)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(items))
	for i := range items {
		if items[i].env == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			items[i].msg, errs[i] = r.Load(items[i].env)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Load(%s): %v", items[i].env.Loc, err)
		}
	}
	return items
}

// summary renders an item as "LOC rule" (record error) or "LOC key
// [issues]" (envelope).
func (it csvItem) summary() string {
	if it.err != nil {
		return fmt.Sprintf("%s ERR %s", it.err.Loc, it.err.Rule)
	}
	return fmt.Sprintf("%s %s %s", it.env.Loc, it.env.Key(), strings.Join(issueList(it.env.Issues), ", "))
}

func summaries(items []csvItem) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = strings.TrimSpace(it.summary())
	}
	return out
}

func contentKeyOf(fields ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(fields, "\x00")))
	return "sha256:" + hex.EncodeToString(sum[:])
}

var goodFields = map[string]string{
	sources.FieldThreadID: "conversation", sources.FieldMessageID: "msg id", sources.FieldTicketID: "ticket",
	sources.FieldCreatedAt: "when", sources.FieldFrom: "Sender", sources.FieldTo: "recipients", sources.FieldBody: "text",
	sources.FieldHTMLBody: "html", sources.FieldAttachments: "files",
}

func TestCSVGood(t *testing.T) {
	path := filepath.Join("testdata", "good.csv")
	items := readCSVFile(t, path, sources.Options{Name: "good.csv", Fields: goodFields})

	key4 := contentKeyOf("T2", "Tue, 14 Nov 2023 22:20:00 +0000", "alice@example.com", "no id here")
	key8 := contentKeyOf("T1", "2024-01-02 05:00:00", "bob@example.com", "")
	want := []string{
		"good.csv:2 <m3@x>", // message_id as written (trimmed): the shared record rules keep brackets
		"good.csv:3 m1@x",
		"good.csv:6 " + key4 + " warning no-message-id",
		"good.csv:8 " + key8 + " warning no-message-id",
		"good.csv:9 m5",
	}
	if diff := cmp.Diff(want, summaries(items)); diff != "" {
		t.Fatalf("rows (-want +got):\n%s", diff)
	}

	type got struct {
		Thread, Ticket, Subject, Date, Body, HTML string
		From                                      sources.Address
		To, Cc                                    []sources.Address
		Atts                                      []sources.Attachment
		Raw                                       string
	}
	abs, _ := filepath.Abs(filepath.Join("testdata", "files", "note.txt"))
	wantMsgs := []got{
		{Thread: "T2", Ticket: "101", Subject: "Re: hi", Date: "2023-11-14T22:16:40Z", Body: "second, in T2",
			From: sources.Address{Name: "Bob", Email: "bob@example.com"}, To: []sources.Address{{Email: "alice@example.com"}},
			Raw: "T2,<m3@x>,101,1700000200,Bob <bob@example.com>,alice@example.com,,Re: hi,\"second, in T2\",,\r\n"},
		{Thread: "T1", Ticket: "100", Subject: "Hello", Date: "2024-01-02T03:04:05Z",
			Body: "line one\nline two, with comma\n\"quoted\"",
			From: sources.Address{Name: "Alice, A.", Email: "alice@example.com"},
			To:   []sources.Address{{Email: "bob@example.com"}, {Email: "carol@example.com"}}},
		{Thread: "T2", Ticket: "101", Date: "2023-11-14T22:20:00Z", Body: "no id here",
			From: sources.Address{Email: "alice@example.com"}, To: []sources.Address{{Email: "bob@example.com"}}},
		{Thread: "T1", Ticket: "100", Date: "2024-01-02T05:00:00Z", HTML: "<p>html only</p>", Body: "html only", // derived, as for mbox (issue 12, item 13)
			From: sources.Address{Email: "bob@example.com"}, To: []sources.Address{{Email: "alice@example.com"}}, Cc: []sources.Address{{Email: "dave@example.com"}},
			Atts: []sources.Attachment{{Path: abs, Name: "note.txt", ContentType: "text/plain; charset=utf-8", Size: 14}}},
		{Thread: "T3", Subject: "Subject three", Date: "2024-03-01T08:00:00Z", Body: "last row without line end",
			From: sources.Address{Email: "carol@example.com"}, To: []sources.Address{{Email: "alice@example.com"}},
			Raw: "T3,m5,,2024-03-01T10:00:00+02:00,carol@example.com,alice@example.com,,Subject three,last row without line end,,"},
	}
	r, err := Open(path, sources.Options{Name: "good.csv", Fields: goodFields, Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i, it := range items {
		m := it.msg
		g := got{Thread: m.ThreadID, Ticket: m.TicketRef, Subject: m.Subject, Date: m.Date.UTC().Format("2006-01-02T15:04:05Z07:00"),
			Body: m.Body, HTML: m.HTMLBody, From: m.From, To: m.To, Cc: m.Cc, Atts: m.Attachments}
		if wantMsgs[i].Raw != "" {
			rr, err := r.(sources.RawReader).Raw(it.env)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(rr)
			g.Raw = string(b)
		}
		if diff := cmp.Diff(wantMsgs[i], g); diff != "" {
			t.Errorf("Load(%s) (-want +got):\n%s", it.env.Loc, diff)
		}
		if !m.HasFrom || m.Rejected() {
			t.Errorf("Load(%s): HasFrom %v, issues %v", it.env.Loc, m.HasFrom, m.Issues)
		}
	}
}

func TestCSVBad(t *testing.T) {
	items := readCSVFile(t, filepath.Join("testdata", "bad.csv"), sources.Options{Name: "x.csv"})
	want := []string{
		"x.csv:2 m1",
		"x.csv:3 ERR wrong-column-count",
		"x.csv:4 m3 error missing-field",
		"x.csv:5 m4 warning invalid-address",
		"x.csv:6 m5 warning invalid-address, error no-recipient",
		"x.csv:7 m6 error no-date",
		"x.csv:8 m7 error date-out-of-range",
		"x.csv:9 m8 error date-out-of-range",
		"x.csv:10 m9 error not-utf8",
		"x.csv:11 ERR not-utf8",
		"x.csv:12 ERR bad-quote",
		"x.csv:13 ERR bad-quote",
		"x.csv:14 m13 error attachment-path, error attachment-missing",
		"x.csv:15 ERR unterminated-quote",
		"x.csv:16 m15",
		"x.csv:17 m16",
	}
	if diff := cmp.Diff(want, summaries(items)); diff != "" {
		t.Fatalf("rows (-want +got):\n%s", diff)
	}
	reasons := map[string]string{}
	for _, it := range items {
		if it.err != nil {
			reasons[it.err.Loc.String()] = it.err.Error()
			continue
		}
		for _, is := range it.env.Issues {
			if is.Severity == sources.SeverityError || is.Rule == "invalid-address" {
				reasons[it.env.Loc.String()] += is.Reason + "|"
			}
		}
	}
	wantReasons := map[string]string{
		"x.csv:3":  `x.csv:3: wrong number of fields: row has 5 fields, the header has 9; row: "t1,m2,2024-01-01 10:00:00,a@example.com,b@example.com"`,
		"x.csv:4":  `required field "from" ("from" in the file) is missing or empty|`,
		"x.csv:5":  `dropped invalid address(es) "not an address" from to|`,
		"x.csv:6":  `dropped invalid address(es) "nope", "also nope" from to|no valid recipient in to or cc|`,
		"x.csv:7":  `created_at is the Unix epoch exactly, which counts as no date|`,
		"x.csv:8":  `date 1969-12-31T23:59:59Z is before 1970|`,
		"x.csv:9":  `date 2030-01-01T00:00:00Z is more than a day after now (2024-06-01T12:00:00Z)|`,
		"x.csv:10": `row has bytes that are not valid UTF-8 (first bad byte 0xE9 at line 10, column 61, in body ("body" in the file)); save the file as UTF-8|`,
		"x.csv:11": `x.csv:11: thread_id ("thread_id" in the file) is not valid UTF-8 (first bad byte 0xE9 at line 11, column 2); save the file as UTF-8; row: "t�3,m10,2024-01-01 10:00:00,a@example.com,b@example.com,,s,bad thread id,"`,
		"x.csv:12": `x.csv:12: bare " in non-quoted-field: '"' at line 12, column 62 is inside a field that does not start with '"' (quote the field and double the '"'); row: "t3,m11,2024-01-01 10:00:00,a@example.com,b@example.com,,s,a 5\" monitor,"`,
		"x.csv:13": `x.csv:13: extraneous or missing " in quoted-field: '"' at line 13, column 62 closes a quoted field but is followed by more text (a '"' inside a quoted field must be doubled); row: "t3,m12,2024-01-01 10:00:00,a@example.com,b@example.com,,s,\"a \"quoted\" word\","`,
		"x.csv:15": `x.csv:15: extraneous or missing " in quoted-field: the quoted field opened at line 15, column 59 is never closed (the file ends inside it); the lines from 16 on are read again as rows; row: "t4,m14,2024-01-01 10:00:00,a@example.com,b@example.com,,s,\"never closed,…"`,
	}
	for loc, w := range wantReasons {
		if reasons[loc] != w {
			t.Errorf("reason at %s:\n got %s\nwant %s", loc, reasons[loc], w)
		}
	}
	if got := reasons["x.csv:14"]; !strings.Contains(got, `attachment "../secret.txt" is outside the csv file's folder`) ||
		!strings.Contains(got, `attachment "files/none.txt"`) || !strings.Contains(got, "does not exist") {
		t.Errorf("reason at x.csv:14 = %s", got)
	}
	// the good attachment of row 14 is kept
	if m := items[12].msg; len(m.Attachments) != 1 || m.Attachments[0].Name != "note.txt" {
		t.Errorf("Load(x.csv:14).Attachments = %+v", m.Attachments)
	}
	// the not-utf8 row still loads, with the bad byte replaced
	if m := items[8].msg; m.Body != "caf\uFFFD latin-1" || !m.Rejected() {
		t.Errorf("Load(x.csv:10) = body %q, rejected %v", m.Body, m.Rejected())
	}
	for _, it := range items {
		if it.err != nil && len(it.err.Error()) > 400 {
			t.Errorf("%s: reason too long: %s", it.err.Loc, it.err)
		}
	}
}

// TestCSVCases covers small files, written to a temporary folder as x.csv.
func TestCSVCases(t *testing.T) {
	const hdr = "thread_id,created_at,from,to,body\n"
	const row = "t,2024-01-01 10:00:00,a@example.com,b@example.com,"
	tests := []struct {
		name string
		data string
		want []string
	}{
		{"header only", hdr, []string{}},
		{"header only without line end", strings.TrimSuffix(hdr, "\n"), []string{}},
		{"blank lines skipped", "\n\r\n" + hdr + "\n\n" + row + "b1\n\r\n" + row + "b2\r", []string{
			"x.csv:6 ok", "x.csv:8 ok",
		}},
		{"unterminated quote in the middle", hdr + row + "one\n" + row + "\"two\n" + row + "three\n" + row + "four\n", []string{
			"x.csv:2 ok", "x.csv:3 ERR unterminated-quote", "x.csv:4 ok", "x.csv:5 ok",
		}},
		{"missing closing quote before a quoted field", hdr + row + "one\n" + row + "\"two\n" + row + "three\n" + row + "\"four\"\n", []string{
			"x.csv:2 ok", "x.csv:3 ERR bad-quote", "x.csv:4 ok", "x.csv:5 ok",
		}},
		{"stray quote swallows the next line", hdr + row + "\"one\n" + row + "\"two\"x\n" + row + "three\n", []string{
			"x.csv:2 ERR bad-quote", "x.csv:3 ERR bad-quote", "x.csv:4 ok",
		}},
		{"multi-line row", hdr + row + "\"a\nb\r\nc\"\n" + row + "x\n", []string{"x.csv:2 ok", "x.csv:5 ok"}},
		{"too few and too many fields", hdr + "a,b\n" + row + "x,extra\n" + " \n" + row + "ok", []string{
			"x.csv:2 ERR wrong-column-count", "x.csv:3 ERR wrong-column-count", "x.csv:4 ERR wrong-column-count", "x.csv:5 ok"}},
		{"empty fields", hdr + ",,,,\n", []string{"x.csv:2 missing-field"}},
		{"bad from", hdr + "t,2024-01-01 10:00:00,nobody,b@example.com,x\n", []string{"x.csv:2 no-sender"}},
		{"bad date", hdr + "t,yesterday,a@example.com,b@example.com,x\n", []string{"x.csv:2 no-date"}},
		{"NUL bytes repaired", hdr + row + "a\x00b\n", []string{"x.csv:2 ok"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.csv")
			if err := os.WriteFile(path, []byte(tc.data), 0o644); err != nil {
				t.Fatal(err)
			}
			items := readCSVFile(t, path, sources.Options{Name: "x.csv"})
			got := []string{}
			for _, it := range items {
				if it.err != nil {
					got = append(got, it.summary())
					continue
				}
				var rules []string
				for _, is := range it.env.Issues {
					if is.Severity == sources.SeverityError && !slices.Contains(rules, is.Rule) {
						rules = append(rules, is.Rule)
					}
				}
				if len(rules) == 0 {
					rules = []string{"ok"}
				}
				got = append(got, it.env.Loc.String()+" "+strings.Join(rules, ","))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCSVQuoteReasons(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.csv")
	data := "thread_id,created_at,from,to,body\n" +
		"t,2024-01-01 10:00:00,a@example.com,b@example.com,\"one\n" +
		"t,2024-01-01 10:00:00,a@example.com,b@example.com,\"two\" 2\n"
	os.WriteFile(path, []byte(data), 0o644)
	items := readCSVFile(t, path, sources.Options{Name: "x.csv"})
	want := []string{
		`x.csv:2: extraneous or missing " in quoted-field: the quoted field opened at line 2, column 51 ends at line 3, column 51 with a '"' followed by more text (a closing '"' is missing, or a '"' inside the field is not doubled); the lines from 3 on are read again as rows; row: "t,2024-01-01 10:00:00,a@example.com,b@example.com,\"one…"`,
		`x.csv:3: extraneous or missing " in quoted-field: '"' at line 3, column 55 closes a quoted field but is followed by more text (a '"' inside a quoted field must be doubled); row: "t,2024-01-01 10:00:00,a@example.com,b@example.com,\"two\" 2"`,
	}
	var got []string
	for _, it := range items {
		if it.err == nil {
			t.Fatalf("%s: want an error", it.env.Loc)
		}
		if !errors.Is(it.err, csv.ErrQuote) {
			t.Errorf("%s does not wrap csv.ErrQuote", it.err.Loc)
		}
		got = append(got, it.err.Error())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("reasons (-want +got):\n%s", diff)
	}
}

func TestCSVMissingFieldIssues(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.csv")
	os.WriteFile(path, []byte("thread_id,created_at,from,to,cc,body\n,,,,,\n"), 0o644)
	items := readCSVFile(t, path, sources.Options{Name: "x.csv"})
	want := []string{"error missing-field", "error missing-field", "error missing-field", "error missing-field", "error missing-field", "warning no-message-id"}
	if diff := cmp.Diff(want, issueList(items[0].env.Issues)); diff != "" {
		t.Errorf("issues (-want +got):\n%s", diff)
	}
}

func TestCSVOpenErrors(t *testing.T) {
	tests := []struct {
		name   string
		data   string
		fields map[string]string
		want   string // substring of the error
	}{
		{"missing columns", "thread_id,from,body\n", nil, `x.csv:1: unusable csv header: no column for required field(s) created_at, to; the header is "thread_id,from,body"`},
		{"missing body", "thread_id,created_at,from,to\n", nil, `no column for required field(s) body or html_body;`},
		{"missing renamed", "conversation,created_at,from,to,text\n", map[string]string{sources.FieldThreadID: "conv", sources.FieldBody: "text"},
			`no column for required field(s) thread_id (column "conv");`},
		{"duplicate column", "thread_id,created_at,from,to,body,Body\n", nil, `column "body" (field body) appears 2 times in the header (columns 5, 6)`},
		{"unterminated header", "thread_id,\"created_at\n", nil, `x.csv:1: unusable csv header: header row: extraneous or missing " in quoted-field: the quoted field opened at line 1, column 11 is never closed`},
		{"header not utf-8", "thread_id,created_at,from,to,body,caf\xe9\n", nil, "header row is not valid UTF-8 (first bad byte 0xE9 at line 1, column 38)"},
		{"unknown field", "thread_id,created_at,from,to,body\n", map[string]string{"thred_id": "x"}, `unknown field "thred_id" in fields`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.csv")
			os.WriteFile(path, []byte(tc.data), 0o644)
			r, err := Open(path, sources.Options{Name: "x.csv", Fields: tc.fields})
			if err == nil {
				r.Close()
				t.Fatalf("OpenCSV = nil error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("OpenCSV error = %q, want it to contain %q", err, tc.want)
			}
			if !strings.Contains(tc.name, "unknown") && !errors.Is(err, ErrHeader) {
				t.Errorf("OpenCSV error %v does not wrap ErrCSVHeader", err)
			}
		})
	}
	// An empty file is an empty source (issue 11): no error, no rows.
	for _, data := range []string{"", "\n\r\n\n"} {
		path := filepath.Join(t.TempDir(), "x.csv")
		os.WriteFile(path, []byte(data), 0o644)
		r, err := Open(path, sources.Options{Name: "x.csv"})
		if err != nil {
			t.Fatalf("OpenCSV(%q) = %v, want an empty source", data, err)
		}
		if _, err := r.Next(); err != io.EOF {
			t.Errorf("Next on %q = %v, want io.EOF", data, err)
		}
		r.Close()
	}
	if _, err := Open(filepath.Join(t.TempDir(), "none.csv"), sources.Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenCSV(missing file) = %v, want ErrNotExist", err)
	}
}

func TestCSVTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.csv")
	big := strings.Repeat("x", 300)
	data := "thread_id,created_at,from,to,body\n" +
		"t,2024-01-01 10:00:00,a@example.com,b@example.com,\"" + big + "\n" + big + "\"\n" +
		"t,2024-01-01 10:00:00,a@example.com,b@example.com,small\n" +
		"t,2024-01-01 10:00:00,a@example.com,b@example.com,\"" + big + "\n"
	os.WriteFile(path, []byte(data), 0o644)
	items := readCSVFile(t, path, sources.Options{Name: "x.csv", MaxMessageBytes: 200})
	want := []string{"x.csv:2 ERR too-large", "x.csv:4 m", "x.csv:5 ERR unterminated-quote"}
	got := summaries(items)
	if len(got) == 3 && strings.HasPrefix(got[1], "x.csv:4 sha256:") {
		got[1] = "x.csv:4 m"
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("rows (-want +got):\n%s", diff)
	}
	if s := items[0].err.Error(); !strings.Contains(s, "row is 654 bytes (lines 2-3), over max_message_bytes 200") {
		t.Errorf("too-large reason = %s", s)
	}
}

func TestCSVClosed(t *testing.T) {
	r, err := Open(filepath.Join("testdata", "bad.csv"), sources.Options{})
	if err != nil {
		t.Fatal(err)
	}
	env, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if _, err := r.Next(); !errors.Is(err, sources.ErrClosed) {
		t.Errorf("Next after Close = %v, want ErrClosed", err)
	}
	if _, err := r.Load(env); !errors.Is(err, sources.ErrClosed) {
		t.Errorf("Load after Close = %v, want ErrClosed", err)
	}
}

// TestCSVCorpus reads the twcs sample (tweets): no column is an email
// address, so every row is rejected, but every row must be accounted for.
func TestCSVCorpus(t *testing.T) {
	path := filepath.Join("..", "..", "..", "shared", "corpora", "helpdesk", "twcs", "sample.csv")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("corpus not available: %v", err)
	}
	fields := map[string]string{
		sources.FieldThreadID: "in_response_to_tweet_id", sources.FieldMessageID: "tweet_id", sources.FieldFrom: "author_id",
		sources.FieldTo: "response_tweet_id", sources.FieldBody: "text",
	}
	items := readCSVFile(t, path, sources.Options{Name: "sample.csv", Fields: fields})
	rules := map[string]int{}
	for _, it := range items {
		if it.err != nil {
			rules["ERR "+string(it.err.Rule)]++
			continue
		}
		seen := map[string]bool{}
		for _, is := range it.env.Issues {
			if !seen[is.Rule] {
				rules[string(is.Severity)+" "+is.Rule]++
				seen[is.Rule] = true
			}
		}
		if it.msg.Body == "" {
			t.Errorf("%s: empty body", it.env.Loc)
		}
	}
	t.Logf("sample.csv: %d rows, %v", len(items), rules)
	if len(items) != 93 {
		t.Errorf("rows = %d, want 93", len(items))
	}
	want := map[string]int{
		"error missing-field":     53, // 25 rows have no in_response_to_tweet_id, 28 no response_tweet_id
		"error no-recipient":      65,
		"error no-sender":         93, // author_id is not an address
		"warning invalid-address": 65,
	}
	if diff := cmp.Diff(want, rules); diff != "" {
		t.Errorf("rules (-want +got):\n%s", diff)
	}
}

// splitWithCSV splits data with encoding/csv alone: the reference the row
// scanner must agree with, up to the first quoting error that spans lines
// (after which the scanner re-reads the lines encoding/csv swallowed).
type refRow struct {
	line            int
	fields          []string
	err             string // "bare" or "quote"
	errLine, errCol int    // for "bare" and a "quote" error on the row's first line
}

func splitWithCSV(data []byte) []refRow {
	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1
	var out []refRow
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return out
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			if pe.Line != pe.StartLine {
				// the scanner reads the swallowed lines again: it differs
				// from here on
				return append(out, refRow{line: -1})
			}
			rr := refRow{line: pe.StartLine, err: "quote"}
			if errors.Is(err, csv.ErrBareQuote) {
				rr.err = "bare"
			}
			if !unterminated(data, pe) {
				rr.errLine, rr.errCol = pe.Line, pe.Column
			}
			out = append(out, rr)
			continue
		}
		if err != nil {
			return out
		}
		line, _ := cr.FieldPos(0)
		out = append(out, refRow{line: line, fields: rec})
	}
}

// unterminated reports whether an ErrQuote of encoding/csv is the end of
// the file inside a quoted field rather than a stray '"'.
func unterminated(data []byte, pe *csv.ParseError) bool {
	if !errors.Is(pe, csv.ErrQuote) {
		return false
	}
	off := 0
	for l := 1; l < pe.Line; l++ {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			return true
		}
		off += i + 1
	}
	off += pe.Column - 1
	return off >= len(data) || data[off] != '"'
}

func splitWithScanner(t testing.TB, data []byte) []refRow {
	var sc rowScanner
	sc.init(bytes.NewReader(data), int64(len(data)), 1<<30)
	var out []refRow
	r := &reader{}
	for n := 0; ; n++ {
		if n > len(data)+1 {
			t.Fatalf("scanner does not end")
		}
		row, err := sc.next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		switch row.quote {
		case quoteBare:
			out = append(out, refRow{line: row.line, err: "bare", errLine: row.errLine, errCol: row.errCol})
			continue
		case quoteExtraneous:
			out = append(out, refRow{line: row.line, err: "quote", errLine: row.errLine, errCol: row.errCol})
			continue
		case quoteUnterminated:
			out = append(out, refRow{line: row.line, err: "quote"})
			continue
		}
		if row.end-row.start != int64(len(row.data)) || !bytes.Equal(row.data, data[row.start:row.end]) {
			t.Fatalf("row at line %d: data does not match its offsets", row.line)
		}
		fields, err := r.parseRow(row.data)
		if err != nil {
			t.Fatalf("row at line %d %q: encoding/csv: %v", row.line, row.data, err)
		}
		out = append(out, refRow{line: row.line, fields: fields})
	}
}

// checkScanner compares the row scanner with encoding/csv on data.
func checkScanner(t testing.TB, data []byte) {
	data = bytes.TrimPrefix(data, utf8BOM)
	ref := splitWithCSV(data)
	got := splitWithScanner(t, data)
	for i, w := range ref {
		if w.line == -1 {
			return
		}
		if i >= len(got) {
			t.Fatalf("scanner found %d rows, encoding/csv more: %+v", len(got), ref)
		}
		if diff := cmp.Diff(w, got[i], cmp.AllowUnexported(refRow{})); diff != "" {
			t.Fatalf("row %d (-encoding/csv +scanner):\n%s\ninput %q", i, diff, data)
		}
	}
	if len(got) != len(ref) {
		t.Fatalf("scanner found %d rows, encoding/csv %d; input %q", len(got), len(ref), data)
	}
}

func TestCSVScannerMatchesEncodingCSV(t *testing.T) {
	for _, s := range csvSeeds(t) {
		checkScanner(t, s)
	}
}

func csvSeeds(t testing.TB) [][]byte {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.csv"))
	sort.Strings(files)
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	for _, s := range []string{
		"a,b\n\"c\"\r\n\"d\"\"\",e\r\n", "a\n\"x\"\ry\n", "a,\"b\"\r", "\"\n\"\n\"\n", "a,\"b\nc\"d\ne\n",
		"\r\n\r\n", "a\r\r\n", "\"a\"\"\n", "x,y\n1,\"2\n", ",\n,\"\",\n",
	} {
		out = append(out, []byte(s))
	}
	return out
}

// FuzzCSV reads arbitrary files as csv: no panic, no hang, every envelope
// loads, and the row scanner agrees with encoding/csv.
func FuzzCSV(f *testing.F) {
	for _, s := range csvSeeds(f) {
		f.Add(s)
	}
	dir := f.TempDir()
	var n int
	var mu sync.Mutex
	f.Fuzz(func(t *testing.T, data []byte) {
		checkScanner(t, data)
		mu.Lock()
		n++
		path := filepath.Join(dir, fmt.Sprintf("f%d.csv", n))
		mu.Unlock()
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(path)
		for _, opts := range []sources.Options{{Now: testNow}, {Now: testNow, MaxMessageBytes: 64, Fields: map[string]string{sources.FieldTo: "a", sources.FieldFrom: "b", sources.FieldThreadID: "c"}}} {
			r, err := Open(path, opts)
			if err != nil {
				continue
			}
			for i := 0; ; i++ {
				if i > len(data)+1 {
					t.Fatalf("Next does not end")
				}
				env, err := r.Next()
				if err == io.EOF {
					break
				}
				var re *sources.RecordError
				if errors.As(err, &re) {
					if re.Loc.Line < 1 || re.Rule == "" {
						t.Fatalf("bad record error %+v", re)
					}
					continue
				}
				if err != nil {
					t.Fatalf("Next: %v", err)
				}
				m, err := r.Load(env)
				if err != nil {
					t.Fatalf("Load(%s): %v", env.Loc, err)
				}
				if m.Envelope != env {
					t.Fatalf("Load(%s): another envelope", env.Loc)
				}
				raw, err := r.(sources.RawReader).Raw(env)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(raw)
				if int64(len(b)) != env.Size || !bytes.Equal(b, data[env.Loc.Offset:env.Loc.Offset+env.Size]) {
					t.Fatalf("Raw(%s) = %q", env.Loc, b)
				}
			}
			r.Close()
		}
	})
}

func BenchmarkCSVScan(b *testing.B) {
	var buf bytes.Buffer
	buf.WriteString("thread_id,message_id,created_at,from,to,cc,subject,body\n")
	for i := 0; buf.Len() < 8<<20; i++ {
		fmt.Fprintf(&buf, "t%d,m%d,2024-01-01 10:00:00,Alice <alice@example.com>,\"bob@example.com, carol@example.com\",,Subject %d,\"Hello,\nthis is message %d with a \"\"quote\"\" and some text to make it longer than a line.\"\n", i%1000, i, i, i)
	}
	path := filepath.Join(b.TempDir(), "bench.csv")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	b.ResetTimer()
	for b.Loop() {
		r, err := Open(path, sources.Options{Now: testNow})
		if err != nil {
			b.Fatal(err)
		}
		for {
			_, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		r.Close()
	}
}

func TestCSVExcerpt(t *testing.T) {
	long := strings.Repeat("a", 79) + "é and more"
	tests := []struct{ in, want string }{
		{"a,b,c\n", "a,b,c"},
		{"a,\"b\r\nc\"\r\n", "a,\"b…"},
		{long, strings.Repeat("a", 79) + "…"}, // é does not fit: not cut in half
		{"caf\xe9,x", "caf\uFFFD,x"},
	}
	for _, tc := range tests {
		if got := excerpt([]byte(tc.in)); got != tc.want {
			t.Errorf("excerpt(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

var testNow = func() time.Time { return time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC) }

func issueList(is []sources.Issue) []string {
	out := []string{}
	for _, i := range is {
		out = append(out, string(i.Severity)+" "+i.Rule)
	}
	return out
}
