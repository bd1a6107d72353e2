// Command benchtable runs threadlift's performance targets (make bench)
// and prints one table with every figure, ratio, threshold and PASS/MISS.
//
//	benchtable -bin bin -size 1GB -small-size 100MB -seed 1
//
// It needs bin/threadlift, bin/zendesk-fake and, next to itself (or in
// -tools), genmbox and refwalk. Generated archives are cached in -cache
// (default $TMPDIR/threadlift-bench), keyed by kind, size and seed;
// everything else (checkpoints, reports, configs) lives in a run folder
// inside it that is removed at the end (-keep keeps it).
//
// Targets (each a ratio measured in the same run):
//
//	P1 throughput  threadlift validate on the big archive vs refwalk (go-mbox +
//	               go-message, every part decoded) ≥ 0.8×, and vs
//	               bench/pywalk.py (Python mailbox + email compat32) ≥ 5×.
//	P2 memory      peak RSS (wait4 Maxrss) of validate ≤ 64 MiB + 200 B per
//	               message on the small and the big archive, and the big
//	               one's RSS over the small one's, per-message index
//	               subtracted, ≤ 1.3.
//	P3 rate        import of ≥ 2,000 requests against zendesk-fake
//	               (--latency 50ms --rate-limit 600) with
//	               requests_per_minute 600: ≥ 0.98 of 600/min, 0 429s;
//	               limiter off (fake latency 0, no fake limit): ≥ 3,000
//	               requests/s.
//	P4 resume      re-run over a checkpoint of 100,000 done threads plus one
//	               new thread: process start to the fake's first request
//	               ≤ 2 s (the fake's --verbose request log line, read from
//	               its stderr pipe and timestamped on arrival).
//	C1 checkpoint  status and failures on a checkpoint of 1,000,000
//	               messages: each ≤ 1 s and ≤ 64 MiB peak RSS; and the
//	               bytes the checkpoint writes per request (checkpoint.go).
//	P5 backfill    1% appended to an imported 400,000-message archive:
//	               first new request ≤ 2 s, wall ≤ 2× the ideal, peak RSS
//	               ≤ 256 MiB (backfill.go).
//	P6 memory      validate's peak RSS at two sizes, the slope, projected
//	               to 1 and 5 million messages ≤ 256 MiB (backfill.go).
//	P7 memory      peak RSS of every command (validate, first import,
//	               re-run, backfill, verify, status, failures) at 1,000,000
//	               messages ≤ 256 MiB, each one's slope per message from
//	               P6's smaller size and its projection to 5 million
//	               ≤ 256 MiB (memory.go). Not in the default set (about
//	               20 minutes, 17 GB of disk): -only P7, or -only all,P7.
//
// The rate run (P3, limited; about 3.5 minutes, mostly waiting on the
// limiter) runs at the same time as the initial 100,000-thread import that
// builds P4's checkpoint, which is not itself a target; -no-overlap runs
// them one after the other, -p3-rate=false skips it (P3 then measures the
// overhead run only). Then the Go benchmarks run (-gobench=false
// skips them), and the table comes last.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// genVersion is part of every cached archive's name: bump it when genmbox
// changes what it writes.
const genVersion = "g1"

const (
	fakeEmail = "bench@example.com"
	tokenEnv  = "THREADLIFT_BENCH_TOKEN"
	tokenVal  = "bench-token-not-a-secret"
)

type config struct {
	bin, tools, goCmd, python, pywalk string
	cache, size, smallSize            string
	seed                              uint64
	p3Threads, p4Threads              int
	c1Messages                        int
	p5Messages, p6Small, p7Messages   int
	only                              map[string]bool
	gobench, keep, noOverlap          bool
	p3Rate                            bool
	jsonOut                           string
	benchPkgs                         string
	heavyBench                        string
	heavyBenchtime, benchtime         string
}

