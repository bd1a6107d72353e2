package files

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/threadlift/threadlift/sources"
)

// AttachmentAt returns msg.Attachments[i].
func AttachmentAt(msg *sources.Message, i int) (sources.Attachment, error) {
	if msg == nil || msg.Envelope == nil {
		return sources.Attachment{}, errors.New("open attachment: no message")
	}
	if i < 0 || i >= len(msg.Attachments) {
		return sources.Attachment{}, fmt.Errorf("open attachment %d of %s: the message has %d attachments", i, msg.Loc, len(msg.Attachments))
	}
	return msg.Attachments[i], nil
}

// OpenAttachment opens a.Path, checks it is still a regular file of
// a.Size bytes and returns a reader of exactly a.Size bytes.
func OpenAttachment(a sources.Attachment) (io.ReadCloser, error) {
	if a.Path == "" {
		return nil, fmt.Errorf("open attachment %q: no file path", a.Name)
	}
	f, err := os.Open(a.Path)
	if err != nil {
		return nil, fmt.Errorf("open attachment: %w", err) // *PathError names the path
	}
	st, err := f.Stat()
	switch {
	case err != nil:
		f.Close()
		return nil, fmt.Errorf("open attachment: %w", err)
	case !st.Mode().IsRegular():
		f.Close()
		return nil, fmt.Errorf("open attachment %s: %w: not a regular file now", a.Path, sources.ErrAttachmentChanged)
	case st.Size() != a.Size:
		f.Close()
		return nil, fmt.Errorf("open attachment %s: %w: %d bytes now, %d when loaded", a.Path, sources.ErrAttachmentChanged, st.Size(), a.Size)
	}
	return &attachmentReader{r: f, size: a.Size, what: a.Path, closer: f}, nil
}

// ExactReader returns a reader of exactly size bytes of r, named what in
// its errors: fewer, or more, is ErrAttachmentChanged.
func ExactReader(r io.Reader, size int64, what string) io.ReadCloser {
	return &attachmentReader{r: r, size: size, what: what}
}

// attachmentReader returns exactly size bytes of r: fewer, or more, is
// ErrAttachmentChanged. A part that ends without its closing multipart
// boundary (io.ErrUnexpectedEOF) after size bytes ends normally: Load kept
// it so.
type attachmentReader struct {
	r      io.Reader
	size   int64
	n      int64
	what   string
	closer io.Closer
	err    error
}

func (a *attachmentReader) Read(p []byte) (int, error) {
	if a.err != nil {
		return 0, a.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if a.n >= a.size {
		a.err = a.atEnd()
		return 0, a.err
	}
	if rest := a.size - a.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	k, err := a.r.Read(p)
	a.n += int64(k)
	switch {
	case err == nil:
		return k, nil
	case a.n == a.size && (err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF)):
		a.err = io.EOF
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		a.err = fmt.Errorf("attachment %s: %w: it ends after %d of its %d bytes", a.what, sources.ErrAttachmentChanged, a.n, a.size)
	default:
		a.err = fmt.Errorf("attachment %s: %w", a.what, err)
	}
	return k, a.err
}

// atEnd checks that r has nothing after its size bytes.
func (a *attachmentReader) atEnd() error {
	var one [1]byte
	for range 100 {
		k, err := a.r.Read(one[:])
		if k > 0 {
			return fmt.Errorf("attachment %s: %w: it has more than its %d bytes", a.what, sources.ErrAttachmentChanged, a.size)
		}
		switch {
		case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
			return io.EOF
		case err != nil:
			return fmt.Errorf("attachment %s: %w", a.what, err)
		}
	}
	return fmt.Errorf("attachment %s: %w", a.what, io.ErrNoProgress)
}

// Close releases what the reader holds; reads fail afterwards.
func (a *attachmentReader) Close() error {
	if a.err == os.ErrClosed {
		return nil
	}
	a.err, a.r = os.ErrClosed, nil
	if a.closer != nil {
		return a.closer.Close()
	}
	return nil
}
