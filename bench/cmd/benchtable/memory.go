package main

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// P7: peak RSS of every command at a million messages (issue 15).
//
//	P7 memory  a realistic archive of -p7-messages messages (default
//	           1,000,000; genmbox -messages -append-o, cached as P5's)
//	           through every command, against one fake: validate; first
//	           import, limiter off; re-run with nothing new; 1% appended
//	           and imported (the backfill); verify, read only (no
//	           --adopt), reading back what the fake holds; status and
//	           failures (the median wall time of three runs, the highest
//	           peak RSS). Each command's wall time and peak RSS, against
//	           the 256 MiB budget. The same cycle runs first at
//	           -p6-messages (no rows of its own): each command's slope of
//	           peak RSS per message between the two sizes, and its
//	           projection to 5 million messages ≤ 256 MiB.
//
// The cycle is P5's (startCycle, importTwice, backfillOn in backfill.go);
// at 1,000,000 messages the archive is about 8 GB, and the run copies it
// (the backfill appends to the copy), so P7 needs about 17 GB in -cache.

// p7Commands are P7's commands in the order they run (and their rows).
var p7Commands = []string{"validate", "first import", "re-run", "backfill", "verify", "status", "failures"}

const projectTo = 5_000_000

// commandRuns is each command's run at one archive size, by name.
type commandRuns struct {
	messages int
	runs     map[string]procResult
}

func (e *env) memoryEveryCommand() {
	var small commandRuns
	if n := e.c.p6Small; n > 0 && n < e.c.p7Messages {
		var ok bool
		if small, ok = e.everyCommand(n, false); !ok {
			return
		}
	}
	big, ok := e.everyCommand(e.c.p7Messages, true)
	if !ok {
		return
	}
	e.commandSlopes(small, big)
}

// everyCommand runs P7's commands on a realistic archive of n messages,
// with a row each when rows is set; false after an ERROR row.
func (e *env) everyCommand(n int, rows bool) (commandRuns, bool) {
	out := commandRuns{messages: n, runs: map[string]procResult{}}
	base, app, err := e.backfillArchive(n)
	if err != nil {
		e.res.add("P7", "generate archive", err.Error(), "", "ERROR")
		return out, false
	}
	v, nv := e.validate(base, fmt.Sprintf("p7-%dmsgs", n))
	if v.err != nil {
		e.res.add("P7", "validate", tail(v.err.Error(), 300), "", "ERROR")
		return out, false
	}
	out.runs["validate"] = v
	if rows {
		e.res.note("P7 archive: %s", base.meta)
		e.rssRow("P7", fmt.Sprintf("validate, %s messages (%s), %.1fs: peak RSS", commas(nv), mb(base.bytes), v.wall.Seconds()), v)
	}
	c := e.startCycle("P7", filepath.Join(e.runDir, fmt.Sprintf("p7-%dmsgs", n)), base, rows)
	if c == nil {
		return out, false
	}
	defer e.endCycle(c)
	if !e.importTwice(c) {
		return out, false
	}
	out.runs["first import"], out.runs["re-run"] = c.first.proc, c.again.proc
	bf := e.backfillOn(c, app)
	if bf.err != nil || !e.importRow(c, fmt.Sprintf("backfill of %s appended messages (%s)", commas(app.messages), human(app.bytes)), bf) {
		return out, false
	}
	out.runs["backfill"] = bf.proc
	return out, e.readBack(c, out)
}

var verifyLineRe = regexp.MustCompile(`(?m)^(threads|messages):\s+(\d+) planned: (\d+) exactly once`)

