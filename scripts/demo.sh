#!/usr/bin/env bash
# make demo: start the bundled fake Zendesk on loopback, check the setup
# against it, import the sample archive into it twice (the second run finds
# everything done), show status and failures, then read everything back
# with verify. Credentials are the fake's own; nothing leaves this machine.
set -u
addr=${1:-127.0.0.1:8089}
cd "$(dirname "$0")/.."
rm -rf .demo && mkdir -p .demo

bin/zendesk-fake --addr "$addr" --email demo@example.com --token demo-token \
  --dump .demo/zendesk.json >.demo/fake.log 2>&1 &
fake=$!
trap 'kill $fake 2>/dev/null; wait $fake 2>/dev/null' EXIT
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/${addr%:*}/${addr#*:}") 2>/dev/null && break
  sleep 0.1
done

export THREADLIFT_DEMO_TOKEN=demo-token
tl() { bin/threadlift "$@" -c configs/demo.yaml --no-progress --log-format console --log-level warn; }

echo "== threadlift check (preflight: writes nothing)"
tl check
echo
echo "== threadlift validate"
tl validate --report .demo/report
echo
echo "== threadlift import (into the fake Zendesk at http://$addr)"
tl import --summary .demo/summary.json
code=$?
echo "(exit status $code: 1 means some messages were rejected, see failures below)"
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
tl verify
echo
echo "Summary JSON: .demo/summary.json; report: .demo/report/report.json; checkpoint: .demo/threadlift.db"
exit 0
