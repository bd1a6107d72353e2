package report_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/threadlift/threadlift/pipeline/report"
)

// hostile is what an archive may hold; none of it may become live markup.
var hostile = []string{"<script", "<img", "<style>*{display", "<style>body{display", "onerror=\"", "<a href=\"javascript"}

func TestHTMLEscapesHostileContent(t *testing.T) {
	rep := testReport(t)
	var buf bytes.Buffer
	if err := report.WriteHTML(&buf, rep, report.HTMLOptions{}); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	lower := strings.ToLower(page)
	for _, h := range hostile {
		if strings.Contains(lower, strings.ToLower(h)) {
			t.Errorf("report.html holds %q as markup", h)
		}
	}
	if n := strings.Count(lower, "<style"); n != 1 {
		t.Errorf("report.html has %d <style> elements, want only its own", n)
	}
	// Shown as text, not dropped: the subject is there, escaped.
	if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("report.html does not show the hostile subject as escaped text")
	}
	// No tag and no CSS of the page points at the network.
	for _, m := range regexp.MustCompile(`(?i)<[a-z][^>]*\s(src|href|action|srcset)\s*=\s*["']?[a-z]+:|url\(`).FindAllString(page, -1) {
		t.Errorf("report.html references something outside itself: %q", m)
	}
}

func TestHTMLLimitsExamples(t *testing.T) {
	r := &report.Report{}
	for i := 0; i < 500; i++ {
		r.Issues = append(r.Issues, report.Issue{Severity: "warning", Rule: "charset", ThreadKey: "t", Source: "a.mbox@" + strings.Repeat("1", i%7+1), Message: "m"})
	}
	r.Finish()
	var buf bytes.Buffer
	if err := report.WriteHTML(&buf, r, report.HTMLOptions{ExamplesPerRule: 20}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), ">a.mbox@"); n != 20 {
		t.Errorf("page shows %d examples of a rule with 500, want 20", n)
	}
	if !strings.Contains(buf.String(), "and 480 more") {
		t.Errorf("page does not say how many examples it left out")
	}
}

// findChromium returns a Chromium binary (THREADLIFT_TEST_CHROMIUM, else
// chromium, chromium-browser or google-chrome on PATH, else
// /usr/bin/chromium), or skips the test; under CI (the CI variable set) a
// missing browser fails instead.
func findChromium(t *testing.T) string {
	t.Helper()
	names := []string{"chromium", "chromium-browser", "google-chrome", "/usr/bin/chromium"}
	if p := os.Getenv("THREADLIFT_TEST_CHROMIUM"); p != "" {
		names = []string{p} // tests of this lookup, or a browser elsewhere
	}
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("no Chromium found (looked for %s): the HTML report is not checked in a browser", strings.Join(names, ", "))
	if os.Getenv("CI") != "" {
		t.Fatal(msg + "; CI is set, so this fails instead of skipping")
	}
	t.Skip(msg)
	return ""
}

// browse opens the file in headless Chromium and returns a context on
// the page, and the URLs of every request the page made.
func browse(t *testing.T, path string) (context.Context, func() []string) {
	t.Helper()
	bin := findChromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1600),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })

	var mu sync.Mutex
	var urls []string
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok && e.Request != nil {
			mu.Lock()
			urls = append(urls, e.Request.URL)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("start Chromium (%s): %v", bin, err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("enable network events: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+path), chromedp.WaitReady(chromedp.CSS("body"))); err != nil {
		t.Fatalf("open %s in Chromium: %v", path, err)
	}
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), urls...)
	}
}

// eval evaluates a JavaScript expression on the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Errorf("evaluate %s: %v", expr, err)
	}
	return v
}

// screenshotOnFailure saves what the browser shows when the test failed.
func screenshotOnFailure(t *testing.T, ctx context.Context) {
	t.Helper()
	if !t.Failed() {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("no screenshot: %v", err)
		return
	}
	p := filepath.Join(t.TempDir(), "report.png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Logf("no screenshot: %v", err)
		return
	}
	t.Logf("screenshot of the page: %s", p)
}

