package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"text/tabwriter"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/pipeline"
)

// failuresCheckpoint writes a checkpoint with n failed threads and a
// rejected message in every third one, keys and sources of varied
// widths (some not ASCII).
func failuresCheckpoint(t *testing.T, n int) *checkpoint.Store {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "threadlift.db")
	s, err := checkpoint.Open(ctx, path, checkpoint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		k := fmt.Sprintf("<t%d.%s@example.com>", i, strings.Repeat("x", i%17))
		msgs := []checkpoint.Message{{Key: k, Source: fmt.Sprintf("arch-ü-%d.mbox@%d", i%3, i*1000)}}
		if i%3 == 0 {
			msgs = append(msgs, checkpoint.Message{Key: fmt.Sprintf("<r%d@example.com>", i), Seq: 1, State: checkpoint.MessageRejected,
				Rule: "size", Reason: "message is larger than 50 MB", Source: "arch.mbox@" + fmt.Sprint(i)})
		}
		if err := s.Register(ctx, checkpoint.Thread{Key: k, TicketID: int64(i * 37 % 1000), Source: msgs[0].Source}, msgs); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			continue // a rejected message only, or nothing
		}
		if err := s.MarkInFlight(ctx, k, checkpoint.KindImport, []string{k}); err != nil {
			t.Fatal(err)
		}
		f := checkpoint.Failure{Rule: "http", Reason: "Unprocessable Entity — body too large", HTTPStatus: 422}
		if i%5 == 0 {
			f.RequestID = fmt.Sprintf("req-%d", i)
		}
		if err := s.MarkFailed(ctx, k, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := checkpoint.Open(ctx, path, checkpoint.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// tabwriterFailures is how failures printed its table before it
// streamed: every record in memory, then one tabwriter.
func tabwriterFailures(fs []checkpoint.FailureRecord) string {
	var b bytes.Buffer
	if len(fs) == 0 {
		return "no failures\n"
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATE\tRULE\tSOURCE\tTICKET\tTHREAD\tREASON")
	for _, f := range fs {
		ticket := "-"
		if f.TicketID != 0 {
			ticket = fmt.Sprint(f.TicketID)
		}
		reason := f.Reason
		if f.HTTPStatus != 0 {
			reason = fmt.Sprintf("HTTP %d %s", f.HTTPStatus, reason)
		}
		if f.RequestID != "" {
			reason += " (request id " + f.RequestID + ")"
		}
		key := f.ThreadKey
		if f.MessageKey != "" {
			key += " / " + f.MessageKey
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.State, f.Rule, f.Source, ticket, key, reason)
	}
	tw.Flush()
	fmt.Fprintf(&b, "%d failures\n", len(fs))
	return b.String()
}

// TestFailuresStreamSameOutput: failures reads its records one at a time
// (two passes: widths, then lines) and prints exactly what the tabwriter
// and the JSON encoder printed from every record in memory.
func TestFailuresStreamSameOutput(t *testing.T) {
	for _, n := range []int{0, 1, 300} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			ctx := context.Background()
			s := failuresCheckpoint(t, n)
			fs, err := s.Failures(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var text bytes.Buffer
			if err := writeFailuresText(ctx, &text, s); err != nil {
				t.Fatal(err)
			}
			if want := tabwriterFailures(fs); text.String() != want {
				t.Errorf("text:\n%s\nwant:\n%s", text.String(), want)
			}
			var js, want bytes.Buffer
			if err := writeFailuresJSON(ctx, &js, s); err != nil {
				t.Fatal(err)
			}
			enc := json.NewEncoder(&want)
			enc.SetIndent("", "  ")
			if err := enc.Encode(pipeline.FailureRecords(fs)); err != nil {
				t.Fatal(err)
			}
			if js.String() != want.String() {
				t.Errorf("json:\n%s\nwant:\n%s", js.String(), want.String())
			}
		})
	}
}

// TestFailuresTextCellsOneLine: a tab or a line break inside a reason
// would break the table; it is printed as a space.
func TestFailuresTextCellsOneLine(t *testing.T) {
	w := newFailureTable()
	f := checkpoint.FailureRecord{ThreadKey: "k", State: checkpoint.Failed, Rule: "http", Reason: "bad\trequest\nbody", Source: "a.mbox@0"}
	w.measure(f)
	var b bytes.Buffer
	w.line(&b, f)
	if got := b.String(); strings.Count(got, "\n") != 1 || strings.Contains(got, "\t") || !strings.Contains(got, "bad request body") {
		t.Errorf("line = %q", got)
	}
}
