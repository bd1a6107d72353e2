package k8s_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v4"

	"github.com/threadlift/threadlift/configs"
	"github.com/threadlift/threadlift/pipeline"
)

// dockerfile is what the tests need of ../../Dockerfile: its stages and the
// instructions of each.
type dockerfile struct {
	stages []stage
}

type stage struct {
	from, name string
	// instructions, continuation lines joined: {"RUN", "..."}.
	ins [][2]string
}

func (s stage) all(instruction string) []string {
	var out []string
	for _, i := range s.ins {
		if i[0] == instruction {
			out = append(out, i[1])
		}
	}
	return out
}

func parseDockerfile(t *testing.T, path string) dockerfile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d dockerfile
	var line string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "#") || (l == "" && line == "") {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			line += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		line += l
		ins, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
		line = ""
		ins = strings.ToUpper(ins)
		if ins == "" {
			continue
		}
		if ins == "FROM" {
			f := strings.Fields(rest)
			st := stage{}
			for i := 0; i < len(f); i++ {
				switch {
				case strings.HasPrefix(f[i], "--"):
				case strings.EqualFold(f[i], "AS") && i+1 < len(f):
					st.name = f[i+1]
					i++
				case st.from == "":
					st.from = f[i]
				}
			}
			d.stages = append(d.stages, st)
			continue
		}
		if len(d.stages) == 0 {
			if ins != "ARG" {
				t.Errorf("Dockerfile: %s before the first FROM", ins)
			}
			continue
		}
		last := &d.stages[len(d.stages)-1]
		last.ins = append(last.ins, [2]string{ins, strings.TrimSpace(rest)})
	}
	return d
}

// image is the Dockerfile's last stage: what runs.
func (d dockerfile) image(t *testing.T) stage {
	t.Helper()
	if len(d.stages) < 2 {
		t.Fatalf("Dockerfile: %d stages, want a build stage and the image", len(d.stages))
	}
	return d.stages[len(d.stages)-1]
}

// TestDockerfile: a multi-stage build of the static binary with the one
// build script CI and make release use, on a distroless static (or
// scratch) base, as a numeric non-root user, with the binary as the
// entrypoint and on PATH (the examples' command is "threadlift").
func TestDockerfile(t *testing.T) {
	d := parseDockerfile(t, filepath.Join("..", "..", "Dockerfile"))
	build, img := d.stages[0], d.image(t)
	if !strings.HasPrefix(build.from, "golang:") || build.name == "" {
		t.Errorf("first stage FROM %s AS %q, want golang:... AS a name", build.from, build.name)
	}
	if !strings.HasPrefix(img.from, "gcr.io/distroless/static") && img.from != "scratch" {
		t.Errorf("image FROM %s, want distroless/static or scratch", img.from)
	}
	runs := strings.Join(build.all("RUN"), "\n")
	if !strings.Contains(runs, "scripts/build.sh") || !strings.Contains(runs, "VERSION=") || !strings.Contains(runs, "COMMIT=") {
		t.Errorf("the build stage does not build with scripts/build.sh, VERSION and COMMIT:\n%s", runs)
	}
	args := strings.Join(build.all("ARG"), " ")
	for _, a := range []string{"VERSION", "COMMIT"} {
		if !strings.Contains(args, a) {
			t.Errorf("no ARG %s in the build stage", a)
		}
	}
	script, err := os.ReadFile(filepath.Join("..", "..", "scripts", "build.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version=${VERSION}", "-X main.commit=${COMMIT}", "./cmd/threadlift"} {
		if !bytes.Contains(script, []byte(want)) {
			t.Errorf("scripts/build.sh lacks %q", want)
		}
	}
	var bin string
	for _, c := range img.all("COPY") {
		if f := strings.Fields(c); len(f) == 3 && f[0] == "--from="+build.name {
			bin = f[2]
		}
	}
	if path.Dir(bin) != "/usr/local/bin" || path.Base(bin) != "threadlift" {
		t.Errorf("the binary is copied to %q, want /usr/local/bin/threadlift (on distroless' PATH)", bin)
	}
	if ep := img.all("ENTRYPOINT"); len(ep) != 1 || ep[0] != `["`+bin+`"]` {
		t.Errorf("ENTRYPOINT %v, want [%q] in exec form", ep, bin)
	}
	if uid, gid := dockerUser(t, img); uid == 0 || gid == 0 {
		t.Errorf("USER %d:%d: want a non-root numeric user and group", uid, gid)
	}
}

// dockerUser is the image's USER uid:gid, numeric (runAsNonRoot needs a
// number to check).
func dockerUser(t *testing.T, img stage) (uid, gid int) {
	t.Helper()
	users := img.all("USER")
	if len(users) != 1 {
		t.Fatalf("image: %d USER lines, want one", len(users))
	}
	u, g, _ := strings.Cut(users[0], ":")
	uid, err1 := strconv.Atoi(u)
	gid, err2 := strconv.Atoi(g)
	if err1 != nil || err2 != nil {
		t.Fatalf("USER %q: want numeric UID:GID", users[0])
	}
	return uid, gid
}

// dockerEnv is the image's ENV, KEY=VALUE pairs.
func dockerEnv(img stage) map[string]string {
	env := map[string]string{}
	for _, e := range img.all("ENV") {
		for _, kv := range strings.Fields(e) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				env[k] = v
			}
		}
	}
	return env
}

