package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// P5 backfill and P6 memory (issue 15).
//
//	P5 backfill  a realistic archive of -p5-messages messages imported
//	             with the limiter off, then 1% more appended (genmbox
//	             -append-o: the threads open at the end go on, some old
//	             threads get a reply, new threads start) and imported
//	             again: process start to the fake's first request ≤ 2 s,
//	             and the backfill's wall time ≤ 2× the ideal, that is
//	             validate of the appended bytes alone (parse and thread
//	             only what is new) plus the backfill's requests at the
//	             first import's time per request. Peak RSS of validate,
//	             first import, re-run with nothing new, and backfill,
//	             each against the 256 MiB budget.
//	P6 memory    peak RSS of validate at -p6-messages and -p5-messages
//	             messages, the slope per message, and the projection to
//	             1 and 5 million messages against 256 MiB.
//
// One fake serves the three imports: the backfill answers threads whose
// side conversations the first import created, and the checkpoint belongs
// to the fake's URL. P7 (memory.go) runs the same steps (a cycle) at
// -p7-messages and goes on with verify, status and failures.

const rssBudgetMiB = 256

// splitVersion is part of the name of every cached archive genmbox
// -messages -append-o wrote: bump it when what it writes changes.
const splitVersion = "s2"

func (e *env) backfillAndMemory() {
	base, app, err := e.backfillArchive(e.c.p5Messages)
	if err != nil {
		e.res.add(e.p5or6(), "generate archive", err.Error(), "", "ERROR")
		return
	}
	e.res.note("P5 archive: %s", base.meta)
	vBase, nBase := e.validate(base, fmt.Sprintf("%dmsgs", e.c.p5Messages))
	if vBase.err != nil {
		e.res.add(e.p5or6(), "validate", tail(vBase.err.Error(), 300), "", "ERROR")
		return
	}
	if e.c.want("P6") {
		e.memorySlope(vBase, nBase)
	}
	if e.c.want("P5") {
		e.backfill(base, app, vBase, nBase)
	}
}

func (e *env) p5or6() string {
	if e.c.want("P5") {
		return "P5"
	}
	return "P6"
}

// backfillArchive generates (or finds in the cache) a realistic archive
// of n messages and the 1% that arrives after it.
func (e *env) backfillArchive(n int) (base, app archiveInfo, err error) {
	name := fmt.Sprintf("split-%s-%dmsgs-seed%d", splitVersion, n, e.c.seed)
	appPath := filepath.Join(e.c.cache, name+".append.mbox")
	if _, err := os.Stat(appPath); err != nil {
		os.Remove(filepath.Join(e.c.cache, name+".mbox.meta")) // generate both again
	}
	base, err = e.ensureArchive(name, "-messages", strconv.Itoa(n), "-append-o", appPath,
		"-append-messages", strconv.Itoa(max(1, n/100)), "-seed", strconv.FormatUint(e.c.seed, 10))
	if err != nil {
		return base, app, err
	}
	kv := parseKV(base.meta)
	app = archiveInfo{path: appPath, bytes: atoi64(kv["append_bytes"]), messages: atoi(kv["append_messages"]), meta: base.meta}
	if st, err := os.Stat(appPath); err != nil || st.Size() != app.bytes {
		os.Remove(filepath.Join(e.c.cache, name+".mbox.meta"))
		return base, app, fmt.Errorf("%s does not match its meta file; run again to generate it", appPath)
	}
	return base, app, nil
}

// memorySlope adds P6's rows: validate's peak RSS at the smaller size,
// the larger one's (measured by the caller), the slope between them and
// the projections.
func (e *env) memorySlope(vBig procResult, nBig int) {
	small, _, err := e.backfillArchive(e.c.p6Small)
	if err != nil {
		e.res.add("P6", "generate archive", err.Error(), "", "ERROR")
		return
	}
	vSmall, nSmall := e.validate(small, fmt.Sprintf("%dmsgs", e.c.p6Small))
	if vSmall.err != nil {
		e.res.add("P6", "validate", tail(vSmall.err.Error(), 300), "", "ERROR")
		return
	}
	rs, rb := mib(vSmall.maxRSS), mib(vBig.maxRSS)
	e.res.add("P6", fmt.Sprintf("validate peak RSS, %s messages (%.1fs)", commas(nSmall), vSmall.wall.Seconds()), fmt.Sprintf("%.1f MiB", rs), "", "")
	e.res.add("P6", fmt.Sprintf("validate peak RSS, %s messages (%.1fs)", commas(nBig), vBig.wall.Seconds()), fmt.Sprintf("%.1f MiB", rb), "", "")
	if nBig <= nSmall {
		e.res.add("P6", "slope", "the two sizes are not different", "", "ERROR")
		return
	}
	slope := (rb - rs) * (1 << 20) / float64(nBig-nSmall) // bytes per message
	e.res.set("p6_slope_bytes_per_message", slope)
	e.res.set("p6_rss_mib", map[string]float64{strconv.Itoa(nSmall): rs, strconv.Itoa(nBig): rb})
	e.res.add("P6", "slope of validate's peak RSS per message", fmt.Sprintf("%.0f B/msg", slope), "", "")
	for _, n := range []int{1_000_000, 5_000_000} {
		p := rb + slope*float64(n-nBig)/(1<<20)
		e.res.set(fmt.Sprintf("p6_projected_mib_%d", n), p)
		e.res.add("P6", fmt.Sprintf("validate peak RSS projected to %s messages", commas(n)), fmt.Sprintf("%.0f MiB", p),
			fmt.Sprintf("≤ %d MiB", rssBudgetMiB), passMiss(p <= rssBudgetMiB))
	}
}

