package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/pipeline/report"
	"github.com/threadlift/threadlift/sources"
)

// Names of the files written next to the checkpoint after every import.
const (
	FailuresJSONL = "failures.jsonl"
	FailuresMbox  = "failures.mbox"
)

// FailureRecords converts the checkpoint's failures to their JSON shape.
func FailureRecords(fs []checkpoint.FailureRecord) []report.Failure {
	out := make([]report.Failure, 0, len(fs))
	for _, f := range fs {
		j := report.Failure{ThreadKey: f.ThreadKey, MessageKey: f.MessageKey, State: string(f.State), Rule: f.Rule,
			Reason: f.Reason, HTTPStatus: f.HTTPStatus, RequestID: f.RequestID, Source: f.Source}
		if f.TicketID != 0 {
			id := f.TicketID
			j.TicketID = &id
		}
		out = append(out, j)
	}
	return out
}

// writeFailures rewrites failures.jsonl (every failure record) and
// failures.mbox (the original bytes of every message of the archive that
// was not imported because it, or its thread, failed or was rejected) next
// to the checkpoint. Fix what failures lists, then feed failures.mbox back
// as a source: keys are content-derived, so nothing lands twice.
func (im *importer) writeFailures(ctx context.Context) error {
	recs, err := im.store.Failures(ctx)
	if err != nil {
		return err
	}
	dir := filepath.Dir(im.store.Path())

	var jl bytes.Buffer
	enc := json.NewEncoder(&jl)
	for _, f := range FailureRecords(recs) {
		if err := enc.Encode(f); err != nil {
			return fmt.Errorf("encode failure: %w", err)
		}
	}
	if err := report.WriteFileAtomic(filepath.Join(dir, im.opts.Shard.Path(FailuresJSONL)), jl.Bytes()); err != nil {
		return err
	}

	// Which sources hold messages that did not make it.
	want := map[string]bool{}
	threads := map[string]bool{}
	for _, f := range recs {
		switch {
		case f.MessageKey != "":
			want[f.Source] = true
		case f.ThreadKey != "":
			threads[f.ThreadKey] = true
		}
	}
	for key := range threads {
		msgs, err := im.store.Messages(ctx, key)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.State != checkpoint.MessageImported && m.Source != "" {
				want[m.Source] = true
			}
		}
	}
	return report.WriteAtomic(filepath.Join(dir, im.opts.Shard.Path(FailuresMbox)), func(w io.Writer) error {
		for i := range im.a.idx.len() {
			env := im.a.idx.envelope(i)
			if !want[env.Loc.String()] || im.a.sourceChanged(im.a.idx.src(i)) {
				continue // a file that changed since the scan holds other bytes there now
			}
			rr, ok := im.a.readers[im.a.idx.src(i)].(sources.RawReader)
			if !ok {
				continue
			}
			raw, err := rr.Raw(env)
			if err != nil {
				return err
			}
			if err := appendMbox(w, raw, env.Date); err != nil {
				return fmt.Errorf("copy %s: %w", env.Loc, err)
			}
		}
		return nil
	})
}

// appendMbox appends one record to an mboxrd buffer. A record that is an
// mbox record already (it starts with a From line, escaped) is copied as it
// is; a bare message (an .eml) gets a From line and mboxrd escaping.
func appendMbox(w io.Writer, r io.Reader, date time.Time) error {
	br := bufio.NewReader(r)
	head, _ := br.Peek(5)
	mbox := string(head) == "From "
	if !mbox {
		if date.IsZero() {
			date = time.Unix(0, 0)
		}
		fmt.Fprintf(w, "From threadlift@failures %s\n", date.UTC().Format("Mon Jan _2 15:04:05 2006"))
	}
	bol := true     // at the beginning of a line
	var tail []byte // the last bytes written, to end the record with a blank line
	for {
		frag, err := br.ReadSlice('\n')
		if len(frag) > 0 {
			if bol && !mbox && bytes.HasPrefix(bytes.TrimLeft(frag, ">"), []byte("From ")) {
				if _, werr := io.WriteString(w, ">"); werr != nil {
					return werr
				}
			}
			if _, werr := w.Write(frag); werr != nil {
				return werr
			}
			tail = append(tail, frag...)
			if len(tail) > 4 {
				tail = append(tail[:0], tail[len(tail)-4:]...)
			}
			bol = frag[len(frag)-1] == '\n'
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	t := strings.ReplaceAll(string(tail), "\r", "")
	var end string
	switch {
	case strings.HasSuffix(t, "\n\n"):
	case strings.HasSuffix(t, "\n"):
		end = "\n"
	default:
		end = "\n\n"
	}
	_, err := io.WriteString(w, end)
	return err
}
