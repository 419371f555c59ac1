# syntax=docker/dockerfile:1
# Multi-stage build of the runtimeguard image: a static binary on distroless, non-root.
# CI has no Docker engine; `make static-check` builds the same binary the same way
# (CGO_ENABLED=0, -trimpath) and checks it is static.

FROM golang:1.26 AS build
WORKDIR /src
# Modules first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY cmd/ cmd/
COPY webhook/ webhook/
COPY policies/ policies/
COPY certs/ certs/
COPY version/ version/
# docker build --build-arg VERSION=$(git describe --tags) --build-arg COMMIT=$(git rev-parse HEAD)
# (the .git directory is not in the build context, so the binary cannot find them itself).
ARG VERSION=dev
ARG COMMIT=""
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/runtimeguard/runtimeguard/version.version=${VERSION} -X github.com/runtimeguard/runtimeguard/version.commit=${COMMIT}" \
      -o /out/runtimeguard ./cmd/runtimeguard

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/runtimeguard /runtimeguard
USER 65532:65532
ENTRYPOINT ["/runtimeguard"]
CMD ["serve"]