// readBack runs verify (read only) against the cycle's fake, then status
// and failures, on the cycle's checkpoint; false after an ERROR row.
func (e *env) readBack(c *cycle, out commandRuns) bool {
	dir := filepath.Join(c.dir, "read")
	cfg, err := writeConfig(dir, c.f.url, 0, 0, c.work.path, c.checkpoint(), 8)
	if err != nil {
		e.res.add("P7", "config", err.Error(), "", "ERROR")
		return false
	}
	warm(c.work.path)
	logf("P7 verify, read only: %s messages", commas(out.messages))
	// A bound against a hung run only, as for the imports.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Minute)
	defer cancel()
	v := runProc(ctx, dir, []string{tokenEnv + "=" + tokenVal}, e.tl, append([]string{"verify", "-c", cfg}, tlFlags...), 0, 1)
	logf("  %.1fs, peak RSS %.1f MiB, exit %d", v.wall.Seconds(), mib(v.maxRSS), v.code)
	if v.err != nil {
		e.res.add("P7", "verify", tail(v.err.Error(), 300), "", "ERROR")
		return false
	}
	out.runs["verify"] = v
	if v.code == 1 {
		e.res.note("P7 verify, %s messages, exited 1 (something missing or duplicated): %s", commas(out.messages), oneLine(v.stdout, 400))
	}
	if c.rows {
		e.rssRow("P7", fmt.Sprintf("verify, read only (%s), %.1fs: peak RSS", verified(v.stdout), v.wall.Seconds()), v)
	}
	for _, cmd := range []string{"status", "failures"} {
		r := e.medianRun(dir, cfg, cmd, 3)
		if r.err != nil {
			e.res.add("P7", cmd, tail(r.err.Error(), 300), "", "ERROR")
			return false
		}
		out.runs[cmd] = r
		if c.rows {
			e.rssRow("P7", fmt.Sprintf("%s, median of 3 runs %.2fs: peak RSS", cmd, r.wall.Seconds()), r)
		}
	}
	return true
}

// verified sums up verify's console report: how many of the planned
// threads and messages it found exactly once.
func verified(stdout string) string {
	s := ""
	for _, m := range verifyLineRe.FindAllStringSubmatch(stdout, -1) {
		if s != "" {
			s += ", "
		}
		s += fmt.Sprintf("%s of %s %s", commas(atoi(m[3])), commas(atoi(m[2])), m[1])
	}
	if s == "" {
		return "no summary"
	}
	return s + " exactly once"
}

// commandSlopes adds the rows of each command's slope of peak RSS per
// message between the two sizes and its projection (none when small has
// no runs), and the figures of both sizes as JSON.
func (e *env) commandSlopes(small, big commandRuns) {
	rss := map[string]map[string]float64{}
	wall := map[string]map[string]float64{}
	slopes := map[string]float64{}
	projected := map[string]float64{}
	for _, name := range p7Commands {
		rss[name], wall[name] = map[string]float64{}, map[string]float64{}
		for _, x := range []commandRuns{small, big} {
			if r, ok := x.runs[name]; ok {
				rss[name][strconv.Itoa(x.messages)] = mib(r.maxRSS)
				wall[name][strconv.Itoa(x.messages)] = r.wall.Seconds()
			}
		}
		s, okS := small.runs[name]
		b, okB := big.runs[name]
		if !okS || !okB {
			continue
		}
		rs, rb := mib(s.maxRSS), mib(b.maxRSS)
		slope := (rb - rs) * (1 << 20) / float64(big.messages-small.messages) // bytes per message
		// A negative slope is noise around a flat line: the projection is
		// then what the larger size took, never less.
		p := max(rb, rb+slope*float64(projectTo-big.messages)/(1<<20))
		slopes[name], projected[name] = slope, p
		e.res.add("P7", fmt.Sprintf("%s: peak RSS %.1f MiB at %s messages, %.1f MiB at %s: %+.0f B/msg; projected to %s messages",
			name, rs, commas(small.messages), rb, commas(big.messages), slope, commas(projectTo)),
			fmt.Sprintf("%.0f MiB", p), fmt.Sprintf("≤ %d MiB", rssBudgetMiB), passMiss(p <= rssBudgetMiB))
	}
	if small.runs == nil {
		e.res.add("P7", "slopes per message and projections", fmt.Sprintf("-p6-messages %d is not below -p7-messages %d", e.c.p6Small, e.c.p7Messages), "", "SKIP")
	}
	e.res.set("p7_rss_mib", rss)
	e.res.set("p7_seconds", wall)
	e.res.set("p7_slope_bytes_per_message", slopes)
	e.res.set(fmt.Sprintf("p7_projected_mib_%d", projectTo), projected)
}