// backfill adds P5's rows (see the top of this file).
func (e *env) backfill(base, app archiveInfo, vBase procResult, nBase int) {
	e.rssRow("P5", fmt.Sprintf("validate, %s messages (%s): peak RSS (%.1fs)", commas(nBase), mb(base.bytes), vBase.wall.Seconds()), vBase)
	c := e.startCycle("P5", filepath.Join(e.runDir, "p5"), base, true)
	if c == nil {
		return
	}
	defer e.endCycle(c)
	if !e.importTwice(c) {
		return
	}
	e.appendAndBackfill(c, app)
}

// cycle is what P5 and P7 share: a copy of a realistic archive imported
// with the limiter off against one fake, imported again with nothing new,
// then 1% appended and imported again (the backfill). The fake keeps
// running between the imports: the backfill answers threads whose side
// conversations the first import created, the checkpoint (in dir) belongs
// to the fake's URL, and verify reads back what the fake holds.
type cycle struct {
	target       string
	dir          string
	work         archiveInfo // the copy the backfill appends to
	f            *fake       // endCycle stops it
	rows         bool        // add a row per import (else only ERROR rows)
	first, again importResult
}

// startCycle copies base into dir and starts a verbose fake; nil after
// an ERROR row.
func (e *env) startCycle(target, dir string, base archiveInfo, rows bool) *cycle {
	c := &cycle{target: target, dir: dir, work: base, rows: rows}
	c.work.path = filepath.Join(dir, "archive.mbox")
	err := os.MkdirAll(dir, 0o755)
	if err == nil {
		err = copyFile(base.path, c.work.path)
	}
	if err != nil {
		e.res.add(target, "copy archive", err.Error(), "", "ERROR")
		return nil
	}
	if c.f, err = e.startFake(true); err != nil {
		e.res.add(target, "start zendesk-fake", err.Error(), "", "ERROR")
		return nil
	}
	return c
}

// endCycle stops the fake and logs its peak RSS (what it holds grows with
// the archive: not a target, but the machine must have it), and removes
// the archive's copy unless -keep: the next target's needs the room.
func (e *env) endCycle(c *cycle) {
	c.f.stop()
	if ps := c.f.cmd.ProcessState; ps != nil {
		rss, _ := usage(ps)
		logf("%s: zendesk-fake peak RSS %.0f MiB", c.target, mib(rss))
	}
	if !e.c.keep {
		os.Remove(c.work.path)
	}
}

// checkpoint is the cycle's checkpoint file.
func (c *cycle) checkpoint() string { return filepath.Join(c.dir, "threadlift.db") }

// importTwice runs the first import and the re-run with nothing new;
// false after an ERROR row.
func (e *env) importTwice(c *cycle) bool {
	warm(c.work.path)
	logf("%s first import: %s messages (%s), limiter off", c.target, commas(c.work.messages), mb(c.work.bytes))
	c.first = e.importOn(c.f, filepath.Join(c.dir, "first"), c.work, 0, 0, c.dir)
	logf("  %.1fs, peak RSS %.1f MiB: %+v", c.first.proc.wall.Seconds(), mib(c.first.proc.maxRSS), c.first.sum)
	if !e.importRow(c, "first import, limiter off", c.first) {
		return false
	}
	logf("%s re-run, nothing new", c.target)
	c.again = e.importOn(c.f, filepath.Join(c.dir, "rerun"), c.work, 0, 0, c.dir, "--log-level", "info")
	logf("  %.1fs, peak RSS %.1f MiB: %+v", c.again.proc.wall.Seconds(), mib(c.again.proc.maxRSS), c.again.sum)
	return e.importRow(c, fmt.Sprintf("re-run, nothing new (%d requests%s)", c.again.sum.Requests, howRead(c.again.proc.stderr)), c.again)
}

// backfillOn appends app to the cycle's copy and imports it again; the
// result's err is set after an ERROR row.
func (e *env) backfillOn(c *cycle, app archiveInfo) importResult {
	if err := appendFile(c.work.path, app.path); err != nil {
		e.res.add(c.target, "append", err.Error(), "", "ERROR")
		return importResult{err: err}
	}
	warm(c.work.path)
	logf("%s backfill: %s messages appended (%s)", c.target, commas(app.messages), mb(app.bytes))
	bf := e.importOn(c.f, filepath.Join(c.dir, "backfill"), c.work, 0, 0, c.dir, "--log-level", "info")
	logf("  first request after %.3fs; %.1fs, peak RSS %.1f MiB: %+v", bf.firstReq.Seconds(), bf.proc.wall.Seconds(), mib(bf.proc.maxRSS), bf.sum)
	if bf.err != nil {
		e.res.add(c.target, "backfill", tail(bf.err.Error(), 300), "", "ERROR")
	}
	return bf
}

