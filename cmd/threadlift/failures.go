package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/pipeline"
)

func newFailuresCommand(g *globalOptions) *cobra.Command {
	var o jsonOption
	cmd := &cobra.Command{
		Use:   "failures -c FILE [--json]",
		Short: "List every failed or rejected thread and message, with source location and reason",
		Long: `failures lists what the checkpoint holds as failed (the API refused it, or
retries ran out) or rejected (it failed validation and was never sent):
thread key, message key, ticket, rule, reason, HTTP status, Zendesk request
id and the source location (FILE@OFFSET for mbox, FILE:LINE for csv/json).
Fix the cause, then 'threadlift retry' and 'threadlift import'. To fix the
records themselves, edit their copies in the newest failures/TIME/ folder
next to the checkpoint and add each file as a source (see 'import --help').`,
		Example: `  threadlift failures -c threadlift.yaml
  threadlift failures -c threadlift.yaml --json | jq -r '.[] | select(.rule == "http") | .thread_key'
  threadlift failures -c threadlift.yaml --json | jq 'group_by(.rule) | map({rule: .[0].rule, n: length})'
  threadlift failures -c threadlift.yaml --shard 0/4`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := openReadOnly(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer store.Close()
			out := bufio.NewWriter(g.stdout)
			if o.json {
				err = writeFailuresJSON(cmd.Context(), out, store)
			} else {
				err = writeFailuresText(cmd.Context(), out, store)
			}
			if ferr := out.Flush(); err == nil {
				err = ferr
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print a JSON array of {thread_key, message_key?, ticket_id, state, rule, reason, http_status?, request_id?, source}")
	return cmd
}

// Both writers read the failures one at a time (Store.EachFailure):
// memory does not grow with their number.

// writeFailuresJSON prints the failures as one JSON array, indented as
// json.Encoder with SetIndent("", "  ") prints it, an element at a time.
func writeFailuresJSON(ctx context.Context, w io.Writer, store *checkpoint.Store) error {
	n := 0
	err := store.EachFailure(ctx, 1, func(_ int, f checkpoint.FailureRecord) error {
		b, err := json.MarshalIndent(pipeline.FailureJSON(f), "  ", "  ")
		if err != nil {
			return fmt.Errorf("encode failure: %w", err)
		}
		sep := ",\n  "
		if n == 0 {
			sep = "[\n  "
		}
		n++
		if _, err := io.WriteString(w, sep); err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	end := "\n]\n"
	if n == 0 {
		end = "[]\n"
	}
	_, err = io.WriteString(w, end)
	return err
}

// writeFailuresText prints the failures as a table: a first pass
// measures the columns, the second prints the lines (both from one
// snapshot), as text/tabwriter would align them with a padding of 2.
func writeFailuresText(ctx context.Context, w io.Writer, store *checkpoint.Store) error {
	t := newFailureTable()
	err := store.EachFailure(ctx, 2, func(pass int, f checkpoint.FailureRecord) error {
		if pass == 0 {
			t.measure(f)
			return nil
		}
		if t.printed == 0 {
			if err := t.header(w); err != nil {
				return err
			}
		}
		return t.line(w, f)
	})
	if err != nil {
		return err
	}
	if t.n == 0 {
		_, err = fmt.Fprintln(w, "no failures")
		return err
	}
	_, err = fmt.Fprintf(w, "%d failures\n", t.printed)
	return err
}

// failureTable lays out the failures table: STATE RULE SOURCE TICKET
// THREAD, each padded to its widest cell plus 2, then REASON.
type failureTable struct {
	widths  [5]int // in runes, as text/tabwriter counts
	n       int    // records measured
	printed int
}

var failureHeader = [6]string{"STATE", "RULE", "SOURCE", "TICKET", "THREAD", "REASON"}

func newFailureTable() *failureTable {
	t := &failureTable{}
	for i := range t.widths {
		t.widths[i] = utf8.RuneCountInString(failureHeader[i])
	}
	return t
}

// cells returns the six cells of f's line, each on one line.
func failureCells(f checkpoint.FailureRecord) [6]string {
	ticket := "-"
	if f.TicketID != 0 {
		ticket = strconv.FormatInt(f.TicketID, 10)
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
	c := [6]string{string(f.State), f.Rule, f.Source, ticket, key, reason}
	for i := range c {
		if strings.ContainsAny(c[i], "\t\r\n") {
			c[i] = cellReplacer.Replace(c[i])
		}
	}
	return c
}

// cellReplacer keeps a cell on its line and in its column.
var cellReplacer = strings.NewReplacer("\t", " ", "\r\n", " ", "\n", " ", "\r", " ")

func (t *failureTable) measure(f checkpoint.FailureRecord) {
	t.n++
	c := failureCells(f)
	for i := range t.widths {
		t.widths[i] = max(t.widths[i], utf8.RuneCountInString(c[i]))
	}
}

func (t *failureTable) header(w io.Writer) error { return t.write(w, failureHeader) }

func (t *failureTable) line(w io.Writer, f checkpoint.FailureRecord) error {
	t.printed++
	return t.write(w, failureCells(f))
}

func (t *failureTable) write(w io.Writer, c [6]string) error {
	var b strings.Builder
	for i, width := range t.widths {
		b.WriteString(c[i])
		// A cell wider than measured (a record that changed between the
		// passes cannot: one snapshot) still gets the padding.
		b.WriteString(strings.Repeat(" ", max(width-utf8.RuneCountInString(c[i]), 0)+2))
	}
	b.WriteString(c[5])
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}
