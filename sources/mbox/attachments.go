package mbox

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/internal/files"
	"github.com/threadlift/threadlift/sources/internal/mime"
)

var _ sources.AttachmentReader = (*reader)(nil)

// OpenAttachment streams the decoded content of msg.Attachments[i]. It is
// safe for concurrent use, with itself and with Load. The reader holds no
// more than a few read buffers, whatever the attachment's size.
func (r *reader) OpenAttachment(msg *sources.Message, i int) (io.ReadCloser, error) {
	if r.closed.Load() {
		return nil, sources.ErrClosed
	}
	a, err := files.AttachmentAt(msg, i)
	if err != nil {
		return nil, err
	}
	env := msg.Envelope
	what := fmt.Sprintf("%s part %s (%q)", env.Loc, a.Part, a.Name)
	if a.Part == "" {
		return nil, fmt.Errorf("open attachment %s: no MIME part locator (not loaded by this reader)", what)
	}
	br := bufio.NewReaderSize(nil, loadBufferBytes) // not pooled: the returned reader keeps it
	h := sha256.New()
	head, err := r.readHead(env, br, h, nil)
	if err != nil {
		return nil, fmt.Errorf("open attachment %s: %w", what, err)
	}
	if !head.hasHeader {
		return nil, fmt.Errorf("open attachment %s: %w: the record has no header now", what, sources.ErrAttachmentChanged)
	}
	if env.ContentKey != "" && "sha256:"+hex.EncodeToString(h.Sum(nil)) != env.ContentKey {
		return nil, fmt.Errorf("open attachment %s: %w: the record's header is not the same", what, sources.ErrAttachmentChanged)
	}
	found, why := mime.FindPart(env, &head.hdr, head.body(br), a,
		mime.Options{Budget: r.opts.MaxMessageBytes, AtFileEnd: env.Loc.Offset+env.Size == r.size})
	if head.rec.err != nil {
		return nil, fmt.Errorf("open attachment %s: %w", what, head.rec.err)
	}
	if found == nil {
		if why == "" {
			why = "no such attachment part in the message now"
		}
		return nil, fmt.Errorf("open attachment %s: %w: %s", what, sources.ErrAttachmentChanged, why)
	}
	return files.ExactReader(found, a.Size, what), nil
}