func main() {
	var c config
	var only string
	flag.StringVar(&c.bin, "bin", "bin", "folder holding threadlift and zendesk-fake")
	flag.StringVar(&c.tools, "tools", "", "folder holding genmbox and refwalk (default: this program's folder)")
	flag.StringVar(&c.goCmd, "go", "go", "go command for the Go benchmarks")
	flag.StringVar(&c.python, "python", "python3", "Python interpreter for the baseline (skipped with a notice when missing)")
	flag.StringVar(&c.pywalk, "pywalk", "bench/pywalk.py", "the Python baseline script")
	flag.StringVar(&c.cache, "cache", "", "archive cache folder (default $TMPDIR/threadlift-bench)")
	flag.StringVar(&c.size, "size", "1GB", "size of the big realistic archive (P1, P2)")
	flag.StringVar(&c.smallSize, "small-size", "100MB", "size of the small realistic archive (P2)")
	flag.Uint64Var(&c.seed, "seed", 1, "generator seed")
	flag.IntVar(&c.p3Threads, "p3-threads", 2050, "threads (= requests) of the rate runs (P3)")
	flag.IntVar(&c.p4Threads, "p4-threads", 100000, "done threads in the resume checkpoint (P4)")
	flag.IntVar(&c.c1Messages, "c1-messages", 1_000_000, "messages in the checkpoint that status and failures read (C1)")
	flag.IntVar(&c.p5Messages, "p5-messages", 400000, "messages of the imported realistic archive the backfill appends 1% to (P5); P6's larger size")
	flag.IntVar(&c.p6Small, "p6-messages", 100000, "messages of P6's smaller realistic archive (validate's peak RSS slope)")
	flag.IntVar(&c.p7Messages, "p7-messages", 1_000_000, "messages of the realistic archive every command's peak RSS is measured on (P7); its slope from -p6-messages")
	flag.StringVar(&only, "only", "", "comma-separated subset of all,P1,P2,P3,P4,P5,P6,P7,C1,go (default: all, that is every one but P7)")
	flag.BoolVar(&c.gobench, "gobench", true, "also run the Go benchmarks (go test -bench)")
	flag.StringVar(&c.benchPkgs, "bench-pkgs", "./...", "packages of the Go benchmarks")
	flag.StringVar(&c.benchtime, "benchtime", "300ms", "-benchtime of the light Go benchmarks")
	flag.StringVar(&c.heavyBench, "heavy", "BenchmarkLargeAttachment|BenchmarkRegister100k", "Go benchmarks run once (-benchtime 1x): alternatives of names")
	flag.StringVar(&c.heavyBenchtime, "heavy-benchtime", "1x", "-benchtime of the heavy Go benchmarks")
	flag.BoolVar(&c.keep, "keep", false, "keep the run folder (checkpoints, configs, logs)")
	flag.BoolVar(&c.noOverlap, "no-overlap", false, "run the P3 rate run alone rather than alongside P4's setup import")
	flag.BoolVar(&c.p3Rate, "p3-rate", true, "with P3, also run the rate run (about 3.5 minutes); false measures the overhead run only")
	flag.StringVar(&c.jsonOut, "json", "", "also write every figure as JSON to this file")
	flag.Parse()
	if only != "" {
		c.only = map[string]bool{}
		for _, s := range strings.Split(only, ",") {
			c.only[strings.ToUpper(strings.TrimSpace(s))] = true
		}
	}
	if c.tools == "" {
		exe, err := os.Executable()
		if err != nil {
			fatalf("%v", err)
		}
		c.tools = filepath.Dir(exe)
	}
	if c.cache == "" {
		c.cache = filepath.Join(os.TempDir(), "threadlift-bench")
	}
	if p, err := filepath.Abs(c.pywalk); err == nil {
		c.pywalk = p
	}
	os.Exit(run(c))
}

// optIn are the targets the default set ("all": no -only, or -only all)
// leaves out: P7 at 1,000,000 messages takes about 20 minutes on an idle
// 2-core machine, 17 GB in -cache and 9 GB of RAM in the fake. -only P7,
// or -only all,P7, runs it.
var optIn = map[string]bool{"P7": true}

func (c config) want(part string) bool {
	if c.only[part] {
		return true
	}
	return (c.only == nil || c.only["ALL"]) && !optIn[part]
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "benchtable: "+format+"\n", args...)
	os.Exit(2)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[bench %s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// ---------------------------------------------------------------------------
// results

type row struct {
	Target    string `json:"target"`
	What      string `json:"what"`
	Figure    string `json:"figure"`
	Threshold string `json:"threshold,omitempty"`
	Result    string `json:"result,omitempty"` // PASS | MISS | SKIP | ERROR | ""
	Note      string `json:"note,omitempty"`
}

type results struct {
	mu    sync.Mutex
	rows  []row
	notes []string
	raw   map[string]any
}

func (r *results) add(target, what, figure, threshold, result string) {
	if result == "ERROR" {
		logf("%s %s: %s", target, what, figure)
		figure = oneLine(figure, 90)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rows = append(r.rows, row{Target: target, What: what, Figure: figure, Threshold: threshold, Result: result})
}

func (r *results) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

func (r *results) set(k string, v any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.raw[k] = v
}

// oneLine squeezes an error message into one table cell.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		s = string(r[:n-1]) + "…"
	}
	return s
}

func passMiss(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

// ---------------------------------------------------------------------------

type env struct {
	c       config
	res     *results
	tl      string // threadlift binary
	fake    string
	gen     string
	ref     string
	runDir  string
	archive map[string]archiveInfo
}

type archiveInfo struct {
	path     string
	bytes    int64
	messages int
	threads  int
	meta     string
}

func run(c config) int {
	start := time.Now()
	res := &results{raw: map[string]any{}}
	e := &env{c: c, res: res, archive: map[string]archiveInfo{}}
	var err error
	if e.tl, err = findBin(c.bin, "threadlift"); err != nil {
		fatalf("%v (run make build)", err)
	}
	if e.fake, err = findBin(c.bin, "zendesk-fake"); err != nil {
		fatalf("%v (run make build)", err)
	}
	if e.gen, err = findBin(c.tools, "genmbox"); err != nil {
		fatalf("%v", err)
	}
	if e.ref, err = findBin(c.tools, "refwalk"); err != nil {
		fatalf("%v", err)
	}
	if err := os.MkdirAll(c.cache, 0o755); err != nil {
		fatalf("%v", err)
	}
	e.runDir, err = os.MkdirTemp(c.cache, "run-")
	if err != nil {
		fatalf("%v", err)
	}
	defer func() {
		if c.keep {
			logf("run folder kept: %s", e.runDir)
			return
		}
		os.RemoveAll(e.runDir)
	}()
	logf("cache %s, run folder %s", c.cache, e.runDir)

	goRan, goOK := e.targets()

	wall := time.Since(start)
	printTable(os.Stdout, e, wall, goRan, goOK)
	if c.jsonOut != "" {
		res.raw["rows"] = res.rows
		res.raw["notes"] = res.notes
		res.raw["wall_seconds"] = wall.Seconds()
		b, _ := json.MarshalIndent(res.raw, "", "  ")
		if err := os.WriteFile(c.jsonOut, append(b, '\n'), 0o644); err != nil {
			logf("write %s: %v", c.jsonOut, err)
		}
	}
	for _, r := range res.rows {
		if r.Result == "ERROR" {
			return 1
		}
	}
	if !goOK {
		return 1
	}
	return 0 // a MISS is a finding, not a failure of the run
}

// targets runs the targets asked for, then the Go benchmarks; goRan and
// goOK say whether those ran and passed.
func (e *env) targets() (goRan, goOK bool) {
	c := e.c
	if c.want("P1") || c.want("P2") {
		e.throughputAndMemory()
	}
	if c.want("P3") || c.want("P4") {
		e.rateAndResume()
	}
	if c.want("P5") || c.want("P6") {
		e.backfillAndMemory()
	}
	if c.want("C1") {
		e.checkpointReads()
	}
	if c.want("P7") {
		e.memoryEveryCommand()
	}
	if c.gobench && c.want("GO") {
		return true, e.goBenchmarks()
	}
	return false, true
}

func findBin(dir, name string) (string, error) {
	p, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s not found in %s", name, dir)
	}
	return p, nil
}

