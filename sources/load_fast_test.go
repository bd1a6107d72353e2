package sources

// Tests that the short cuts Load takes give what the plain ways they
// replace gave: each is compared with a reference kept here (the code it
// replaced, or the obvious slow way).

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/textproto"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// TestLoadWithNoHTMLText checks that LoadWith(NoHTMLText) gives what Load
// gives but for the Body of HTML-only messages, which it leaves empty.
func TestLoadWithNoHTMLText(t *testing.T) {
	files := []string{"testdata/mime.mbox", "testdata/basic.mbox", "testdata/mboxrd.mbox", "testdata/crlf_bom.mbox"}
	if _, err := os.Stat(corpusDir); err == nil {
		files = append(files, corpusFiles(t)...)
	}
	htmlOnly := 0
	for _, path := range files {
		r, err := OpenMbox(path, Options{Now: testNow})
		if err != nil {
			t.Fatal(err)
		}
		for {
			env, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				break // read errors are the reader tests' business
			}
			full, err := r.Load(env)
			if err != nil {
				t.Fatalf("Load(%s): %v", env.Loc, err)
			}
			light, err := LoadWith(r, env, LoadOptions{NoHTMLText: true})
			if err != nil {
				t.Fatalf("LoadWith(%s): %v", env.Loc, err)
			}
			if full.HTMLBody != "" {
				htmlOnly++
				if light.Body != "" {
					t.Errorf("LoadWith(%s, NoHTMLText).Body = %q, want empty", env.Loc, clip([]byte(light.Body), 60))
				}
				light.Body = full.Body
			}
			if diff := cmp.Diff(full, light); diff != "" {
				t.Errorf("LoadWith(%s, NoHTMLText) differs from Load but for Body (-Load +LoadWith):\n%s", env.Loc, diff)
			}
		}
		r.Close()
	}
	if htmlOnly == 0 {
		t.Error("no HTML-only message was tried")
	}
}

