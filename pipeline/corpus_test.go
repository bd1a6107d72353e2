package pipeline

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/threadlift/threadlift/mapping"
)

// corpusExpectation is what validate finds in one corpus file.
type corpusExpectation struct {
	Format        string         `json:"format"`
	Messages      int            `json:"messages"`
	Threads       int            `json:"threads"`
	ValidThreads  int            `json:"valid_threads"`
	RejectedRules map[string]int `json:"rejected_by_rule,omitempty"`
	WarningRules  map[string]int `json:"warnings_by_rule,omitempty"`
	Error         string         `json:"error,omitempty"`
}

// corpusFormat says how a corpus file is read, or "" when it is not an
// input (provenance notes, API fixtures that are not conversations).
func corpusFormat(rel string) string {
	switch strings.ToLower(filepath.Ext(rel)) {
	case ".mbox", ".eml":
		return "mbox"
	case ".csv":
		return "csv"
	case ".json", ".jsonl":
		return "json"
	}
	return ""
}

// TestCorpora runs validate on every input file of ../shared/corpora and
// compares what it finds with testdata/corpora.json, so that any change of
// behaviour on real data shows up as a diff. Refresh with -update.
func TestCorpora(t *testing.T) {
	root := filepath.Join("..", "..", "shared", "corpora")
	if _, err := os.Stat(root); err != nil {
		t.Skipf("corpora not available: %v", err)
	}
	got := map[string]corpusExpectation{}
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		format := corpusFormat(rel)
		if format == "" {
			return nil
		}
		opts := Options{
			Sources: []Source{{Type: format, Path: path, Name: rel, Fields: corpusFields(rel)}},
			Mapper:  mapping.New(mapping.Options{Ticket: mapping.TicketRules{DefaultTicketID: 1}, Now: func() time.Time { return now }}),
			Now:     func() time.Time { return now },
		}
		opts.Read.Now = opts.Now
		e := corpusExpectation{Format: format}
		rep, err := Validate(context.Background(), opts)
		if err != nil {
			e.Error = err.Error()
			got[rel] = e
			return nil
		}
		e.Messages, e.Threads, e.ValidThreads = rep.Messages, rep.Threads, rep.ValidThreads
		for _, is := range rep.Issues {
			m := &e.WarningRules
			if is.Severity == "error" {
				m = &e.RejectedRules
			}
			if *m == nil {
				*m = map[string]int{}
			}
			(*m)[is.Rule]++
		}
		got[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "corpora.json")
	if *update {
		b, _ := json.MarshalIndent(got, "", "  ")
		if err := os.WriteFile(golden, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	b, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./pipeline -run TestCorpora -update)", err)
	}
	var want map[string]corpusExpectation
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	var files []string
	for f := range got {
		files = append(files, f)
	}
	sort.Strings(files)
	for _, f := range files {
		if diff := cmp.Diff(want[f], got[f]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", f, diff)
		}
	}
	for f := range want {
		if _, ok := got[f]; !ok {
			t.Errorf("%s: in the expectations but no longer found", f)
		}
	}
}

// TestCorpusLayer runs the guarantees' tests on real archives of
// ../shared/corpora, on top of the generated ones each of those tests
// runs in every clone. The counts are what these files hold.
func TestCorpusLayer(t *testing.T) {
	if _, err := os.Stat(filepath.Join("..", "..", "shared", "corpora")); err != nil {
		t.Skip("corpus layer skipped: ../shared/corpora not found")
	}
	t.Run("TestImportCorpusExactlyOnce", func(t *testing.T) {
		// 108 is the strict From-line count; every message of this
		// archive is importable.
		importExactlyOnce(t, corpus(t, "ponymail-unit-tests/httpd-users-2020-07.mbox"), counts{108, 41, 41, 108})
	})
	t.Run("TestImportReconcilesUnknownOutcomes", func(t *testing.T) {
		importReconciles(t, corpus(t, "ponymail-unit-tests/maven-dev-2017-12-mboxvm.mbox"), 61, 221)
	})
	t.Run("TestImportUnderMixedFaults", func(t *testing.T) {
		// The first digit of the subject spreads threads over ten
		// tickets: 0 goes to ticket 10 through the lookup (as a ticket id,
		// 0 is invalid and would reject the thread).
		digits := map[string]int64{"0": 10}
		for d := int64(1); d <= 9; d++ {
			digits[strconv.FormatInt(d, 10)] = d
		}
		path := corpus(t, "linux-mips-public-inbox/linux-mips-2006-10_1500msgs.mbox")
		opts := testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`(\d)`), Lookup: digits, DefaultTicketID: 10})
		importUnderMixedFaults(t, opts, 440, 1494)
	})
	t.Run("TestPipermailArchiveIsRejectedNotLost", func(t *testing.T) {
		pipermailRejected(t, corpus(t, "bigbang/2001-November.mbox"), counts{messages: 164}, 82)
	})
	t.Run("TestAttachmentsLandOnTheRightEvents", func(t *testing.T) {
		var srcs []Source
		for _, rel := range attachmentCorpus {
			srcs = append(srcs, Source{Type: "mbox", Path: corpus(t, rel), Name: rel})
		}
		attachmentsLand(t, srcs, 0)
	})
}

// corpusFields maps the helpdesk exports that resemble our format onto its
// fields (contract §3 renames); the rest are read with the default names,
// and their rejections (missing fields) are part of the expectations.
func corpusFields(rel string) map[string]string {
	switch {
	case strings.HasPrefix(rel, "helpdesk/twcs/"):
		// Customer Support on Twitter: a tweet per row; replies point to
		// their parent with in_response_to_tweet_id.
		return map[string]string{"thread_id": "in_response_to_tweet_id", "message_id": "tweet_id",
			"from": "author_id", "to": "response_tweet_id", "body": "text"}
	case strings.HasPrefix(rel, "helpdesk/freshdesk/v2_conversations"):
		return map[string]string{"thread_id": "ticket_id", "message_id": "id", "from": "from_email",
			"to": "to_emails", "cc": "cc_emails", "body": "body_text", "html_body": "body"}
	}
	return nil
}
