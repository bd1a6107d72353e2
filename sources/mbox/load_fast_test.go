package mbox

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

	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/internal/header"

	"github.com/google/go-cmp/cmp"
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
		r, err := Open(path, sources.Options{Now: testNow})
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
			light, err := sources.LoadWith(r, env, sources.LoadOptions{NoHTMLText: true})
			if err != nil {
				t.Fatalf("LoadWith(%s): %v", env.Loc, err)
			}
			if full.HTMLBody != "" {
				htmlOnly++
				if light.Body != "" {
					t.Errorf("LoadWith(%s, NoHTMLText).Body = %q, want empty", env.Loc, header.Clip([]byte(light.Body), 60))
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
		t.Fatalf("unescape %q (buffer %d, reads of %d) = %q, %v; line by line gave %q, %v", header.Clip(in, 200), bufSize, readSize, header.Clip(got, 200), gerr, header.Clip(want, 200), werr)
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
