package transfer

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// FuzzBase64Discard checks that discard counts what Read decodes, and
// finds the same repairs.
func FuzzBase64Discard(f *testing.F) {
	for _, s := range []string{"aGVsbG8=", "aGVs\r\nbG8=\r\n", "aGVsbG8", "aGV!sbG8=", "aGk=aGk=", "a", "ab=c", "====", "a=b=cd",
		"aGk=\nCheerio!\n", "aGk=\nBest\n", "aGk=\n" + strings.Repeat("QUJD", 2100) + "=", "aGk=\n" + strings.Repeat("QUJD", 2100) + "!"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		rd := &Base64Reader{src: bytes.NewReader(in)}
		out, rerr := io.ReadAll(rd)
		dd := &Base64Reader{src: iotestHalf{bytes.NewReader(in)}}
		n, derr := dd.Discard()
		if derr == io.EOF {
			derr = nil
		}
		if n != int64(len(out)) || dd.Invalid != rd.Invalid || dd.Partial != rd.Partial || dd.Junk != rd.Junk || (rerr == nil) != (derr == nil) {
			t.Fatalf("discard(%q) = %d bytes, %d invalid, partial %v, %v; Read gave %d, %d, %v, %v",
				in, n, dd.Invalid, dd.Partial, derr, len(out), rd.Invalid, rd.Partial, rerr)
		}
	})
}

// iotestHalf reads at most half of what is asked (at least one byte), so
// that quanta straddle reads.
type iotestHalf struct{ r io.Reader }

func (h iotestHalf) Read(p []byte) (int, error) { return h.r.Read(p[:max(1, len(p)/2)]) }

// refQP decodes quoted-printable byte by byte with the state machine, as
// QPReader did before it copied runs of plain bytes.
func refQP(in []byte) ([]byte, int) {
	d := &QPReader{}
	for _, c := range in {
		d.step(c)
	}
	if d.state == 2 {
		d.out = append(d.out, '=', d.hex1)
		d.Invalid++
	}
	return d.out, d.Invalid
}

// FuzzQPReader checks QPReader against the byte-by-byte state machine.
func FuzzQPReader(f *testing.F) {
	for _, s := range []string{"a=3Db", "soft=\nbreak", "soft=  \r\nbreak", "x=ZZy", "end=", "end=4", "=\r=\rx", strings.Repeat("plain text ", 800) + "=E9"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		want, winv := refQP(in)
		d := &QPReader{src: bufio.NewReaderSize(iotestHalf{bytes.NewReader(in)}, 16)}
		got, err := readAllIn(d, 100)
		if err != nil || !bytes.Equal(got, want) || d.Invalid != winv {
			t.Fatalf("qp(%q) = %q, %d invalid, %v; byte by byte gave %q, %d", in, got, d.Invalid, err, want, winv)
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

func TestLenientDecoders(t *testing.T) {
	qp := func(s string) (string, int) {
		d := &QPReader{src: bufioReader(s)}
		b, _ := io.ReadAll(d)
		return string(b), d.Invalid
	}
	for _, tt := range []struct {
		in, want string
		invalid  int
	}{
		{"a=3Db", "a=b", 0},
		{"soft=\nbreak", "softbreak", 0},
		{"soft=  \r\nbreak", "softbreak", 0},
		{"x=ZZy", "x=ZZy", 1},
		{"ctrl\x0cok", "ctrl\x0cok", 0},
		{"end=", "end", 0},
		{"end=4", "end=4", 1},
		{"low=e9", "low\xe9", 0},
	} {
		if got, inv := qp(tt.in); got != tt.want || inv != tt.invalid {
			t.Errorf("qp(%q) = %q, %d invalid; want %q, %d", tt.in, got, inv, tt.want, tt.invalid)
		}
	}
	b64 := func(s string) (string, int, bool) {
		d := &Base64Reader{src: strings.NewReader(s)}
		b, _ := io.ReadAll(d)
		return string(b), d.Invalid, d.Partial
	}
	for _, tt := range []struct {
		in, want string
		invalid  int
		partial  bool
	}{
		{"aGVsbG8=", "hello", 0, false},
		{"aGVs\r\nbG8=\r\n", "hello", 0, false},
		{"aGVsbG8", "hello", 0, true},
		{"aGV!sbG8=", "hello", 1, false},
		{"aGk=aGk=", "hihi", 0, false},
	} {
		if got, inv, p := b64(tt.in); got != tt.want || inv != tt.invalid || p != tt.partial {
			t.Errorf("base64(%q) = %q, %d, %v; want %q, %d, %v", tt.in, got, inv, p, tt.want, tt.invalid, tt.partial)
		}
	}
}

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }

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