// checkImage checks a pod against the Dockerfile's image: its user is the
// pod's runAsUser/runAsGroup, the root filesystem can be read-only (TMPDIR
// is an emptyDir), and the config the image names is the one mounted.
func checkImage(t *testing.T, pod, c obj) {
	t.Helper()
	img := parseDockerfile(t, filepath.Join("..", "..", "Dockerfile")).image(t)
	uid, gid := dockerUser(t, img)
	if num(pod, "securityContext", "runAsUser") != uid || num(pod, "securityContext", "runAsGroup") != gid {
		t.Errorf("runAsUser/runAsGroup %d/%d, the image's USER is %d:%d", num(pod, "securityContext", "runAsUser"), num(pod, "securityContext", "runAsGroup"), uid, gid)
	}
	if get(c, "securityContext", "readOnlyRootFilesystem") != true {
		t.Errorf("readOnlyRootFilesystem is not set: the image works read-only")
	}
	image := str(c, "image")
	name, tag, _ := strings.Cut(path.Base(image), ":")
	if name != "threadlift" || tag == "" || tag == "latest" {
		t.Errorf("image %q: want the Dockerfile's image (make image IMAGE=REGISTRY/threadlift:VERSION), with a version tag", image)
	}
	env := dockerEnv(img)
	emptyDirs := map[string]bool{}
	for _, v := range get(pod, "volumes").([]any) {
		if get(v, "emptyDir") != nil {
			emptyDirs[str(v, "name")] = true
		}
	}
	mounted := map[string]string{}
	for _, m := range get(c, "volumeMounts").([]any) {
		mounted[str(m, "mountPath")] = str(m, "name")
	}
	if tmp := env["TMPDIR"]; tmp == "" || !emptyDirs[mounted[tmp]] {
		t.Errorf("TMPDIR %q (SQLite's temporary files) is not an emptyDir: a read-only root filesystem would refuse them", tmp)
	}
	var args []string
	for _, a := range get(c, "args").([]any) {
		args = append(args, fmt.Sprint(a))
	}
	for i, a := range args {
		if a == "-c" && i+1 < len(args) && args[i+1] != env["THREADLIFT_CONFIG"] {
			t.Errorf("-c %s, but the image's THREADLIFT_CONFIG is %s (kubectl exec ... threadlift status would read another file)", args[i+1], env["THREADLIFT_CONFIG"])
		}
	}
}