// ---------------------------------------------------------------------------
// archives

var kvRe = regexp.MustCompile(`(\w+)=([^\s]+)`)

func parseKV(s string) map[string]string {
	m := map[string]string{}
	for _, x := range kvRe.FindAllStringSubmatch(s, -1) {
		m[x[1]] = x[2]
	}
	return m
}

func atoi(s string) int       { n, _ := strconv.Atoi(s); return n }
func atoi64(s string) int64   { n, _ := strconv.ParseInt(s, 10, 64); return n }
func atof(s string) float64   { f, _ := strconv.ParseFloat(s, 64); return f }
func mib(kb int64) float64    { return float64(kb) / 1024 }
func mb(b int64) string       { return fmt.Sprintf("%.0f MB", float64(b)/1e6) }
func commas(n int) string     { return commas64(int64(n)) }
func commas64(n int64) string { return message.NewPrinter(language.English).Sprint(n) }

// ensureArchive returns a cached archive, generating it when missing.
func (e *env) ensureArchive(name string, args ...string) (archiveInfo, error) {
	if a, ok := e.archive[name]; ok {
		return a, nil
	}
	p := filepath.Join(e.c.cache, name+".mbox")
	metaPath := p + ".meta"
	if meta, err := os.ReadFile(metaPath); err == nil {
		if st, err := os.Stat(p); err == nil {
			kv := parseKV(string(meta))
			if atoi64(kv["bytes"]) == st.Size() {
				a := archiveInfo{path: p, bytes: st.Size(), messages: atoi(kv["messages"]), threads: atoi(kv["threads"]), meta: strings.TrimSpace(string(meta))}
				e.archive[name] = a
				logf("archive %s: cached (%s)", name, mb(a.bytes))
				return a, nil
			}
		}
	}
	os.Remove(metaPath)
	logf("archive %s: generating", name)
	t := time.Now()
	out, err := exec.Command(e.gen, append([]string{"-o", p}, args...)...).Output()
	if err != nil {
		return archiveInfo{}, fmt.Errorf("genmbox %s: %w %s", name, err, stderrOf(err))
	}
	line := strings.TrimSpace(string(out))
	if err := os.WriteFile(metaPath, []byte(line+"\n"), 0o644); err != nil {
		return archiveInfo{}, err
	}
	kv := parseKV(line)
	a := archiveInfo{path: p, bytes: atoi64(kv["bytes"]), messages: atoi(kv["messages"]), threads: atoi(kv["threads"]), meta: line}
	e.archive[name] = a
	logf("archive %s: %s in %.1fs (%s)", name, mb(a.bytes), time.Since(t).Seconds(), line)
	return a, nil
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return strings.TrimSpace(string(ee.Stderr))
	}
	return ""
}

// warm reads a file once so that every reader finds it in the page cache.
func warm(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	io.Copy(io.Discard, f)
}

// ---------------------------------------------------------------------------
// processes

type procResult struct {
	wall   time.Duration
	maxRSS int64         // KiB
	cpu    time.Duration // user + system
	code   int
	stdout string
	stderr string
	err    error // start failure, timeout, or exit status ≠ 0 and ≠ allowed
}

// runProc runs a command to its end and measures its wall time and peak
// RSS (wait4's rusage). Exit codes in ok are not errors.
func runProc(ctx context.Context, dir string, envv []string, name string, args []string, ok ...int) procResult {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), envv...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &limitedBuffer{b: &se, max: 1 << 20}
	t := time.Now()
	err := cmd.Run()
	r := procResult{wall: time.Since(t), stdout: so.String(), stderr: se.String()}
	if cmd.ProcessState != nil {
		r.maxRSS, r.cpu = usage(cmd.ProcessState)
		r.code = cmd.ProcessState.ExitCode()
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ctx.Err() == nil {
			for _, c := range ok {
				if c == r.code {
					err = nil
				}
			}
		}
		if err != nil {
			r.err = fmt.Errorf("%s: %w\n%s", filepath.Base(name), err, tail(r.stderr, 1500))
		}
	}
	return r
}

