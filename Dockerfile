# syntax=docker/dockerfile:1
# The threadlift image: `make image` (VERSION and COMMIT come from git), or
#   docker build --build-arg VERSION=1.0.0 --build-arg COMMIT=$(git rev-parse HEAD) -t threadlift:1.0.0 .
#
# Stage 1 builds the static binary with scripts/build.sh, the script CI and
# `make release` use (CGO_ENABLED=0, -trimpath, stripped, version stamped).
# Stage 2 is distroless/static: no shell, no libc, CA certificates and
# tzdata only, running as the non-root user 65532 that the Kubernetes
# examples in configs/k8s/ give as runAsUser.
#
# A read-only root filesystem works: threadlift writes only the checkpoint's
# folder (checkpoint.path: its .db, -wal, -sum seal, failures.jsonl and
# failures/), the files given on the command line (--report, --summary,
# --metrics-file), and SQLite's and the envelope index's temporary files
# in TMPDIR (/tmp: mount an emptyDir there, as the examples do). Nothing is
# written to HOME.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=
ARG TARGETOS=linux
ARG TARGETARCH=amd64
RUN VERSION="$VERSION" COMMIT="$COMMIT" GOOS="$TARGETOS" GOARCH="$TARGETARCH" \
    sh scripts/build.sh /out/threadlift

FROM gcr.io/distroless/static-debian12:nonroot AS image
ARG VERSION=dev
ARG COMMIT=
LABEL org.opencontainers.image.title="threadlift" \
      org.opencontainers.image.description="Imports mail archives into Zendesk side conversations, exactly once" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}"
COPY --from=build /out/threadlift /usr/local/bin/threadlift
# The config the examples mount from a ConfigMap: `kubectl exec POD --
# threadlift status` then needs no -c. SQLite's temporary files go to /tmp.
ENV THREADLIFT_CONFIG=/etc/threadlift/threadlift.yaml \
    TMPDIR=/tmp
WORKDIR /data
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/threadlift"]
CMD ["--help"]
