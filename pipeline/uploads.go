package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"path/filepath"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/zendesk"
)

// errAttachmentRead marks an attachment that could not be read from the
// archive (a local problem, not the API's).
var errAttachmentRead = errors.New("read attachment")

// uploadAttachments uploads, just before the request that references
// them, the attachments of chunk's events that have no recent upload, and
// sets every event's attachment_ids. Uploads are recorded in the
// checkpoint, so that a resume re-uses those younger than
// Options.ReuseUploadsFor (upload tokens expire) and uploads older ones
// again. key is the thread row the chunk is sent for; l records the
// uploads.
func (im *importer) uploadAttachments(ctx context.Context, l *ledger, key string, chunk []mapping.Event, have map[string]map[int]checkpoint.Upload) error {
	for ci := range chunk {
		e := &chunk[ci]
		if len(e.Upload) == 0 {
			continue
		}
		ids := make([]string, 0, len(e.Upload))
		for _, idx := range e.Upload {
			if u, ok := have[e.Key][idx]; ok && im.opts.Now().Sub(u.UploadedAt) < im.opts.ReuseUploadsFor {
				ids = append(ids, u.AttachmentID)
				continue
			}
			info, err := im.upload(ctx, e, idx)
			if err != nil {
				return err
			}
			a := e.Attachments[idx]
			u := checkpoint.Upload{MessageKey: e.Key, Index: idx, AttachmentID: info.ID, Name: a.Name, Size: a.Size}
			if err := l.recordUpload(ctx, key, u); err != nil {
				return err
			}
			if have[e.Key] == nil {
				have[e.Key] = map[int]checkpoint.Upload{}
			}
			u.UploadedAt = im.opts.Now()
			have[e.Key][idx] = u
			ids = append(ids, info.ID)
		}
		e.Event.Message.AttachmentIDs = ids
	}
	return nil
}

// upload streams one attachment from the archive to Zendesk, retrying
// what can be retried. An upload whose outcome is unknown is simply sent
// again: a second upload only leaves an unreferenced file behind.
func (im *importer) upload(ctx context.Context, e *mapping.Event, idx int) (*zendesk.AttachmentInfo, error) {
	a := e.Attachments[idx]
	ar, ok := im.a.Reader(im.a.Src(e.Message.Seq)).(sources.AttachmentReader)
	if !ok {
		return nil, fmt.Errorf("%w %q of %s: its source cannot read attachments", errAttachmentRead, a.Name, e.Source)
	}
	name := a.Name
	if name == "" {
		name = fmt.Sprintf("attachment-%d", idx+1)
	}
	ct := a.ContentType
	if ct == "" {
		ct = mime.TypeByExtension(filepath.Ext(name))
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	var rc io.ReadCloser
	var info *zendesk.AttachmentInfo
	v := im.retrier().call(ctx, try{
		// Each attempt reads the attachment from the archive again.
		before: func(context.Context) (err error) {
			if rc, err = ar.OpenAttachment(e.Message, idx); err != nil {
				return fmt.Errorf("%w %q of %s: %w", errAttachmentRead, a.Name, e.Source, err)
			}
			return nil
		},
	}, func(ctx context.Context) (err error) {
		defer rc.Close()
		im.c.uploads.Add(1)
		info, err = im.api.UploadAttachment(ctx, name, ct, rc)
		return err
	})
	switch {
	case v.local:
		return nil, v.err
	case v.err != nil:
		return nil, fmt.Errorf("upload attachment %q of %s: %w", a.Name, e.Source, v.err)
	}
	return info, nil
}
