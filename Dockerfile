# One image for every Gatehouse binary: static, non-root, fit for a read-only root filesystem.
#   docker build -t ghcr.io/gatehouse/gatehouse:0.1.0 .
FROM golang:1.26-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOTOOLCHAIN=local
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go build -trimpath -ldflags="-s -w" -o /out/ \
      ./authz/cmd/gatehouse-authz \
      ./controlplane/cmd/gatehouse-controlplane \
      ./controlplane/cmd/gatehousectl \
      ./deploy/example-runtime \
 && mkdir -p /data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
# Owned by the runtime user so that a fresh named volume mounted here is writable.
COPY --from=build --chown=65532:65532 /data /var/lib/gatehouse
USER 65532:65532
# The control plane and the authz sidecar keep their bbolt files here; mount a volume.
VOLUME ["/var/lib/gatehouse"]
ENTRYPOINT ["/usr/local/bin/gatehouse-controlplane"]
