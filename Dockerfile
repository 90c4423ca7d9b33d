# Gatehouse container image, built from source:
#
#   docker build -t gatehouse .
#
# The version and git revision are stamped from the checkout's .git (a tag on
# HEAD, and the commit with -dirty for uncommitted changes); where the
# context has no .git (a git worktree, a tarball) pass them:
#
#   docker build --build-arg VERSION=v1.2.3 --build-arg REVISION="$(git rev-parse HEAD)" -t gatehouse .
#
# Machines that cannot pull the base images below package a binary built on
# the host instead: see deploy/container/Containerfile and docs/deployment.md.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Unset unless given, so build.sh asks git.
ARG VERSION
ARG REVISION
# build.sh: CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X ...version -X ...revision"
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    deploy/container/build.sh /out/gatehouse && mkdir -p /out/data

# Distroless static: CA certificates, tzdata, /tmp and the nonroot user
# (65532), no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gatehouse /gatehouse
COPY --from=build --chown=65532:65532 /out/data /data
ENV GATEHOUSE_ADDR=:8080 \
    GATEHOUSE_DATA_DIR=/data
USER 65532:65532
EXPOSE 8080
VOLUME /data
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["/gatehouse", "healthcheck"]
ENTRYPOINT ["/gatehouse"]
CMD ["serve"]
