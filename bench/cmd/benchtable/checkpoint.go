package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// C1: the commands that read a big checkpoint, and what a request writes
// (issue 15).
//
//	C1 status, failures  wall time and peak RSS of `threadlift status` and
//	                     `threadlift failures` on a checkpoint of
//	                     -c1-messages messages (default 1,000,000): each
//	                     ≤ 1 s and ≤ 64 MiB; the median of three runs
//	                     (the file in the page cache), the highest RSS.
//	C1 writes            bytes written per request by the checkpoint
//	                     (BenchmarkNewThreadWrites, 8 writers, the answer
//	                     carried by the next request, as an import does):
//	                     a figure, no threshold.
//
// The checkpoint is written by gencheckpoint through the checkpoint
// package's API (an import of a million messages against the fake takes
// many minutes): a finished import, 1% of threads failed, 0.5% of messages
// rejected. It is cached in -cache like the archives (about 470 MB).

// cpVersion is part of the cached checkpoint's name: bump it when
// gencheckpoint changes what it writes.
const cpVersion = "c1"

const (
	c1MaxWall = time.Second
	c1MaxRSS  = 64 << 10 // KiB
)

func (e *env) checkpointReads() {
	res := e.res
	cp, err := e.ensureCheckpoint(e.c.c1Messages)
	if err != nil {
		res.add("C1", "generate checkpoint", err.Error(), "", "ERROR")
		return
	}
	dir := filepath.Join(e.runDir, "c1")
	empty := filepath.Join(dir, "empty.mbox")
	cfg, err := writeConfig(dir, "", 0, 0, empty, cp, 1)
	if err == nil {
		err = os.WriteFile(empty, nil, 0o644)
	}
	if err != nil {
		res.add("C1", "config", err.Error(), "", "ERROR")
		return
	}
	warm(cp)
	n := commas(e.c.c1Messages)
	for _, cmd := range []string{"status", "failures"} {
		r := e.medianRun(dir, cfg, cmd, 3)
		if r.err != nil {
			res.add("C1", cmd, r.err.Error(), "", "ERROR")
			return
		}
		wall, rss := r.wall, r.maxRSS
		res.set("c1_"+cmd+"_seconds", wall.Seconds())
		res.set("c1_"+cmd+"_rss_mib", mib(rss))
		res.add("C1", fmt.Sprintf("%s wall time, %s messages", cmd, n), fmt.Sprintf("%.2f s", wall.Seconds()), "≤ 1 s", passMiss(wall <= c1MaxWall))
		res.add("C1", fmt.Sprintf("%s peak RSS, %s messages", cmd, n), fmt.Sprintf("%.1f MiB", mib(rss)), "≤ 64 MiB", passMiss(rss <= c1MaxRSS))
	}
	e.requestWrites()
}

// medianRun runs `threadlift cmd -c cfg` (a command that reads the
// checkpoint: status, failures) runs times, the checkpoint in the page
// cache, and returns the median wall time and the highest peak RSS.
func (e *env) medianRun(dir, cfg, cmd string, runs int) procResult {
	walls := make([]time.Duration, 0, runs)
	var rss int64
	for range runs {
		r := runProc(context.Background(), dir, []string{tokenEnv + "=" + tokenVal}, e.tl, append([]string{cmd, "-c", cfg}, tlFlags...))
		if r.err != nil {
			return r
		}
		walls = append(walls, r.wall)
		rss = max(rss, r.maxRSS)
	}
	slices.Sort(walls)
	out := procResult{wall: walls[len(walls)/2], maxRSS: rss}
	logf("threadlift %s: %.2fs (runs %v), peak RSS %.1f MiB", cmd, out.wall.Seconds(), walls, mib(rss))
	return out
}

// ensureCheckpoint returns the cached checkpoint of n messages, writing
// it with gencheckpoint when missing.
func (e *env) ensureCheckpoint(n int) (string, error) {
	p := filepath.Join(e.c.cache, fmt.Sprintf("checkpoint-%s-%dmsgs-seed%d.db", cpVersion, n, e.c.seed))
	if _, err := os.Stat(p); err == nil {
		logf("checkpoint of %s messages: cached", commas(n))
		return p, nil
	}
	gen, err := findBin(e.c.tools, "gencheckpoint")
	if err != nil {
		return "", err
	}
	logf("checkpoint of %s messages: generating (a few minutes)", commas(n))
	t := time.Now()
	if _, err := exec.Command(gen, "-o", p, "-messages", strconv.Itoa(n), "-seed", strconv.FormatUint(e.c.seed, 10)).Output(); err != nil {
		return "", fmt.Errorf("gencheckpoint: %w %s", err, stderrOf(err))
	}
	logf("checkpoint of %s messages: %.0fs", commas(n), time.Since(t).Seconds())
	return p, nil
}

var writesRe = regexp.MustCompile(`(?m)^BenchmarkNewThreadWrites/(\S+?)(?:-\d+)?\s+\d+\s.*?([\d.]+) dirty-B/op\s+([\d.]+) write-B/op`)

// requestWrites runs BenchmarkNewThreadWrites with 8 writers and the
// answer carried (as an import writes), into a new checkpoint and into
// one of 100k threads, and reports what the checkpoint writes per
// request.
func (e *env) requestWrites() {
	args := []string{"test", "-run", "^$", "-bench", "^BenchmarkNewThreadWrites$/^writers=8$/^answer=carried$", "-benchtime", "3000x", "./checkpoint/"}
	logf("%s %s", e.c.goCmd, strings.Join(args, " "))
	out, err := exec.Command(e.c.goCmd, args...).CombinedOutput()
	if err != nil {
		e.res.add("C1", "writes per request", fmt.Sprintf("go test: %v: %s", err, tail(string(out), 500)), "", "ERROR")
		return
	}
	ms := writesRe.FindAllSubmatch(out, -1)
	if ms == nil {
		e.res.add("C1", "writes per request", "no write-B/op in the benchmark's output (not Linux?)", "", "SKIP")
		return
	}
	kb := func(b []byte) string { return fmt.Sprintf("%.1f KB", atof(string(b))/1000) }
	for _, m := range ms {
		into := "a new checkpoint"
		if strings.Contains(string(m[1]), "known=") {
			into = "a checkpoint of " + strings.TrimPrefix(string(m[1])[strings.Index(string(m[1]), "known="):], "known=") + " threads"
		}
		e.res.set("c1_writes_"+string(m[1]), map[string]float64{"write_bytes": atof(string(m[3])), "dirty_bytes": atof(string(m[2]))})
		e.res.add("C1", "checkpoint writes per request into "+into+" (BenchmarkNewThreadWrites, 8 writers)",
			kb(m[3])+" written, "+kb(m[2])+" of page cache dirtied", "", "")
	}
}