func TestHTMLInBrowser(t *testing.T) {
	dir := t.TempDir()
	if err := report.WriteDir(dir, testReport(t), report.HTMLOptions{}); err != nil {
		t.Fatal(err)
	}
	path, err := filepath.Abs(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, requests := browse(t, path)
	defer screenshotOnFailure(t, ctx)
	cards := eval[[]string](t, ctx, `[...document.querySelectorAll('#cards .card .label')].map(e => e.textContent)`)
	cardText := eval[string](t, ctx, `document.querySelector('#cards').textContent`)
	svgs := eval[int](t, ctx, `document.querySelectorAll('#chart-months svg, #chart-per-thread svg').length`)
	rects := eval[int](t, ctx, `document.querySelectorAll('#chart-months svg rect.bar').length`)
	issueRows := eval[int](t, ctx, `document.querySelectorAll('#issue-table > tbody > tr').length`)
	tickets := eval[int](t, ctx, `document.querySelectorAll('#top-tickets tbody tr').length`)
	scripts := eval[int](t, ctx, `document.scripts.length`)
	imgs := eval[int](t, ctx, `document.querySelectorAll('img, iframe, object, embed, link, image').length`)
	styles := eval[int](t, ctx, `document.querySelectorAll('style').length`)
	onAttrs := eval[int](t, ctx, `[...document.querySelectorAll('*')].filter(e => [...e.attributes].some(a => a.name.startsWith('on') || /^\s*javascript:/i.test(a.value))).length`)
	// The text of every example, collapsed or not.
	bodyText := eval[string](t, ctx, `document.body.textContent`)
	for _, want := range []string{"Threads", "Messages", "Valid threads", "Rejected threads", "Predicted duration"} {
		if !strings.Contains(strings.Join(cards, "|"), want) {
			t.Errorf("cards %q lack %q", cards, want)
		}
	}
	if !strings.Contains(cardText, "12s") {
		t.Errorf("cards %q do not show the predicted duration 12s", cardText)
	}
	if svgs != 2 {
		t.Errorf("page has %d chart svgs, want 2 (messages per month, messages per thread)", svgs)
	}
	if rects != 5 {
		t.Errorf("month chart has %d bars, want 5 (2023-12 to 2024-04)", rects)
	}
	if issueRows != 6 { // one row per rule of testdata's report.golden.json
		t.Errorf("issue table has %d rules, want 6", issueRows)
	}
	if tickets != 3 {
		t.Errorf("top tickets table has %d rows, want 3", tickets)
	}
	if scripts != 0 || imgs != 0 || styles != 1 || onAttrs != 0 {
		t.Errorf("live markup from the archive: %d scripts, %d img/iframe/object/embed/link, %d styles (want 1), %d on*/javascript: attributes", scripts, imgs, styles, onAttrs)
	}
	if !strings.Contains(bodyText, "<script>alert(1)</script>") {
		t.Errorf("the hostile subject is not shown as text")
	}
	if !strings.Contains(bodyText, `"threadlift_thread_key": "printer-1@customer.example"`) {
		t.Errorf("the payload preview is missing")
	}
	for _, u := range requests() {
		if !strings.HasPrefix(u, "file://") && !strings.HasPrefix(u, "data:") {
			t.Errorf("the page requested %s: it must need no network", u)
		}
	}
}

func TestRunHTMLInBrowser(t *testing.T) {
	dir := t.TempDir()
	sum := &report.Summary{ThreadsTotal: 5, Imported: 3, Failed: 1, Rejected: 1, Requests: 9, Retries: 2, RateLimited: 1, ElapsedSeconds: 30}
	id := int64(7)
	fs := []report.Failure{
		{ThreadKey: "a@x", TicketID: &id, State: "failed", Rule: "http", Reason: `422 <img src=http://evil.example/x onerror=alert(1)>`, HTTPStatus: 422, Source: "a.mbox@0"},
		{ThreadKey: "b@x", State: "rejected", Rule: "unmapped", Reason: "no ticket", Source: "a.mbox@100"},
	}
	sum.FailedByReason = report.CountFailures(fs)
	if err := report.WriteRunDir(dir, report.RunReport{Summary: sum, Failures: fs}, report.HTMLOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "summary.json")); err != nil {
		t.Fatal(err)
	}
	path, _ := filepath.Abs(filepath.Join(dir, "report.html"))
	ctx, requests := browse(t, path)
	defer screenshotOnFailure(t, ctx)
	svgs := eval[int](t, ctx, `document.querySelectorAll('#chart-outcomes svg').length`)
	rows := eval[int](t, ctx, `document.querySelectorAll('#issue-table > tbody > tr').length`)
	imgs := eval[int](t, ctx, `document.querySelectorAll('img').length`)
	text := eval[string](t, ctx, `document.querySelector('#cards').textContent`)
	if svgs != 1 || rows != 2 || imgs != 0 {
		t.Errorf("run page: %d svgs (want 1), %d failure rows (want 2), %d imgs (want 0)", svgs, rows, imgs)
	}
	for _, want := range []string{"Imported", "Failed", "Requests", "Elapsed", "18 requests/min"} {
		if !strings.Contains(text, want) {
			t.Errorf("run page cards %q lack %q", text, want)
		}
	}
	for _, u := range requests() {
		if !strings.HasPrefix(u, "file://") && !strings.HasPrefix(u, "data:") {
			t.Errorf("the page requested %s", u)
		}
	}
}

// TestRunHTMLWarnings: the run page lists the summary's warnings, as
// text.
func TestRunHTMLWarnings(t *testing.T) {
	sum := &report.Summary{Imported: 1, WarningsTotal: 1, Warnings: []report.Issue{{Severity: "warning", Rule: "thread-joined",
		ThreadKey: "b1", Source: "a.mbox@300", Message: `thread "b1" was imported as parts of other threads: <b>a1</b>`}}}
	var b strings.Builder
	if err := report.WriteRunHTML(&b, report.RunReport{Summary: sum}, report.HTMLOptions{}); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{`id="warnings"`, `data-rule="thread-joined"`, "a.mbox@300", "&lt;b&gt;a1&lt;/b&gt;"} {
		if !strings.Contains(page, want) {
			t.Errorf("run page lacks %q", want)
		}
	}
}
