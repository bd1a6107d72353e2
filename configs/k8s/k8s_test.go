package k8s_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v4"

	"github.com/threadlift/threadlift/configs"
	"github.com/threadlift/threadlift/pipeline"
)

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
	paths := map[string]string{"checkpoint": s.cfg.Checkpoint.Path, "--metrics-file": flag("--metrics-file")}
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
	if !strings.Contains(flag("--metrics-file"), "$(JOB_COMPLETION_INDEX)") {
		t.Errorf("--metrics-file %s is the same for every shard", flag("--metrics-file"))
	}
	if str(c, "image") == "" {
		t.Errorf("no image")
	}
	if num(pod, "terminationGracePeriodSeconds") <= int(time.Duration(s.cfg.Zendesk.Timeout).Seconds()) {
		t.Errorf("terminationGracePeriodSeconds %d leaves requests in flight no zendesk.timeout (%s) to finish",
			num(pod, "terminationGracePeriodSeconds"), time.Duration(s.cfg.Zendesk.Timeout))
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
