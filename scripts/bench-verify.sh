#!/usr/bin/env bash
# bench-verify: what `threadlift verify` costs after a 10,000-thread import
# into the bundled fake Zendesk (every thread on its own ticket, the worst
# case: one list request per thread). Prints the import's and verify's
# request counts and times. Nothing leaves this machine.
#
#   make build && go build -o bin/bench/ ./bench/cmd/... && bash scripts/bench-verify.sh [THREADS]
set -eu
threads=${1:-10000}
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'kill $fake 2>/dev/null; wait $fake 2>/dev/null; rm -rf "$work"' EXIT

bin/bench/genmbox -o "$work/archive.mbox" -kind small -threads "$threads" -seed 1 >/dev/null
bin/zendesk-fake --addr 127.0.0.1:0 --print-url >"$work/url" 2>"$work/fake.log" &
fake=$!
for _ in $(seq 50); do [ -s "$work/url" ] && break; sleep 0.1; done
url=$(head -1 "$work/url")
cat >"$work/threadlift.yaml" <<YAML
zendesk:
  url: $url
  email: bench@example.com
  token_env: BENCH_TOKEN
  requests_per_minute: 0            # no client-side ceiling: the fake's speed
  write_requests_per_10_minutes: 0
sources:
  - {type: mbox, path: archive.mbox}
mapping:
  ticket: {subject_regex: '\[#(\d+)\]'}
pipeline: {workers: 8}
checkpoint: {path: threadlift.db}
YAML
export BENCH_TOKEN=unchecked
tl() { bin/threadlift "$@" -c "$work/threadlift.yaml" --no-progress --log-level warn; }

echo "== import of $threads threads"
tl import --summary "$work/import.json" | sed -n '1p;3,4p'
echo "== verify"
start=$(date +%s.%N)
tl verify --json >"$work/verify.json"
end=$(date +%s.%N)
python3 - "$work/verify.json" "$start" "$end" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
wall = float(sys.argv[3]) - float(sys.argv[2])
t = d["threads"]
print(f"tickets {d['tickets_verified']}, threads {t['planned']} planned / {t['present']} exactly once, ok={d['ok']}")
print(f"requests {d['requests']} ({d['requests']/max(1,d['tickets_verified']):.2f} per ticket), "
      f"verify elapsed {d['elapsed_seconds']:.1f}s (wall with reading the archive {wall:.1f}s)")
for plan, rpm in (("Team", 200), ("Growth/Professional", 400), ("Enterprise", 700), ("High Volume", 2500)):
    print(f"  at {rpm}/min ({plan}): {d['requests']/rpm:.0f} min")
PY
