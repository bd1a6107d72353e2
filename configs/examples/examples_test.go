// Package examples_test checks the example configs of configs/examples:
// each validates a synthetic export of its help desk's shape (testdata/,
// always) and the public sample in ../shared/corpora/helpdesk (when
// present).
package examples_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/threadlift/threadlift/configs"
	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/pipeline"
	"github.com/threadlift/threadlift/pipeline/report"
	"github.com/threadlift/threadlift/sources"
)

// counts is what validate must find.
type counts struct {
	threads, messages, valid, invalid int
	rules                             []string // the rules of the issues, sorted
}

// validateExample loads configs/examples/name.yaml beside exports/name
// pointing at data, and validates it as the CLI does.
func validateExample(t *testing.T, name, data string) counts {
	t.Helper()
	dir := t.TempDir()
	cfgData, err := os.ReadFile(name + ".yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(p, cfgData, 0o644); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "exports"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(abs, filepath.Join(dir, "exports", name)); err != nil {
		t.Fatal(err)
	}
	cfg, err := configs.Load(p, nil)
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	files, err := cfg.SourceFiles()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var srcs []pipeline.Source
	for _, f := range files {
		srcs = append(srcs, pipeline.Source{Type: f.Type, Path: f.Path, Name: filepath.Base(f.Path), Fields: f.Fields,
			ThreadKeyPrefix: f.ThreadKeyPrefix, Format: f.Format})
	}
	r := cfg.Mapping.DefaultRecipient
	rep, err := pipeline.Validate(context.Background(), pipeline.Options{
		Sources: srcs,
		Read:    sources.Options{DefaultRecipient: !r.IsZero()},
		Mapper: mapping.New(mapping.Options{Ticket: mapping.TicketRules{DefaultTicketID: cfg.Mapping.Ticket.DefaultTicketID},
			DefaultRecipient: &sources.Address{Email: r.Email}}),
	})
	if err != nil {
		t.Fatalf("validate %s: %v", name, err)
	}
	return summarize(rep)
}

func summarize(rep *report.Report) counts {
	c := counts{threads: rep.Threads, messages: rep.Messages, valid: rep.ValidThreads, invalid: rep.InvalidThreads}
	for _, is := range rep.Issues {
		c.rules = append(c.rules, is.Rule)
	}
	slices.Sort(c.rules)
	return c
}

// TestExamplesValidateTheirExports: each help desk config reads an export
// of its shape through nested paths, messages_path and $. paths.
func TestExamplesValidateTheirExports(t *testing.T) {
	for _, tt := range []struct {
		name string
		want counts
	}{
		// The private note has no sender: rejected, the rest imported.
		{"freshdesk", counts{1, 3, 1, 0, []string{"missing-field", "no-subject"}}},
		// Customer messages have no "to": the default recipient.
		{"helpscout", counts{2, 4, 2, 0, []string{"default-recipient", "default-recipient"}}},
		{"intercom", counts{1, 2, 1, 0, nil}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := validateExample(t, tt.name, filepath.Join("testdata", tt.name))
			if !equal(got, tt.want) {
				t.Errorf("validate %s = %+v, want %+v", tt.name, got, tt.want)
			}
		})
	}
}

// TestExamplesValidateThePublicSamples runs each config on the public
// sample of its help desk. What the samples lack is reported, not fatal:
// Help Scout's two sample conversations share a thread id (a duplicate
// with other content); Intercom's sample authors have no email.
func TestExamplesValidateThePublicSamples(t *testing.T) {
	root := filepath.Join("..", "..", "..", "shared", "corpora", "helpdesk")
	if _, err := os.Stat(root); err != nil {
		t.Skip("../shared/corpora/helpdesk is not here")
	}
	for _, tt := range []struct {
		name string
		want counts
	}{
		{"freshdesk", counts{1, 2, 1, 0, []string{"missing-field", "no-subject"}}},
		{"helpscout", counts{1, 2, 1, 0, []string{"default-recipient", "duplicate-id-different-content"}}},
		{"intercom", counts{1, 1, 0, 1, []string{"missing-field", "no-importable-message", "no-subject"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := validateExample(t, tt.name, filepath.Join(root, tt.name))
			if !equal(got, tt.want) {
				t.Errorf("validate %s = %+v, want %+v", tt.name, got, tt.want)
			}
		})
	}
}

func equal(a, b counts) bool {
	return a.threads == b.threads && a.messages == b.messages && a.valid == b.valid && a.invalid == b.invalid &&
		strings.Join(a.rules, ",") == strings.Join(b.rules, ",")
}