type limitedBuffer struct {
	b   *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.b.Len(); room > 0 {
		l.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// fake is a running zendesk-fake.
type fake struct {
	cmd     *exec.Cmd
	url     string
	verbose bool
	reqs    chan time.Time // arrival time of each request log line (verbose only)
	done    chan struct{}
}

// startFake starts zendesk-fake on a free loopback port.
func (e *env) startFake(verbose bool, args ...string) (*fake, error) {
	a := []string{"--addr", "127.0.0.1:0", "--print-url", "--email", fakeEmail, "--token-env", tokenEnv}
	if verbose {
		a = append(a, "--verbose")
	}
	cmd := exec.Command(e.fake, append(a, args...)...)
	cmd.Env = append(os.Environ(), tokenEnv+"="+tokenVal)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	f := &fake{cmd: cmd, verbose: verbose, reqs: make(chan time.Time, 1<<16), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			now := time.Now()
			if verbose && bytes.Contains(sc.Bytes(), []byte(`"message":"request"`)) {
				select {
				case f.reqs <- now:
				default:
				}
			}
		}
	}()
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			urlc <- strings.TrimSpace(sc.Text())
		}
		close(urlc)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case u, ok := <-urlc:
		if !ok || !strings.HasPrefix(u, "http://") {
			f.stop()
			return nil, fmt.Errorf("zendesk-fake did not print its URL")
		}
		f.url = u
	case <-time.After(10 * time.Second):
		f.stop()
		return nil, fmt.Errorf("zendesk-fake did not start within 10s")
	}
	return f, nil
}

func (f *fake) stop() {
	if f == nil || f.cmd.Process == nil {
		return
	}
	f.cmd.Process.Signal(syscall.SIGTERM)
	ch := make(chan struct{})
	go func() { f.cmd.Wait(); close(ch) }()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		f.cmd.Process.Kill()
		<-ch
	}
}

// writeConfig writes a threadlift config into dir and returns its path.
func writeConfig(dir, url string, rpm, wpm int, archive, checkpoint string, workers int) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if url == "" {
		url = "http://127.0.0.1:1"
	}
	y := fmt.Sprintf(`# written by bench/cmd/benchtable
zendesk:
  url: %s
  email: %s
  token_env: %s
  requests_per_minute: %d
  write_requests_per_10_minutes: %d
  timeout: 30s
sources:
  - type: mbox
    path: %q
mapping:
  ticket:
    header: X-Zendesk-Ticket-Id
    subject_regex: '\[#(\d+)\]'
    default_ticket_id: 1
  state: closed
pipeline:
  workers: %d
checkpoint:
  path: %q
`, url, fakeEmail, tokenEnv, rpm, wpm, archive, workers, checkpoint)
	p := filepath.Join(dir, "threadlift.yaml")
	return p, os.WriteFile(p, []byte(y), 0o644)
}

var tlFlags = []string{"--no-progress", "--log-format", "json", "--log-level", "warn"}

// ---------------------------------------------------------------------------
// P1 + P2

var msgRe = regexp.MustCompile(`(?m)^messages:\s+(\d+)`)

func (e *env) throughputAndMemory() {
	res := e.res
	big, small, ok := e.realisticArchives()
	if !ok {
		return
	}
	res.set("archive_big", big.meta)
	res.note("big archive: %s", big.meta)

	// P1: the three readers of the same file, one after the other, the file
	// in the page cache.
	var tlBig procResult
	var nBig int
	if e.c.want("P1") || e.c.want("P2") {
		warm(big.path)
		logf("refwalk %s", mb(big.bytes))
		ref := runProc(context.Background(), e.runDir, nil, e.ref, []string{big.path})
		tlBig, nBig = e.validate(big, "big")
		if e.c.want("P1") {
			e.throughput(big, tlBig, ref)
		}
	}

	if !e.c.want("P2") {
		return
	}
	tlSmall, nSmall := e.validate(small, "small")
	if tlSmall.err != nil || tlBig.err != nil {
		res.add("P2", "validate peak RSS", "validate failed", "", "ERROR")
		return
	}
	e.memory(small, tlSmall, nSmall, big, tlBig, nBig)
}

// realisticArchives generates (or finds in the cache) the big archive,
// and the small one when P2 is measured; ok is false after an ERROR row.
func (e *env) realisticArchives() (big, small archiveInfo, ok bool) {
	bigSize, smallSize := e.c.size, e.c.smallSize
	big, err := e.ensureArchive(fmt.Sprintf("realistic-%s-%s-seed%d", genVersion, bigSize, e.c.seed), "-size", bigSize, "-seed", strconv.FormatUint(e.c.seed, 10))
	if err != nil {
		e.res.add("P1", "generate archive", err.Error(), "", "ERROR")
		return big, small, false
	}
	if e.c.want("P2") {
		small, err = e.ensureArchive(fmt.Sprintf("realistic-%s-%s-seed%d", genVersion, smallSize, e.c.seed), "-size", smallSize, "-seed", strconv.FormatUint(e.c.seed, 10))
		if err != nil {
			e.res.add("P2", "generate archive", err.Error(), "", "ERROR")
			return big, small, false
		}
	}
	return big, small, true
}

