package checkpoint

import (
	"context"
	"fmt"
	"time"
)

// Upload is an attachment uploaded for a message.
type Upload struct {
	MessageKey   string
	Index        int // position in the message's attachments
	AttachmentID string
	Name         string
	Size         int64
	UploadedAt   time.Time
}

// RecordUpload records (or replaces) the upload of a message's idx-th
// attachment, stamped now.
func (s *Store) RecordUpload(ctx context.Context, threadKey string, u Upload) error {
	return s.tx(ctx, fmt.Sprintf("record upload for message %q", u.MessageKey), func(ctx context.Context, tx *wtx) error {
		r, err := s.getThread(ctx, tx, threadKey)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, sqlRecordUpload, r.id, u.MessageKey, u.Index, u.AttachmentID, u.Name, u.Size, s.stamp())
		return err
	})
}

// Uploads returns the uploads recorded for a thread's messages, by message
// key and index.
func (s *Store) Uploads(ctx context.Context, threadKey string) (map[string]map[int]Upload, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT u.message_key, u.idx, u.attachment_id, u.name, u.size, u.uploaded_at
		FROM uploads u JOIN threads t ON t.id = u.thread_id WHERE t.key = ? AND t.key <> ''`, threadKey)
	if err != nil {
		return nil, s.wrap(fmt.Sprintf("read uploads of %q", threadKey), err)
	}
	defer rows.Close()
	out := map[string]map[int]Upload{}
	for rows.Next() {
		var u Upload
		var at string
		if err := rows.Scan(&u.MessageKey, &u.Index, &u.AttachmentID, &u.Name, &u.Size, &at); err != nil {
			return nil, s.wrap(fmt.Sprintf("read uploads of %q", threadKey), err)
		}
		u.UploadedAt = parseTime(at)
		if out[u.MessageKey] == nil {
			out[u.MessageKey] = map[int]Upload{}
		}
		out[u.MessageKey][u.Index] = u
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(fmt.Sprintf("read uploads of %q", threadKey), err)
	}
	return out, nil
}
