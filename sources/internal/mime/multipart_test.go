package mime

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/threadlift/threadlift/sources/internal/header"
)

// refParts splits a multipart body line by line, by the rules of
// mimeParts written plainly (no buffer, no streaming): the reference
// FuzzMimeParts holds the streaming reader to.
func refParts(in []byte, dash []byte) (parts []string, end string) {
	var lines [][]byte
	for len(in) > 0 {
		i := bytes.IndexByte(in, '\n')
		if i < 0 {
			lines, in = append(lines, in), nil
			break
		}
		lines, in = append(lines, in[:i+1]), in[i+1:]
	}
	delim := func(l []byte) int { return matchDelimiter(l, dash, true) }
	i := 0
	for ; i < len(lines) && delim(lines[i]) <= 0; i++ {
	}
	if i == len(lines) {
		return nil, "no delimiter"
	}
	if delim(lines[i]) == 2 {
		return nil, "closed"
	}
	i++
	for {
		// header
		var hdr []byte
		for i < len(lines) {
			l := lines[i]
			if header.IsBlankLine(l) {
				i++
				break
			}
			if d := delim(l); d > 0 {
				if len(hdr) == 0 {
					i++
					if d == 2 {
						return parts, "closed"
					}
					continue
				}
				break
			}
			if (l[0] == ' ' || l[0] == '\t') && len(hdr) > 0 || header.IsField(l) {
				hdr = append(hdr, l...)
				i++
				continue
			}
			break
		}
		var body []byte
		for i < len(lines) && delim(lines[i]) <= 0 {
			body = append(body, lines[i]...)
			i++
		}
		if i == len(lines) {
			return append(parts, string(hdr)+"|"+string(body)), "eof"
		}
		body = bytes.TrimSuffix(body, []byte("\n"))
		body = bytes.TrimSuffix(body, []byte("\r"))
		parts = append(parts, string(hdr)+"|"+string(body))
		if delim(lines[i]) == 2 {
			return parts, "closed"
		}
		i++
	}
}

// streamParts reads in with mimeParts through a reader that hands on at
// most chunk bytes a call, and a buffer of size bytes.
func streamParts(t *testing.T, in []byte, boundary string, chunk, size int) ([]string, string) {
	var parts []string
	mr := newMimeParts(iotestChunks{bytes.NewReader(in), chunk}, boundary, bufio.NewReaderSize(nil, size))
	for {
		p, err := mr.next()
		switch {
		case err == io.EOF:
			return parts, "closed"
		case err == errNoDelimiter:
			return parts, "no delimiter"
		case err == io.ErrUnexpectedEOF:
			return parts, "eof"
		case err != nil:
			t.Fatalf("next: %v", err)
		}
		var hdr strings.Builder
		for _, f := range p.Header {
			hdr.WriteString(f.Key + ":" + f.Value + "\n")
		}
		b, _ := io.ReadAll(p)
		parts = append(parts, hdr.String()+"|"+string(b))
		if p.err == io.ErrUnexpectedEOF {
			return parts, "eof"
		}
	}
}

type iotestChunks struct {
	r io.Reader
	n int
}

func (c iotestChunks) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

// FuzzMimeParts checks the streaming multipart reader against refParts,
// whatever the read sizes and wherever the buffer cuts a delimiter line.
func FuzzMimeParts(f *testing.F) {
	for _, s := range []string{
		"--b\nContent-Type: text/plain\n\nhello\n--b\n--b\nX: y\n\nbody\r\n--b--\nepilogue",
		"preamble\r\n--b\r\nA: 1\r\n continued\r\nno blank line\r\n--b-->\r\n",
		"--b\n--b\n--b--\n", "--b \t\nA: b\n--b\n\n\n--bx\n--b-\n", "--b\nA: 1\n\nunterminated\r",
		"x\n--b\nContent-Transfer-Encoding: base64\nJVBERi0=\n--b--", "--b\r\n\r\n\r\n--b\r\n\r\n--b",
	} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		// Headers are compared as the reference keeps them: raw lines.
		want, wantEnd := refParts(in, []byte("--b"))
		got, gotEnd := streamParts(t, in, "b", int(chunk)%7+1, 64)
		if gotEnd != wantEnd || len(got) != len(want) {
			t.Fatalf("parts of %q: %d, %s; reference %d, %s", in, len(got), gotEnd, len(want), wantEnd)
		}
		for i := range got {
			_, gb, _ := strings.Cut(got[i], "|")
			_, wb, _ := strings.Cut(want[i], "|")
			if gb != wb {
				t.Fatalf("part %d of %q: body %q, reference %q", i, in, gb, wb)
			}
		}
	})
}