// validate runs threadlift validate on a, the file in the page cache,
// and returns the process's figures and the messages it counted.
func (e *env) validate(a archiveInfo, tag string) (procResult, int) {
	dir := filepath.Join(e.runDir, "validate-"+tag)
	cfg, err := writeConfig(dir, "", 200, 300, a.path, filepath.Join(dir, "threadlift.db"), 8)
	if err != nil {
		return procResult{err: err}, 0
	}
	warm(a.path)
	logf("threadlift validate %s (%s)", tag, mb(a.bytes))
	r := runProc(context.Background(), dir, nil, e.tl, append([]string{"validate", "-c", cfg}, tlFlags...), 0, 1)
	n := 0
	if m := msgRe.FindStringSubmatch(r.stdout); m != nil {
		n = atoi(m[1])
	}
	if r.err == nil && r.code == 1 {
		e.res.note("validate %s exited 1 (some threads would be rejected): %s", tag, strings.Join(strings.Fields(firstLines(r.stdout, 2)), " "))
	}
	logf("  %.2fs, peak RSS %.1f MiB, %d messages", r.wall.Seconds(), mib(r.maxRSS), n)
	return r, n
}

// throughput adds P1's rows: validate's and the reference walk's MB/s,
// the Python baseline's, and the ratios.
func (e *env) throughput(big archiveInfo, tlBig, ref procResult) {
	res := e.res
	label := fmt.Sprintf("validate, %s realistic mbox", mb(big.bytes))
	if tlBig.err != nil {
		res.add("P1", label, tail(tlBig.err.Error(), 300), "", "ERROR")
	}
	if ref.err != nil {
		res.add("P1", "refwalk", tail(ref.err.Error(), 300), "", "ERROR")
	}
	if tlBig.err != nil || ref.err != nil {
		return
	}
	tlMBs := float64(big.bytes) / 1e6 / tlBig.wall.Seconds()
	kv := parseKV(ref.stdout)
	refMBs := atof(kv["mb_per_s"])
	logf("  refwalk %.1f MB/s (%s)", refMBs, strings.TrimSpace(ref.stdout))
	res.set("p1_threadlift_mb_s", tlMBs)
	res.set("p1_refwalk_mb_s", refMBs)
	res.add("P1", "threadlift validate (wall, process start to exit)", fmt.Sprintf("%.1f MB/s  (%.1fs)", tlMBs, tlBig.wall.Seconds()), "", "")
	res.add("P1", "reference walk go-mbox+go-message (bench/cmd/refwalk)", fmt.Sprintf("%.1f MB/s  (%ss)", refMBs, kv["seconds"]), "", "")
	pyMBs, pyFound := e.python(big)
	if refMBs > 0 {
		r := tlMBs / refMBs
		res.set("p1_ratio_ref", r)
		res.add("P1", "ratio validate / reference walk", fmt.Sprintf("%.2f×", r), "≥ 0.80×", passMiss(r >= 0.8))
	}
	if pyMBs > 0 {
		r := tlMBs / pyMBs
		res.set("p1_ratio_python", r)
		res.add("P1", "ratio validate / Python", fmt.Sprintf("%.2f×", r), "≥ 5×", passMiss(r >= 5))
	} else if !pyFound {
		res.add("P1", "ratio validate / Python", "—", "≥ 5×", "SKIP")
	}
}

// python runs the Python baseline on big and adds its row; found is
// false when there is no Python (a note says so).
func (e *env) python(big archiveInfo) (mbs float64, found bool) {
	py, err := exec.LookPath(e.c.python)
	if err != nil {
		e.res.note("%s not found: the Python column is skipped", e.c.python)
		return 0, false
	}
	logf("python baseline %s", mb(big.bytes))
	pr := runProc(context.Background(), e.runDir, nil, py, []string{e.c.pywalk, big.path})
	if pr.err != nil {
		e.res.add("P1", "Python mailbox+email baseline", tail(pr.err.Error(), 300), "", "ERROR")
		return 0, true
	}
	pkv := parseKV(pr.stdout)
	mbs = atof(pkv["mb_per_s"])
	logf("  python %.1f MB/s", mbs)
	e.res.set("p1_python_mb_s", mbs)
	e.res.add("P1", "Python mailbox+email compat32 (bench/pywalk.py)", fmt.Sprintf("%.1f MB/s  (%ss)", mbs, pkv["seconds"]), "", "")
	return mbs, true
}

