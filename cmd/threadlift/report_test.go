package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// repairedOnly is a mailbox whose one message imports after a repair (an
// invalid address dropped): a warning, no error.
const repairedOnly = `From grace@customer.example Sat Dec  2 09:00:00 2023
From: Grace <grace@customer.example>
To: support@acme.example, Broken <broken@@example>
Subject: [#104] A question
Date: Sat, 2 Dec 2023 09:00:00 +0000
Message-ID: <question-2@customer.example>

Hello
`

func TestValidateFailOnAndReport(t *testing.T) {
	dir, cfg := setup(t, "http://127.0.0.1:1")
	if err := os.WriteFile(filepath.Join(dir, "archive.mbox"), []byte(repairedOnly), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	r := run(t, nil, "validate", "-c", cfg, "--no-progress", "--report", out)
	if r.code != 0 {
		t.Fatalf("validate of a warnings-only archive: exit %d, want 0\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "invalid-address") {
		t.Errorf("summary does not list the warning:\n%s", r.stdout)
	}
	var rep map[string]any
	readJSON(t, filepath.Join(out, "report.json"), &rep)
	if rep["threads"] != 1.0 || rep["valid_threads"] != 1.0 {
		t.Errorf("report.json threads=%v valid=%v, want 1, 1", rep["threads"], rep["valid_threads"])
	}
	html, err := os.ReadFile(filepath.Join(out, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(html), `id="issue-table"`) || strings.Contains(string(html), "<script") {
		t.Errorf("report.html lacks the issue table or holds a script")
	}

	if r := run(t, nil, "validate", "-c", cfg, "--no-progress", "--fail-on", "warning"); r.code != 1 {
		t.Errorf("validate --fail-on warning with a warning: exit %d, want 1\n%s", r.code, r.stderr)
	}
	if r := run(t, nil, "validate", "-c", cfg, "--no-progress", "--fail-on", "error"); r.code != 0 {
		t.Errorf("validate --fail-on error with only a warning: exit %d, want 0", r.code)
	}
	if r := run(t, nil, "validate", "-c", cfg, "--fail-on", "info"); r.code != 2 || !strings.Contains(r.stderr, "--fail-on") {
		t.Errorf("validate --fail-on info: exit %d %q, want 2 naming the flag", r.code, r.stderr)
	}
}

func TestImportReport(t *testing.T) {
	srv := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", Token: token, AutoCreateTickets: true})
	dir, cfg := setup(t, srv.URL)
	out := filepath.Join(dir, "run")
	r := run(t, []string{"TL_TEST_TOKEN=" + token}, "import", "-c", cfg, "--no-progress", "--report", out)
	if r.code != 1 {
		t.Fatalf("import exit %d, want 1 (the sample's undated message)\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"not imported, by reason", "no-date", "requests/min effective"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("import summary lacks %q:\n%s", want, r.stdout)
		}
	}
	var sum map[string]any
	readJSON(t, filepath.Join(out, "summary.json"), &sum)
	if sum["imported"] != 4.0 || sum["rejected"] != 1.0 {
		t.Errorf("summary.json imported=%v rejected=%v, want 4, 1", sum["imported"], sum["rejected"])
	}
	reasons, _ := sum["failed_by_reason"].([]any)
	found := false
	for _, x := range reasons {
		m := x.(map[string]any)
		if m["rule"] == "no-date" && m["state"] == "rejected" && m["kind"] == "message" && m["count"] == 1.0 {
			found = true
		}
	}
	if !found {
		t.Errorf("summary.json failed_by_reason = %v, want the no-date rejection of one message", sum["failed_by_reason"])
	}
	html, err := os.ReadFile(filepath.Join(out, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`id="cards"`, `id="chart-outcomes"`, `data-rule="no-date"`, "archive.mbox@3551"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("run report.html lacks %q", want)
		}
	}
}