// appendAndBackfill measures the ideal (validate of the appended bytes
// alone, plus the backfill's requests at the first import's time per
// request) and the backfill itself.
func (e *env) appendAndBackfill(c *cycle, app archiveInfo) {
	vApp, nApp := e.validate(app, "p5-appended")
	if vApp.err != nil {
		e.res.add("P5", "validate the appended part", tail(vApp.err.Error(), 300), "", "ERROR")
		return
	}
	bf := e.backfillOn(c, app)
	if bf.err != nil {
		return
	}
	s := bf.sum
	e.res.set("p5_first", c.first.sum)
	e.res.set("p5_backfill", s)
	if bf.firstReq < 0 {
		e.res.add("P5", "backfill: start → first new request", "no request seen", "≤ 2 s", "MISS")
	} else {
		e.res.set("p5_first_request_seconds", bf.firstReq.Seconds())
		e.res.add("P5", fmt.Sprintf("backfill of %s appended messages (%s; %s threads imported, %d requests%s): start → first new request",
			commas(nApp), human(app.bytes), commas(s.Imported), s.Requests, howRead(bf.proc.stderr)),
			fmt.Sprintf("%.3f s", bf.firstReq.Seconds()), "≤ 2 s", passMiss(bf.firstReq <= 2*time.Second))
	}
	perReq := c.first.sum.ElapsedSeconds / float64(max(1, c.first.sum.Requests))
	ideal := vApp.wall.Seconds() + float64(s.Requests)*perReq
	ratio := bf.proc.wall.Seconds() / ideal
	e.res.set("p5_ideal_seconds", ideal)
	e.res.add("P5", fmt.Sprintf("backfill wall %.2fs / ideal %.2fs (validate of the appended bytes %.2fs + %d requests × %.2f ms)",
		bf.proc.wall.Seconds(), ideal, vApp.wall.Seconds(), s.Requests, perReq*1000),
		fmt.Sprintf("%.2f×", ratio), "≤ 2×", passMiss(ratio <= 2))
	e.rssRow("P5", "backfill: peak RSS", bf.proc)
	if s.Failed > 0 || s.Rejected > 0 {
		e.res.note("P5 backfill: failed %d, rejected %d", s.Failed, s.Rejected)
	}
}

// importRow adds an import's wall time and peak RSS (against the budget)
// when the cycle adds rows; false after an ERROR row.
func (e *env) importRow(c *cycle, what string, r importResult) bool {
	if r.err != nil {
		e.res.add(c.target, what, tail(r.err.Error(), 300), "", "ERROR")
		return false
	}
	s := r.sum
	if c.rows {
		e.rssRow(c.target, fmt.Sprintf("%s: %s threads, %s requests in %.1fs; peak RSS", what, commas(s.ThreadsTotal), commas(s.Requests), r.proc.wall.Seconds()), r.proc)
	}
	if s.Failed > 0 || s.Rejected > 0 {
		e.res.note("%s %s, %s messages: failed %d, rejected %d", c.target, what, commas(c.work.messages), s.Failed, s.Rejected)
	}
	return true
}

func (e *env) rssRow(target, what string, r procResult) {
	m := mib(r.maxRSS)
	e.res.add(target, what, fmt.Sprintf("%.1f MiB", m), fmt.Sprintf("≤ %d MiB", rssBudgetMiB), passMiss(m <= rssBudgetMiB))
}

var (
	bytesReadRe = regexp.MustCompile(`"bytes_read":(\d+)`)
	reasonRe    = regexp.MustCompile(`"reason":"([^"]*)"`)
)

// howRead says, from an import's info log, whether it read only what
// was appended (and how many bytes) or everything (and why).
func howRead(stderr string) string {
	for _, line := range strings.Split(stderr, "\n") {
		switch {
		case strings.Contains(line, "read only what was appended"):
			if m := bytesReadRe.FindStringSubmatch(line); m != nil {
				return ", read " + human(atoi64(m[1]))
			}
			return ", read only the appended bytes"
		case strings.Contains(line, "reading every source in full"):
			why := ""
			if m := reasonRe.FindStringSubmatch(line); m != nil {
				why = ": " + oneLine(m[1], 60)
			}
			return ", read in full" + why
		}
	}
	return ""
}

// human is a byte count in kB, MB or GB (powers of 1000), two or three
// significant digits.
func human(b int64) string {
	f, unit := float64(b)/1e3, "kB"
	if f >= 1000 {
		f, unit = f/1e3, "MB"
	}
	if f >= 1000 {
		f, unit = f/1e3, "GB"
	}
	if f < 10 {
		return fmt.Sprintf("%.1f %s", f, unit)
	}
	return fmt.Sprintf("%.0f %s", f, unit)
}

func appendFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