// memory adds P2's rows: each archive's peak RSS against its budget, and
// the growth of what is not per message from the small to the big one.
func (e *env) memory(small archiveInfo, tlSmall procResult, nSmall int, big archiveInfo, tlBig procResult, nBig int) {
	res := e.res
	const base = 64 << 20
	budget := func(n int) float64 { return float64(base+200*int64(n)) / (1 << 20) }
	for _, x := range []struct {
		tag string
		a   archiveInfo
		r   procResult
		n   int
	}{{"small", small, tlSmall, nSmall}, {"big", big, tlBig, nBig}} {
		rss := mib(x.r.maxRSS)
		res.set("p2_rss_mib_"+x.tag, rss)
		res.set("p2_messages_"+x.tag, x.n)
		res.add("P2", fmt.Sprintf("peak RSS validate %s (%s msgs)", mb(x.a.bytes), commas(x.n)),
			fmt.Sprintf("%.1f MiB", rss), fmt.Sprintf("≤ %.1f MiB", budget(x.n)), passMiss(rss <= budget(x.n)))
	}
	idx := func(r procResult, n int) float64 { return mib(r.maxRSS) - float64(200*int64(n))/(1<<20) }
	s, b := idx(tlSmall, nSmall), idx(tlBig, nBig)
	if s > 0 {
		r := b / s
		res.set("p2_growth", r)
		res.add("P2", fmt.Sprintf("RSS−200 B/msg: %s / %s (%.1f / %.1f MiB)", mb(big.bytes), mb(small.bytes), b, s),
			fmt.Sprintf("%.2f×", r), "≤ 1.30×", passMiss(r <= 1.3))
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

// ---------------------------------------------------------------------------
// P3 + P4

type summary struct {
	Requests       int     `json:"requests"`
	RateLimited    int     `json:"rate_limited"`
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	Imported       int     `json:"imported"`
	AlreadyDone    int     `json:"already_done"`
	Failed         int     `json:"failed"`
	Rejected       int     `json:"rejected"`
	Retries        int     `json:"retries"`
	ThreadsTotal   int     `json:"threads_total"`
}

// importRun runs threadlift import against a new fake and reads the
// summary. firstReq, with a verbose fake, is the time from the start of
// threadlift to the fake's first request.
type importResult struct {
	url      string // the fake's
	sum      summary
	proc     procResult
	firstReq time.Duration
	err      error
}

func (e *env) importRun(dir string, a archiveInfo, cfgRPM, cfgWPM int, fakeArgs []string, verbose bool, checkpointDir string) importResult {
	f, err := e.startFake(verbose, fakeArgs...)
	if err != nil {
		return importResult{err: err}
	}
	defer f.stop()
	return e.importOn(f, dir, a, cfgRPM, cfgWPM, checkpointDir)
}

// importOn runs threadlift import against the running fake f (see
// importRun).
func (e *env) importOn(f *fake, dir string, a archiveInfo, cfgRPM, cfgWPM int, checkpointDir string, flags ...string) importResult {
	if checkpointDir == "" {
		checkpointDir = dir
	}
	cfg, err := writeConfig(dir, f.url, cfgRPM, cfgWPM, a.path, filepath.Join(checkpointDir, "threadlift.db"), 8)
	if err != nil {
		return importResult{err: err}
	}
	sumPath := filepath.Join(dir, "summary.json")
	os.Remove(sumPath)
	// A bound against a hung run only: P5's first import of 400,000
	// messages takes about 8 minutes on an idle 2-core machine.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Minute)
	defer cancel()
	// drain anything the fake logged before the start
	for len(f.reqs) > 0 {
		<-f.reqs
	}
	t0 := time.Now()
	r := runProc(ctx, dir, []string{tokenEnv + "=" + tokenVal}, e.tl, append(append([]string{"import", "-c", cfg, "--summary", sumPath}, tlFlags...), flags...), 0, 1)
	out := importResult{url: f.url, proc: r}
	if f.verbose {
		select {
		case t := <-f.reqs:
			out.firstReq = t.Sub(t0)
		case <-time.After(2 * time.Second):
			out.firstReq = -1
		}
	}
	if r.err != nil {
		out.err = r.err
		return out
	}
	b, err := os.ReadFile(sumPath)
	if err == nil {
		err = json.Unmarshal(b, &out.sum)
	}
	if err != nil {
		out.err = fmt.Errorf("summary: %w", err)
	}
	if r.code == 1 {
		e.res.note("import in %s exited 1: %s", filepath.Base(dir), strings.Join(strings.Fields(r.stdout), " "))
	}
	return out
}

func (e *env) rateAndResume() {
	p3, p4, ok := e.smallArchives()
	if !ok {
		return
	}

	// P3, limiter on, alongside P4's setup import.
	var wg sync.WaitGroup
	var limited importResult
	if e.c.want("P3") && e.c.p3Rate {
		wg.Add(1)
		go func() {
			defer wg.Done()
			logf("P3 rate run: %d requests at 600/min against a fake with 50ms latency and a 600/min limit (~%.0fs)", p3.threads, float64(p3.threads)/10)
			limited = e.importRun(filepath.Join(e.runDir, "p3-limited"), p3, 600, 0, []string{"--latency", "50ms", "--rate-limit", "600"}, false, "")
			logf("P3 rate run done: %+v", limited.sum)
		}()
		if e.c.noOverlap || !e.c.want("P4") {
			wg.Wait()
		}
	}
	var setup importResult
	p4dir := filepath.Join(e.runDir, "p4")
	var work archiveInfo
	if e.c.want("P4") {
		work, setup = e.resumeSetup(p4, p4dir)
	}
	wg.Wait()

	if e.c.want("P3") {
		e.rate(p3, limited)
	}

	if !e.c.want("P4") || setup.err != nil || work.path == "" {
		if setup.err != nil {
			e.res.add("P4", "setup import", tail(setup.err.Error(), 300), "", "ERROR")
		}
		return
	}
	e.resume(p4, work, setup, p4dir)
}

// smallArchives generates (or finds in the cache) the small archives of
// P3 and P4, those measured; ok is false after an ERROR row.
func (e *env) smallArchives() (p3, p4 archiveInfo, ok bool) {
	seed := strconv.FormatUint(e.c.seed, 10)
	var err error
	if e.c.want("P3") {
		p3, err = e.ensureArchive(fmt.Sprintf("small-%s-%dthreads-seed%d", genVersion, e.c.p3Threads, e.c.seed), "-kind", "small", "-threads", strconv.Itoa(e.c.p3Threads), "-seed", seed, "-first-ticket", "1000")
		if err != nil {
			e.res.add("P3", "generate archive", err.Error(), "", "ERROR")
			return p3, p4, false
		}
	}
	if e.c.want("P4") {
		p4, err = e.ensureArchive(fmt.Sprintf("small-%s-%dthreads-seed%d", genVersion, e.c.p4Threads, e.c.seed), "-kind", "small", "-threads", strconv.Itoa(e.c.p4Threads), "-seed", seed, "-first-ticket", "200000")
		if err != nil {
			e.res.add("P4", "generate archive", err.Error(), "", "ERROR")
			return p3, p4, false
		}
	}
	return p3, p4, true
}

// resumeSetup copies p4's archive into p4dir (one thread is appended to
// the copy later) and imports it with the limiter off: the checkpoint P4
// resumes from. work.path is "" when the copy failed (an ERROR row).
func (e *env) resumeSetup(p4 archiveInfo, p4dir string) (work archiveInfo, setup importResult) {
	work = p4
	work.path = filepath.Join(p4dir, "archive.mbox")
	err := os.MkdirAll(p4dir, 0o755)
	if err == nil {
		err = copyFile(p4.path, work.path)
	}
	if err != nil {
		e.res.add("P4", "copy archive", err.Error(), "", "ERROR")
		return work, setup
	}
	logf("P4 setup: importing %s threads with the limiter off", commas(p4.threads))
	setup = e.importRun(filepath.Join(p4dir, "setup"), work, 0, 0, nil, false, p4dir)
	logf("P4 setup done in %.1fs: %+v", setup.proc.wall.Seconds(), setup.sum)
	return work, setup
}

// rate adds P3's rows: the rate run's (limited) requests per minute and
// 429s, then a run with the limiter off, alone.
func (e *env) rate(p3 archiveInfo, limited importResult) {
	res := e.res
	switch {
	case !e.c.p3Rate:
		res.add("P3", "import at requests_per_minute 600 (-p3-rate=false)", "—", "≥ 0.98×, ≥ 2,000 req", "SKIP")
	case limited.err != nil:
		res.add("P3", "import at 600/min", tail(limited.err.Error(), 300), "", "ERROR")
	default:
		s := limited.sum
		rate := float64(s.Requests) / s.ElapsedSeconds * 60
		ratio := rate / 600
		res.set("p3_limited", s)
		overlap := ""
		if !e.c.noOverlap && e.c.want("P4") {
			overlap = ", alongside P4's setup import"
		}
		res.add("P3", fmt.Sprintf("import at requests_per_minute 600, fake 50ms/600 per min: %s requests in %.1fs%s", commas(s.Requests), s.ElapsedSeconds, overlap),
			fmt.Sprintf("%.1f/min = %.3f×", rate, ratio), "≥ 0.98×, ≥ 2,000 req", passMiss(ratio >= 0.98 && s.Requests >= 2000))
		res.add("P3", "429s received in that run (summary rate_limited)", strconv.Itoa(s.RateLimited), "= 0", passMiss(s.RateLimited == 0))
	}
	// Limiter off, alone.
	logf("P3 limiter off: %d requests, fake latency 0, no fake limit", p3.threads)
	un := e.importRun(filepath.Join(e.runDir, "p3-unlimited"), p3, 0, 0, nil, false, "")
	if un.err != nil {
		res.add("P3", "import, limiter off", tail(un.err.Error(), 300), "", "ERROR")
		return
	}
	s := un.sum
	rps := float64(s.Requests) / s.ElapsedSeconds
	res.set("p3_unlimited", s)
	logf("  %.0f requests/s (%+v)", rps, s)
	res.add("P3", fmt.Sprintf("import, limiter off, fake latency 0: %s requests in %.2fs, client CPU %.2f ms/request", commas(s.Requests), s.ElapsedSeconds, un.proc.cpu.Seconds()*1000/float64(max(1, s.Requests))),
		fmt.Sprintf("%.0f req/s", rps), "≥ 3,000 req/s", passMiss(rps >= 3000))
}

// resume adds P4's rows: the setup import (not a target), then a re-run
// over its checkpoint with one thread appended to the archive, from
// process start to the fake's first request.
func (e *env) resume(p4, work archiveInfo, setup importResult, p4dir string) {
	res := e.res
	s := setup.sum
	res.set("p4_setup", s)
	res.add("P4", fmt.Sprintf("(setup, not a target) first import of %s threads, limiter off", commas(s.ThreadsTotal)),
		fmt.Sprintf("%.0f req/s  (%.1fs)", float64(s.Requests)/s.ElapsedSeconds, s.ElapsedSeconds), "", "")
	if s.Imported != p4.threads {
		res.note("P4 setup imported %d of %d threads (failed %d, rejected %d)", s.Imported, p4.threads, s.Failed, s.Rejected)
	}
	// Append one new thread, later than everything, then re-run.
	if err := appendThread(work.path); err != nil {
		res.add("P4", "append a thread", err.Error(), "", "ERROR")
		return
	}
	warm(work.path)
	logf("P4 re-run over %s done threads + 1 new", commas(s.Imported))
	// The checkpoint belongs to the account it was used with (its URL):
	// the re-run's fake listens where the setup's did.
	rr := e.importRun(filepath.Join(p4dir, "rerun"), work, 0, 0, []string{"--addr", strings.TrimPrefix(setup.url, "http://")}, true, p4dir)
	if rr.err != nil {
		res.add("P4", "re-run", tail(rr.err.Error(), 300), "", "ERROR")
		return
	}
	res.set("p4_rerun", rr.sum)
	res.set("p4_first_request_seconds", rr.firstReq.Seconds())
	logf("  first request after %.3fs; run %.2fs; %+v", rr.firstReq.Seconds(), rr.proc.wall.Seconds(), rr.sum)
	if rr.firstReq < 0 {
		res.add("P4", "re-run: process start to first request", "no request seen", "≤ 2 s", "MISS")
		return
	}
	res.add("P4", fmt.Sprintf("re-run over %s done threads + 1 new: start → first request (run %.2fs, peak RSS %.0f MiB)", commas(rr.sum.AlreadyDone), rr.proc.wall.Seconds(), mib(rr.proc.maxRSS)),
		fmt.Sprintf("%.3f s", rr.firstReq.Seconds()), "≤ 2 s", passMiss(rr.firstReq <= 2*time.Second && rr.sum.Imported == 1))
	if rr.sum.Imported != 1 || rr.sum.AlreadyDone != s.Imported {
		res.note("P4 re-run: imported %d (want 1), already done %d (want %d), requests %d", rr.sum.Imported, rr.sum.AlreadyDone, s.Imported, rr.sum.Requests)
	}
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func appendThread(path string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "From newcomer@example.com Sat Jun  1 09:00:00 2024\n"+
		"From: New Comer <newcomer@example.com>\nTo: support@example.com\n"+
		"Subject: [#999999] a thread added after the first import\n"+
		"Date: Sat, 1 Jun 2024 09:00:00 +0000\nMessage-ID: <bench.newthread.%d@example.com>\n"+
		"MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n"+
		"This thread arrived with the scheduled backfill.\n\n", time.Now().UnixNano())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// ---------------------------------------------------------------------------
// Go benchmarks

var benchLine = regexp.MustCompile(`^(Benchmark\S+)\s+(\d+)\s+(.*)$`)

type goBench struct{ name, n, rest string }

var goBenches []goBench

func (e *env) goBenchmarks() bool {
	ok := true
	runGo := func(args ...string) {
		logf("%s %s", e.c.goCmd, strings.Join(args, " "))
		cmd := exec.Command(e.c.goCmd, args...)
		pr, pw := io.Pipe()
		cmd.Stdout, cmd.Stderr = pw, pw
		if err := cmd.Start(); err != nil {
			logf("go test: %v", err)
			ok = false
			return
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			sc := bufio.NewScanner(pr)
			for sc.Scan() {
				line := sc.Text()
				fmt.Println(line)
				if m := benchLine.FindStringSubmatch(line); m != nil {
					goBenches = append(goBenches, goBench{m[1], m[2], strings.Join(strings.Fields(m[3]), " ")})
				}
			}
		}()
		err := cmd.Wait()
		pw.Close()
		<-done
		if err != nil {
			logf("go test: %v", err)
			ok = false
		}
	}
	heavy := "^(" + e.c.heavyBench + ")$"
	runGo("test", "-run", "^$", "-bench", ".", "-skip", heavy, "-benchmem", "-benchtime", e.c.benchtime, e.c.benchPkgs)
	runGo("test", "-run", "^$", "-bench", heavy, "-benchmem", "-benchtime", e.c.heavyBenchtime, e.c.benchPkgs)
	return ok
}

// ---------------------------------------------------------------------------
// the table

func printTable(w io.Writer, e *env, wall time.Duration, goRan, goOK bool) {
	res := e.res
	host, _ := os.Hostname()
	fmt.Fprintln(w)
	fmt.Fprintf(w, "threadlift performance targets — %s, %s/%s, %d CPUs, %s, host %s\n",
		time.Now().Format("2006-01-02 15:04"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), host)
	widths := [5]int{6, 0, 0, 0, 6}
	hdr := [5]string{"target", "measure", "figure", "threshold", "result"}
	for i, h := range hdr {
		widths[i] = max(widths[i], len([]rune(h)))
	}
	for _, r := range res.rows {
		for i, s := range [5]string{r.Target, r.What, r.Figure, r.Threshold, r.Result} {
			widths[i] = max(widths[i], len([]rune(s)))
		}
	}
	pad := func(s string, n int) string { return s + strings.Repeat(" ", max(0, n-len([]rune(s)))) }
	line := func(cols [5]string) {
		var parts []string
		for i, c := range cols {
			parts = append(parts, pad(c, widths[i]))
		}
		fmt.Fprintln(w, strings.TrimRight(strings.Join(parts, "  "), " "))
	}
	sep := [5]string{}
	for i := range sep {
		sep[i] = strings.Repeat("-", widths[i])
	}
	line(hdr)
	line(sep)
	prev := ""
	for _, r := range res.rows {
		if prev != "" && r.Target != prev {
			line(sep)
		}
		prev = r.Target
		line([5]string{r.Target, r.What, r.Figure, r.Threshold, r.Result})
	}
	line(sep)
	var pass, miss, other int
	for _, r := range res.rows {
		switch r.Result {
		case "PASS":
			pass++
		case "MISS":
			miss++
		case "":
		default:
			other++
		}
	}
	fmt.Fprintf(w, "%d PASS, %d MISS, %d other; wall time %s\n", pass, miss, other, wall.Round(time.Second))
	if goRan {
		status := "ok"
		if !goOK {
			status = "FAILED (see the output above)"
		}
		fmt.Fprintf(w, "Go benchmarks (output above): %d results, %s\n", len(goBenches), status)
	}
	for _, n := range res.notes {
		fmt.Fprintln(w, "note: "+n)
	}
}
