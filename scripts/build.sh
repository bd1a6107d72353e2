#!/bin/sh
# scripts/build.sh OUT: the one way a shipped threadlift binary is built —
# by `make release`, by the Dockerfile and by CI — so that CI compiles
# exactly what the image and the release archives hold: static
# (CGO_ENABLED=0; modernc.org/sqlite is pure Go), -trimpath, symbols
# stripped, version and commit stamped (threadlift --version).
#
# Environment: VERSION (default dev), COMMIT (default none), GOOS and
# GOARCH (default: this machine's).
set -eu
out=${1:?usage: scripts/build.sh OUT}
VERSION=${VERSION:-dev}
COMMIT=${COMMIT:-}
CGO_ENABLED=0 exec go build -trimpath \
  -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
  -o "$out" ./cmd/threadlift
