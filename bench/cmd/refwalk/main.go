// Command refwalk is the reference for the throughput benchmark (make
// bench, P1): the plainest Go walk of an mbox with go-mbox and go-message
// that decodes every part. It splits the file with go-mbox, parses each
// message with go-message (charsets via go-message/charset), walks the
// MIME tree and reads every leaf part to its end, which decodes its
// Content-Transfer-Encoding and, for text/* parts, its charset. It keeps
// nothing. It prints one line:
//
//	bytes=N messages=N parts=N decoded_bytes=N errors=N seconds=S mb_per_s=X
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/emersion/go-mbox"
	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset"
)

func main() {
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: refwalk FILE.mbox")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	start := time.Now()
	f, err := os.Open(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "refwalk:", err)
		os.Exit(1)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		fmt.Fprintln(os.Stderr, "refwalk:", err)
		os.Exit(1)
	}
	var messages, parts, decoded, errs int64
	mr := mbox.NewReader(bufio.NewReaderSize(f, 1<<20))
	for {
		r, err := mr.NextMessage()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "refwalk:", err)
			os.Exit(1)
		}
		messages++
		e, err := message.Read(r)
		if e == nil {
			errs++
			continue
		}
		if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
			errs++
		}
		// The header fields as a mail client shows them.
		fs := e.Header.Fields()
		for fs.Next() {
			fs.Text()
		}
		werr := e.Walk(func(_ []int, p *message.Entity, err error) error {
			if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
				errs++
				return nil
			}
			if p.MultipartReader() != nil {
				return nil
			}
			parts++
			n, _ := io.Copy(io.Discard, p.Body)
			decoded += n
			return nil
		})
		if werr != nil {
			errs++
		}
	}
	secs := time.Since(start).Seconds()
	fmt.Printf("bytes=%d messages=%d parts=%d decoded_bytes=%d errors=%d seconds=%.3f mb_per_s=%.1f\n",
		st.Size(), messages, parts, decoded, errs, secs, float64(st.Size())/1e6/secs)
}