// TestPrometheusRule: the alerts name metrics threadlift writes, and none
// pages for exit 75 (a pause).
func TestPrometheusRule(t *testing.T) {
	byKind := manifests(t)
	rule := one(t, byKind, "PrometheusRule")
	code := 0
	var b bytes.Buffer
	if err := pipeline.WriteMetrics(&b, pipeline.Metrics{ExitCode: &code, Threads: map[string]int{"pending": 0}, Messages: map[string]int{"rejected": 0}}); err != nil {
		t.Fatal(err)
	}
	written := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (\S+)`).FindAllStringSubmatch(b.String(), -1) {
		written[m[1]] = true
	}
	names := regexp.MustCompile(`threadlift_[a-z_]+`)
	n := 0
	for _, g := range get(rule, "spec", "groups").([]any) {
		for _, r := range get(g, "rules").([]any) {
			expr := str(r, "expr")
			for _, m := range names.FindAllString(expr, -1) {
				n++
				if !written[m] {
					t.Errorf("alert %s uses %s, which threadlift does not write", str(r, "alert"), m)
				}
			}
			if strings.Contains(expr, "threadlift_run_exit_code") && !strings.Contains(expr, "!= 75") {
				t.Errorf("alert %s pages for exit 75 (a pause: the next run resumes)", str(r, "alert"))
			}
		}
	}
	if n == 0 {
		t.Errorf("no alert names a threadlift metric")
	}
}

type obj = map[string]any

// manifests parses every document of every *.yaml file here.
func manifests(t *testing.T) map[string][]obj {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	byKind := map[string][]obj{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(fh)
		for {
			var doc obj
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if doc == nil {
				continue
			}
			kind, _ := doc["kind"].(string)
			if kind == "" || doc["apiVersion"] == nil || get(doc, "metadata", "name") == nil {
				t.Errorf("%s: a document without kind, apiVersion or metadata.name", f)
			}
			doc["_file"] = f
			byKind[kind] = append(byKind[kind], doc)
		}
		fh.Close()
	}
	return byKind
}

// get walks keys (string for maps, int for lists); nil when missing.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(obj)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any, path ...any) string { s, _ := get(v, path...).(string); return s }

func num(v any, path ...any) int {
	switch n := get(v, path...).(type) {
	case int:
		return n
	case int64:
		return int(n)
	case uint64:
		return int(n)
	}
	return -1
}

func one(t *testing.T, byKind map[string][]obj, kind string) obj {
	t.Helper()
	if len(byKind[kind]) != 1 {
		t.Fatalf("want one %s, have %d", kind, len(byKind[kind]))
	}
	return byKind[kind][0]
}

// setup is what the pods need from the ConfigMap and the claim.
type setup struct {
	configMap, configKey string
	cfg                  *configs.Config
	claim                string
}

func TestManifests(t *testing.T) {
	byKind := manifests(t)
	cm := one(t, byKind, "ConfigMap")
	pvc := one(t, byKind, "PersistentVolumeClaim")
	job := one(t, byKind, "Job")
	cron := one(t, byKind, "CronJob")

	// The config in the ConfigMap is one threadlift loads, strictly.
	var s setup
	s.configMap = str(cm, "metadata", "name")
	data, _ := get(cm, "data").(obj)
	if len(data) != 1 {
		t.Fatalf("ConfigMap %s: want one key (the config file), have %d", s.configMap, len(data))
	}
	for k, v := range data {
		s.configKey = k
		dir := t.TempDir()
		p := filepath.Join(dir, k)
		if err := os.WriteFile(p, []byte(v.(string)), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := configs.Load(p, func(string) string { return "" })
		if err != nil {
			t.Fatalf("ConfigMap %s, %s: %v", s.configMap, k, err)
		}
		s.cfg = cfg
	}
	if s.cfg.Zendesk.TokenEnv == "" || s.cfg.Zendesk.OAuthTokenEnv != "" {
		t.Errorf("config: want API-token auth through token_env")
	}

	s.claim = str(pvc, "metadata", "name")
	if modes, _ := get(pvc, "spec", "accessModes").([]any); len(modes) != 1 || modes[0] != "ReadWriteOnce" {
		t.Errorf("PersistentVolumeClaim %s: access modes %v, want ReadWriteOnce (SQLite + flock need a local filesystem)", s.claim, modes)
	}
	if str(pvc, "spec", "resources", "requests", "storage") == "" {
		t.Errorf("PersistentVolumeClaim %s: no storage request", s.claim)
	}

	t.Run("Job", func(t *testing.T) {
		spec := get(job, "spec").(obj)
		n := checkIndexed(t, spec)
		checkPod(t, get(spec, "template", "spec").(obj), s, n, false)
	})
	t.Run("CronJob", func(t *testing.T) {
		if str(cron, "spec", "concurrencyPolicy") != "Forbid" {
			t.Errorf("concurrencyPolicy %q, want Forbid", str(cron, "spec", "concurrencyPolicy"))
		}
		if len(strings.Fields(str(cron, "spec", "schedule"))) != 5 {
			t.Errorf("schedule %q is not a cron line", str(cron, "spec", "schedule"))
		}
		spec := get(cron, "spec", "jobTemplate", "spec").(obj)
		n := checkIndexed(t, spec)
		if jn := checkIndexed(t, get(job, "spec").(obj)); n != jn {
			t.Errorf("the backfill runs %d shards and the migration %d: they must share the checkpoints", n, jn)
		}
		maxDur := checkPod(t, get(spec, "template", "spec").(obj), s, n, true)
		deadline := time.Duration(num(spec, "activeDeadlineSeconds")) * time.Second
		if deadline <= 0 || maxDur+time.Duration(s.cfg.Zendesk.Timeout) >= deadline {
			t.Errorf("--max-duration %s (+ timeout %s) must end before activeDeadlineSeconds %s", maxDur, time.Duration(s.cfg.Zendesk.Timeout), deadline)
		}
	})
}

// checkIndexed checks an Indexed Job spec and returns its number of shards.
func checkIndexed(t *testing.T, spec obj) int {
	t.Helper()
	if spec["completionMode"] != "Indexed" {
		t.Errorf("completionMode %v, want Indexed", spec["completionMode"])
	}
	n, p := num(spec, "completions"), num(spec, "parallelism")
	if n < 2 || p != n {
		t.Errorf("completions %d, parallelism %d: want N ≥ 2 of each", n, p)
	}
	if rules, _ := get(spec, "podFailurePolicy", "rules").([]any); len(rules) == 0 || get(spec, "template", "spec", "restartPolicy") != "Never" {
		t.Errorf("want a podFailurePolicy (exit 1 and 2 are not worth retrying) and restartPolicy Never")
	}
	return n
}

// checkPod checks the pod of a shard and returns its --max-duration.
func checkPod(t *testing.T, pod obj, s setup, n int, wantMaxDuration bool) time.Duration {
	t.Helper()
	cs, _ := pod["containers"].([]any)
	if len(cs) != 1 {
		t.Fatalf("want one container, have %d", len(cs))
	}
	c := cs[0].(obj)
	var args []string
	for _, a := range append(get(c, "command").([]any), get(c, "args").([]any)...) {
		args = append(args, fmt.Sprint(a))
	}
	flag := func(name string) string {
		for i, a := range args {
			if a == name && i+1 < len(args) {
				return args[i+1]
			}
		}
		return ""
	}
	if len(args) < 2 || args[0] != "threadlift" || args[1] != "import" {
		t.Errorf("command %v, want threadlift import ...", args)
	}
	// --shard $(JOB_COMPLETION_INDEX)/N, and JOB_COMPLETION_INDEX declared
	// so that Kubernetes expands it.
	if got, want := flag("--shard"), fmt.Sprintf("$(JOB_COMPLETION_INDEX)/%d", n); got != want {
		t.Errorf("--shard %q, want %q", got, want)
	}
	if _, err := pipeline.ParseShard(strings.Replace(flag("--shard"), "$(JOB_COMPLETION_INDEX)", strconv.Itoa(n-1), 1)); err != nil {
		t.Errorf("--shard of the last index: %v", err)
	}
	env := map[string]obj{}
	for _, e := range get(c, "env").([]any) {
		env[str(e, "name")] = e.(obj)
	}
	if !strings.Contains(str(env["JOB_COMPLETION_INDEX"], "valueFrom", "fieldRef", "fieldPath"), "batch.kubernetes.io/job-completion-index") {
		t.Errorf("JOB_COMPLETION_INDEX is not declared from the completion index annotation")
	}
	// The token from a Secret, in the variable token_env names; nothing
	// else secret in the environment as a literal.
	tok := env[s.cfg.Zendesk.TokenEnv]
	if str(tok, "valueFrom", "secretKeyRef", "name") == "" || str(tok, "valueFrom", "secretKeyRef", "key") == "" {
		t.Errorf("%s (zendesk.token_env) does not come from a Secret: %v", s.cfg.Zendesk.TokenEnv, tok)
	}
	for name, e := range env {
		if _, literal := e["value"]; literal {
			t.Errorf("env %s is a literal", name)
		}
	}

	// Volumes: the ConfigMap holds the -c file, the claim the checkpoint,
	// the sources and the metrics file.
	vols := map[string]obj{}
	for _, v := range get(pod, "volumes").([]any) {
		vols[str(v, "name")] = v.(obj)
	}
	mounts := map[string]string{} // mount path → volume name
	for _, m := range get(c, "volumeMounts").([]any) {
		mounts[str(m, "mountPath")] = str(m, "name")
		if vols[str(m, "name")] == nil {
			t.Errorf("volume mount %s: no volume %s", str(m, "mountPath"), str(m, "name"))
		}
	}
	volumeAt := func(p string) obj {
		best := ""
		for mp := range mounts {
			if (p == mp || strings.HasPrefix(p, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best) {
				best = mp
			}
		}
		return vols[mounts[best]]
	}
	cfgPath := flag("-c")
	if v := volumeAt(cfgPath); str(v, "configMap", "name") != s.configMap || path.Base(cfgPath) != s.configKey {
		t.Errorf("-c %s is not %s of ConfigMap %s (volume %v)", cfgPath, s.configKey, s.configMap, v)
	}
	paths := map[string]string{"checkpoint": s.cfg.Checkpoint.Path}
	for i, src := range s.cfg.Sources {
		paths[fmt.Sprintf("sources[%d]", i)] = src.Path
	}
	for what, p := range paths {
		if p == "" {
			t.Errorf("no %s", what)
			continue
		}
		if v := volumeAt(p); str(v, "persistentVolumeClaim", "claimName") != s.claim {
			t.Errorf("%s %s is not on the claim %s", what, p, s.claim)
		}
	}
	// Metrics go to a Pushgateway: a file on the claim is read by nobody
	// in a cluster, and a scrape misses how a finished Job ended.
	if u, err := url.Parse(flag("--metrics-push")); err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		t.Errorf("--metrics-push %q is not a Pushgateway URL", flag("--metrics-push"))
	}
	checkImage(t, pod, c)
	if num(pod, "terminationGracePeriodSeconds") <= int(time.Duration(s.cfg.Zendesk.Timeout).Seconds()) {
		t.Errorf("terminationGracePeriodSeconds %d leaves requests in flight no zendesk.timeout (%s) to finish",
			num(pod, "terminationGracePeriodSeconds"), time.Duration(s.cfg.Zendesk.Timeout))
	}

	failOn := flag("--fail-on")
	if wantMaxDuration && failOn != "failed" {
		t.Errorf("the backfill's --fail-on is %q, want failed: rejected records and a pause must not page every night", failOn)
	}
	for _, v := range strings.Split(failOn, ",") {
		if v != "" && v != "rejected" && v != "failed" && v != "paused" && v != "none" {
			t.Errorf("--fail-on %q: import takes rejected, failed, paused or none", v)
		}
	}

	d := flag("--max-duration")
	if !wantMaxDuration {
		if d != "" {
			t.Errorf("the migration has a --max-duration %s", d)
		}
		return 0
	}
	dur, err := time.ParseDuration(d)
	if err != nil || dur <= 0 {
		t.Errorf("--max-duration %q: %v", d, err)
	}
	return dur
}
