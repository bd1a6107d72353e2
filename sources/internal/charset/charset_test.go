package charset

import (
	"bytes"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// oldDecodeCharset is Decode's legacy-charset path before
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
			got, st := Decode(label, in)
			if !ok {
				if st == OK && normLabel(label) != "" {
					t.Errorf("decodeCharset(%q, %d bytes): decoded, charset.Reader could not", label, len(in))
				}
				continue
			}
			if st == WrongUTF8 { // contract §9: valid UTF-8 the charset cannot decode stays UTF-8
				if !utf8.Valid(in) || got != string(in) || !strings.ContainsRune(want, utf8.RuneError) {
					t.Errorf("decodeCharset(%q, %d bytes) kept the bytes as UTF-8; valid UTF-8 %v, charset.Reader gave %q…", label, len(in), utf8.Valid(in), clip([]byte(want), 40))
				}
				continue
			}
			if (st != OK && st != Lossy) || got != want || (st == Lossy) != strings.ContainsRune(want, utf8.RuneError) {
				t.Errorf("decodeCharset(%q, %d bytes) = %q…, %d; charset.Reader gave %q…", label, len(in), clip([]byte(got), 40), st, clip([]byte(want), 40))
			}
		}
	}
}

func TestCharsets(t *testing.T) {
	tests := []struct {
		label string
		in    string
		want  string
		st    Status
	}{
		{"iso-8859-1", "caf\xe9", "café", OK},
		{"windows-1252", "\x80 \x93q\x94", "€ “q”", OK},
		{"ISO_8859-15", "\xa4", "€", OK},
		{"koi8-r", "\xf0\xd2\xc9\xd7\xc5\xd4", "Привет", OK},
		{"windows-1251", "\xcf\xf0\xe8", "При", OK},
		{"utf-8", "naïve", "naïve", OK},
		{"utf-8", "caf\xe9", "café", Invalid},
		{"x-mac-roman", "\x8e", "é", OK},
		{"x-unknown-thing", "na\xc3\xafve caf\xe9", "naïve café", Unknown},
		{"utf-16le", "h\x00i\x00", "hi", OK},
	}
	for _, tt := range tests {
		got, st := Decode(tt.label, []byte(tt.in))
		if got != tt.want || st != tt.st {
			t.Errorf("decodeCharset(%q, %q) = %q, %d; want %q, %d", tt.label, tt.in, got, st, tt.want, tt.st)
		}
	}
}

func clip(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