// oldRepairedHeader is how Load read a header before topHeader: the
// repaired fields written back out and parsed by go-message.
func oldRepairedHeader(fields []rawField) (textproto.Header, error) {
	var b bytes.Buffer
	for _, f := range fields {
		v := f.Value
		if !isASCII(string(v)) && !bytesValidUTF8(v) {
			v = []byte(fixUTF8(v))
		}
		b.WriteString(f.Key)
		b.WriteString(":")
		for i, l := range bytes.Split(v, []byte("\n")) {
			if i > 0 {
				b.WriteString("\r\n")
			}
			b.Write(bytes.TrimRight(l, "\r"))
		}
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	return textproto.ReadHeader(bufio.NewReader(&b))
}

// TestTopHeaderMatchesReadHeader checks that topHeader holds the fields as
// go-message reads the repaired header block.
func TestTopHeaderMatchesReadHeader(t *testing.T) {
	blocks := []string{
		"From: a@x\nTo: b@x\nSubject: hi\n",
		"Subject:   spaced   \t\nX-Empty:\nX-Empty: \t \nto: lower@x\nTO: upper@x\n",
		"Subject: folded\n  over\n\tthree lines \n  \nReceived: from x\r\n\tby y\r\n",
		"Subject: cr\r\r\nX-Mid: a\rb\nX-Lead:\r lead\nX-Tail: t \r \r\n",
		"Subject: caf\xe9 \xff\xfe\nFrom: J\xf6rg <j@x>\nX-UTF8: Stra\xc3\x9fe\n",
		"no colon line\nSubject: after junk\n continued\n",
		"X-Very-Long: " + strings.Repeat("word ", 2000) + "\n\t" + strings.Repeat("more ", 1000) + "\n",
		"Content-Type: multipart/mixed;\n boundary=\"abc\"\nContent-Transfer-Encoding: 7bit\nContent-ID: <c@x>\n",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200; i++ {
		var b strings.Builder
		for j := rng.IntN(8); j >= 0; j-- {
			b.WriteString([]string{"From", "To", "X-A", "subject", "Cc"}[rng.IntN(5)] + ":")
			for k := rng.IntN(4); k >= 0; k-- {
				b.WriteString([]string{" ", "\t", "a", "\xe9", "\r", "=?x?Q?y?=", ","}[rng.IntN(7)])
				if rng.IntN(5) == 0 {
					b.WriteString("\n" + []string{" ", "\t"}[rng.IntN(2)])
				}
			}
			b.WriteString("\n")
		}
		blocks = append(blocks, b.String())
	}
	for _, block := range blocks {
		fields, _ := parseHeaderBlock([]byte(block))
		if fields == nil {
			continue
		}
		want, err := oldRepairedHeader(fields)
		if err != nil {
			t.Fatalf("ReadHeader(%q): %v", block, err)
		}
		got := repairedHeader(fields)
		var wantKV, gotKV [][2]string
		fs := want.Fields()
		for fs.Next() {
			wantKV = append(wantKV, [2]string{fs.Key(), fs.Value()})
		}
		for _, f := range got {
			gotKV = append(gotKV, [2]string{f.key, f.value})
		}
		if diff := cmp.Diff(wantKV, gotKV); diff != "" {
			t.Errorf("header %q (-ReadHeader +topHeader):\n%s", clip([]byte(block), 80), diff)
		}
		for _, k := range []string{"From", "to", "Subject", "X-Empty", "X-A", "Content-Type", "Missing"} {
			if w, g := want.Get(k), got.Get(k); w != g {
				t.Errorf("header %q: Get(%q) = %q, want %q", clip([]byte(block), 80), k, g, w)
			}
			if w, g := want.Values(k), got.Values(k); !cmp.Equal(w, g) {
				t.Errorf("header %q: Values(%q) = %q, want %q", clip([]byte(block), 80), k, g, w)
			}
			if w, g := want.Has(k), got.Has(k); w != g {
				t.Errorf("header %q: Has(%q) = %v, want %v", clip([]byte(block), 80), k, g, w)
			}
		}
	}
}

// oldDecodeCharset is decodeCharset's legacy-charset path before
// lookupEncoding: go-message's charset.Reader, read to the end.
func oldDecodeCharset(label string, b []byte) (string, bool) {
	r, err := charset.Reader(strings.ToLower(strings.Trim(strings.TrimSpace(label), `"'`)), bytes.NewReader(b))
	if err != nil || r == nil {
		return "", false
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return "", false
	}
	return string(out), true
}

// TestDecodeCharsetMatchesCharsetReader checks that converting in one
// call gives what charset.Reader's stream gave, for labels of every kind
// and inputs longer than its 4 KiB buffers, valid or not.
func TestDecodeCharsetMatchesCharsetReader(t *testing.T) {
	labels := []string{
		"iso-8859-1", "ISO-8859-1", "latin1", "l1", "cp1252", "windows-1252", "Windows-1251", "koi8-r", "KOI8-U",
		"iso-8859-2", "iso-8859-15", "iso-8859-8-i", "macintosh", "ibm852", "cp850", "iso-2022-jp", "shift_jis", "sjis",
		"euc-jp", "gb2312", "gbk", "gb18030", "hz-gb-2312", "big5", "big5-hkscs", "euc-kr", "ks_c_5601-1987",
		"utf-7", "tis-620", "windows-874", "ansi_x3.110-1983", "x-utf_8j", "x-mac-cyrillic", "\"iso-8859-1\"",
		" 'koi8-r' ", "iso_8859-1:1987", "x-unknown-charset", "bogus", "replacement", "x-user-defined", "unicode-1-1",
	}
	inputs := [][]byte{nil, []byte("plain ascii"), []byte("caf\xe9 \xff\x80\x81 na\xefve")}
	type encoderOf interface{ NewEncoder() *encoding.Encoder }
	for _, s := range []string{"こんにちは、世界。", "中文字符测试", "Привет, мир", "Zażółć gęślą jaźń"} {
		for _, e := range []encoderOf{japanese.ISO2022JP, japanese.ShiftJIS, simplifiedchinese.GBK, charmap.KOI8R, charmap.ISO8859_2} {
			if b, err := e.NewEncoder().Bytes([]byte(strings.Repeat(s+" ", 800))); err == nil {
				inputs = append(inputs, b, b[:len(b)-1], b[:4097])
			}
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 2, 3, 100, 4095, 4096, 4097, 9000} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		inputs = append(inputs, b)
	}
	for _, label := range labels {
		for _, in := range inputs {
			want, ok := oldDecodeCharset(label, in)
			got, st := decodeCharset(label, in)
			if !ok {
				if st == decodedOK && normLabel(label) != "" {
					t.Errorf("decodeCharset(%q, %d bytes): decoded, charset.Reader could not", label, len(in))
				}
				continue
			}
			if st == decodedWrongUTF8 { // contract §9: valid UTF-8 the charset cannot decode stays UTF-8
				if !utf8.Valid(in) || got != string(in) || !strings.ContainsRune(want, utf8.RuneError) {
					t.Errorf("decodeCharset(%q, %d bytes) kept the bytes as UTF-8; valid UTF-8 %v, charset.Reader gave %q…", label, len(in), utf8.Valid(in), clip([]byte(want), 40))
				}
				continue
			}
			if (st != decodedOK && st != decodedLossy) || got != want || (st == decodedLossy) != strings.ContainsRune(want, utf8.RuneError) {
				t.Errorf("decodeCharset(%q, %d bytes) = %q…, %d; charset.Reader gave %q…", label, len(in), clip([]byte(got), 40), st, clip([]byte(want), 40))
			}
		}
	}
}

// oldUnescaper is the line-at-a-time unescaper the current one replaced.
type oldUnescaper struct {
	br          *bufio.Reader
	pending     []byte
	atLineStart bool
	err         error
}

func (u *oldUnescaper) Read(p []byte) (int, error) {
	for len(u.pending) == 0 {
		if u.err != nil {
			return 0, u.err
		}
		chunk, err := u.br.ReadSlice('\n')
		if u.atLineStart && len(chunk) > 0 && chunk[0] == '>' {
			j := 0
			for j < len(chunk) && chunk[j] == '>' {
				j++
			}
			if bytes.HasPrefix(chunk[j:], fromPrefix) {
				chunk = chunk[1:]
			}
		}
		u.atLineStart = err != bufio.ErrBufferFull
		if err == bufio.ErrBufferFull {
			err = nil
		}
		u.pending, u.err = chunk, err
	}
	n := copy(p, u.pending)
	u.pending = u.pending[n:]
	return n, nil
}

// readAllIn reads r to its end in reads of at most size bytes.
func readAllIn(r io.Reader, size int) ([]byte, error) {
	var out []byte
	buf := make([]byte, size)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

func checkUnescaper(t *testing.T, in []byte, bufSize, readSize int) {
	t.Helper()
	want, werr := readAllIn(&oldUnescaper{br: bufio.NewReaderSize(bytes.NewReader(in), bufSize), atLineStart: true}, readSize)
	got, gerr := readAllIn(newUnescaper(bufio.NewReaderSize(bytes.NewReader(in), bufSize)), readSize)
	if !bytes.Equal(got, want) || (werr == nil) != (gerr == nil) {
		t.Fatalf("unescape %q (buffer %d, reads of %d) = %q, %v; line by line gave %q, %v", clip(in, 200), bufSize, readSize, clip(got, 200), gerr, clip(want, 200), werr)
	}
}

// FuzzUnescaper checks the unescaper against the line-by-line one, for any
// input, buffer and read size.
func FuzzUnescaper(f *testing.F) {
	f.Add([]byte(">From a\n>>From b\nFrom c\n> From d\n>Fro\n>From"), 16, 3)
	f.Add([]byte("x\n>From a\r\n>>>From b\n\n>From "), 16, 4096)
	f.Add([]byte(strings.Repeat("a", 40)+"\n>From long\n"), 16, 7)
	f.Fuzz(func(t *testing.T, in []byte, bufSize, readSize int) {
		bufSize = 16 + abs(bufSize)%200
		readSize = 1 + abs(readSize)%300
		checkUnescaper(t, in, bufSize, readSize)
	})
}

// TestUnescaperRandom tries the unescaper on random mbox-like bodies.
func TestUnescaperRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	pieces := []string{">", ">>", "From ", "From", "x", "\n", "\r\n", " ", "abc", ">From ", "\n>From x\n"}
	for i := 0; i < 2000; i++ {
		var b strings.Builder
		for j := rng.IntN(60); j >= 0; j-- {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		checkUnescaper(t, []byte(b.String()), 16+rng.IntN(40), 1+rng.IntN(70))
	}
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// FuzzBase64Discard checks that discard counts what Read decodes, and
// finds the same repairs.
func FuzzBase64Discard(f *testing.F) {
	for _, s := range []string{"aGVsbG8=", "aGVs\r\nbG8=\r\n", "aGVsbG8", "aGV!sbG8=", "aGk=aGk=", "a", "ab=c", "====", "a=b=cd",
		"aGk=\nCheerio!\n", "aGk=\nBest\n", "aGk=\n" + strings.Repeat("QUJD", 2100) + "=", "aGk=\n" + strings.Repeat("QUJD", 2100) + "!"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		rd := &base64Reader{src: bytes.NewReader(in)}
		out, rerr := io.ReadAll(rd)
		dd := &base64Reader{src: iotestHalf{bytes.NewReader(in)}}
		n, derr := dd.discard()
		if derr == io.EOF {
			derr = nil
		}
		if n != int64(len(out)) || dd.invalid != rd.invalid || dd.partial != rd.partial || dd.junk != rd.junk || (rerr == nil) != (derr == nil) {
			t.Fatalf("discard(%q) = %d bytes, %d invalid, partial %v, %v; Read gave %d, %d, %v, %v",
				in, n, dd.invalid, dd.partial, derr, len(out), rd.invalid, rd.partial, rerr)
		}
	})
}

// iotestHalf reads at most half of what is asked (at least one byte), so
// that quanta straddle reads.
type iotestHalf struct{ r io.Reader }

func (h iotestHalf) Read(p []byte) (int, error) { return h.r.Read(p[:max(1, len(p)/2)]) }

// refQP decodes quoted-printable byte by byte with the state machine, as
// qpReader did before it copied runs of plain bytes.
func refQP(in []byte) ([]byte, int) {
	d := &qpReader{}
	for _, c := range in {
		d.step(c)
	}
	if d.state == 2 {
		d.out = append(d.out, '=', d.hex1)
		d.invalid++
	}
	return d.out, d.invalid
}

// FuzzQPReader checks qpReader against the byte-by-byte state machine.
func FuzzQPReader(f *testing.F) {
	for _, s := range []string{"a=3Db", "soft=\nbreak", "soft=  \r\nbreak", "x=ZZy", "end=", "end=4", "=\r=\rx", strings.Repeat("plain text ", 800) + "=E9"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		want, winv := refQP(in)
		d := &qpReader{src: bufio.NewReaderSize(iotestHalf{bytes.NewReader(in)}, 16)}
		got, err := readAllIn(d, 100)
		if err != nil || !bytes.Equal(got, want) || d.invalid != winv {
			t.Fatalf("qp(%q) = %q, %d invalid, %v; byte by byte gave %q, %d", in, got, d.invalid, err, want, winv)
		}
	})
}

// FuzzHeaderFromBuffer checks that reading a buffered header block in
// place gives the header, and leaves the reader where, the general way
// (readHeaderBlock, parseHeaderBlock, repairedHeader) does.
func FuzzHeaderFromBuffer(f *testing.F) {
	for _, s := range []string{
		"From: a@x\nTo: b@x\n\nbody\n",
		"From: a@x\r\nSubject: caf\xe9\r\n folded \xff\r\n\r\nbody",
		"junk\n continues nothing\nX-A:\t v \r\r\n\r\r\nX-B: after a CR-only line\n\nbody",
		"\nbody right away",
		"\r\n",
		"Subject: no blank line at the end",
		"Bad Key: v\nGood-Key : v\n: empty key\nx:y\n\tmore\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		slow := bufio.NewReaderSize(bytes.NewReader(in), 64)
		hb, err := readHeaderBlock(slow, nil, maxHeaderBytes)
		if err != nil {
			return
		}
		fields, _ := parseHeaderBlock(hb.block)
		var want topHeader
		if fields != nil {
			want = repairedHeader(fields)
		}
		wantRest, _ := io.ReadAll(slow)

		fast := bufio.NewReaderSize(bytes.NewReader(in), 64)
		fast.Peek(1) // fill the buffer, as skipPreamble has in Load
		got, ok := headerFromBuffer(fast)
		if !ok {
			if fast.Buffered() != min(len(in), 64) {
				t.Fatalf("headerFromBuffer(%q) consumed input and gave up", in)
			}
			return
		}
		gotRest, _ := io.ReadAll(fast)
		if len(got) == 0 {
			got = nil
		}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(headerValue{})); diff != "" {
			t.Fatalf("headerFromBuffer(%q) (-general +in place):\n%s", in, diff)
		}
		if !bytes.Equal(gotRest, wantRest) {
			t.Fatalf("headerFromBuffer(%q) left %q, the general way %q", in, gotRest, wantRest)
		}
	})
}

func TestPlainRun(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for n := 0; n < 3000; n++ {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = []byte{'a', '=', 0xbd, 0x3c, 0x3e, 0x00, 0xff}[rng.IntN(7)]
		}
		want := bytes.IndexByte(b, '=')
		if want < 0 {
			want = len(b)
		}
		if got := plainRun(b); got != want {
			t.Fatalf("plainRun(%q) = %d, want %d", b, got, want)
		}
	}
}
