package header

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/threadlift/threadlift/sources/internal/charset"

	"github.com/emersion/go-message/textproto"
	"github.com/google/go-cmp/cmp"
)

// oldRepairedHeader is how Load read a header before Header: the
// repaired fields written back out and parsed by go-message.
func oldRepairedHeader(fields []RawField) (textproto.Header, error) {
	var b bytes.Buffer
	for _, f := range fields {
		v := f.Value
		if !isASCII(string(v)) && !bytesValidUTF8(v) {
			v = []byte(charset.FixUTF8(v))
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

// TestTopHeaderMatchesReadHeader checks that Header holds the fields as
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
		fields, _ := Parse([]byte(block))
		if fields == nil {
			continue
		}
		want, err := oldRepairedHeader(fields)
		if err != nil {
			t.Fatalf("ReadHeader(%q): %v", block, err)
		}
		got := Repaired(fields)
		var wantKV, gotKV [][2]string
		fs := want.Fields()
		for fs.Next() {
			wantKV = append(wantKV, [2]string{fs.Key(), fs.Value()})
		}
		for _, f := range got {
			gotKV = append(gotKV, [2]string{f.Key, f.Value})
		}
		if diff := cmp.Diff(wantKV, gotKV); diff != "" {
			t.Errorf("header %q (-ReadHeader +topHeader):\n%s", Clip([]byte(block), 80), diff)
		}
		for _, k := range []string{"From", "to", "Subject", "X-Empty", "X-A", "Content-Type", "Missing"} {
			if w, g := want.Get(k), got.Get(k); w != g {
				t.Errorf("header %q: Get(%q) = %q, want %q", Clip([]byte(block), 80), k, g, w)
			}
			if w, g := want.Values(k), got.Values(k); !cmp.Equal(w, g) {
				t.Errorf("header %q: Values(%q) = %q, want %q", Clip([]byte(block), 80), k, g, w)
			}
			if w, g := want.Has(k), got.Has(k); w != g {
				t.Errorf("header %q: Has(%q) = %v, want %v", Clip([]byte(block), 80), k, g, w)
			}
		}
	}
}

// FuzzHeaderFromBuffer checks that reading a buffered header block in
// place gives the header, and leaves the reader where, the general way
// (ReadBlock, Parse, Repaired) does.
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
		hb, err := ReadBlock(slow, nil, MaxBytes)
		if err != nil {
			return
		}
		fields, _ := Parse(hb.Lines)
		var want Header
		if fields != nil {
			want = Repaired(fields)
		}
		wantRest, _ := io.ReadAll(slow)

		fast := bufio.NewReaderSize(bytes.NewReader(in), 64)
		fast.Peek(1) // fill the buffer, as skipPreamble has in Load
		got, ok := FromBuffer(fast)
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
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(Field{})); diff != "" {
			t.Fatalf("headerFromBuffer(%q) (-general +in place):\n%s", in, diff)
		}
		if !bytes.Equal(gotRest, wantRest) {
			t.Fatalf("headerFromBuffer(%q) left %q, the general way %q", in, gotRest, wantRest)
		}
	})
}
