#!/usr/bin/env bash
# make demo: start the bundled fake Zendesk on loopback, check the setup
# against it, import the sample archive into it twice (the second run finds
# everything done), show status and failures, then read everything back
# with verify. Credentials are the fake's own; nothing leaves this machine.
#
# The fake listens on DEMO_ADDR (make demo DEMO_ADDR=127.0.0.1:9000) when it
# is given, and fails at once with its bind error when that address is
# taken. Without it, on 127.0.0.1:8089, or on a free port when 8089 is
# taken. threadlift is pointed at the URL the fake itself printed once it
# listened (THREADLIFT_ZENDESK_URL), so it never talks to another server.
set -u
want=${1:-}
cd "$(dirname "$0")/.."
rm -rf .demo && mkdir -p .demo

fake=
trap '[ -n "$fake" ] && kill $fake 2>/dev/null; wait 2>/dev/null' EXIT

# start_fake ADDR: starts the fake on ADDR and waits for the URL it prints
# once it listens. Returns 1 when the fake exits instead (its log says why).
start_fake() {
  : >.demo/fake.url
  bin/zendesk-fake --addr "$1" --print-url --email demo@example.com --token demo-token \
    --dump .demo/zendesk.json >.demo/fake.url 2>.demo/fake.log &
  fake=$!
  for _ in $(seq 100); do
    if [ -s .demo/fake.url ]; then
      return 0
    fi
    if ! kill -0 "$fake" 2>/dev/null; then
      wait "$fake" 2>/dev/null
      fake=
      return 1
    fi
    sleep 0.1
  done
  echo "make demo: the fake Zendesk did not start listening on $1 within 10s" >&2
  return 1
}

if [ -n "$want" ]; then
  if ! start_fake "$want"; then
    echo "make demo: cannot start the fake Zendesk on DEMO_ADDR=$want:" >&2
    cat .demo/fake.log >&2
    exit 1
  fi
elif ! start_fake 127.0.0.1:8089; then
  if ! grep -qi "address already in use" .demo/fake.log; then
    cat .demo/fake.log >&2
    exit 1
  fi
  echo "(127.0.0.1:8089 is taken: the fake Zendesk listens on a free port instead)"
  if ! start_fake 127.0.0.1:0; then
    cat .demo/fake.log >&2
    exit 1
  fi
fi
url=$(head -n1 .demo/fake.url)
case $url in
  http://127.0.0.1:* | http://localhost:* | http://\[::1\]:*) ;;
  *) echo "make demo: the fake printed an unexpected URL: $url" >&2; exit 1 ;;
esac

export THREADLIFT_DEMO_TOKEN=demo-token
# configs/demo.yaml names http://127.0.0.1:8089; the fake's own URL wins.
export THREADLIFT_ZENDESK_URL=$url
tl() { bin/threadlift "$@" -c configs/demo.yaml --no-progress --log-format console --log-level warn; }

echo "== threadlift check (preflight against the fake Zendesk at $url: writes nothing)"
if ! tl check; then
  echo "make demo: check failed against $url" >&2
  exit 1
fi
echo
echo "== threadlift validate"
tl validate --report .demo/report
echo
echo "== threadlift import (into the fake Zendesk at $url)"
tl import --summary .demo/summary.json
code=$?
echo "(exit status $code: 1 means some messages were rejected, see failures below)"
if [ "$code" -gt 1 ]; then
  echo "make demo: import failed (exit status $code)" >&2
  exit 1
fi
echo
echo "== threadlift import again: nothing new to send"
tl import
echo
echo "== threadlift status"
tl status
echo
echo "== threadlift failures"
tl failures
echo
echo "== threadlift verify (reads every ticket back from the fake Zendesk)"
if ! tl verify; then
  echo "make demo: verify found the fake's side conversations differ from the archive" >&2
  exit 1
fi
echo
echo "Summary JSON: .demo/summary.json; report: .demo/report/report.html (and report.json, threads.csv); checkpoint: .demo/threadlift.db"
exit 0
