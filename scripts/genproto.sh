#!/usr/bin/env bash
# Regenerates the Go code and the OpenAPI description from proto/. With --check it generates
# into a temporary tree and fails when the committed files are stale.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local

googleapis=${GOOGLEAPIS:-/usr/share/gocode/src/github.com/gogo/googleapis}
if ! command -v protoc >/dev/null || [ ! -f "$googleapis/google/api/annotations.proto" ] || [ ! -f /usr/include/google/protobuf/descriptor.proto ]; then
  echo "genproto: needs protoc and the google/api protos: apt-get install protobuf-compiler libprotobuf-dev golang-github-gogo-googleapis-dev" >&2
  exit 1
fi
pgv=$(go list -m -f '{{.Dir}}' github.com/envoyproxy/protoc-gen-validate)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The plugins are the versions pinned by the tool lines of go.mod.
go build -o "$work/bin/" \
  google.golang.org/protobuf/cmd/protoc-gen-go \
  google.golang.org/grpc/cmd/protoc-gen-go-grpc \
  github.com/envoyproxy/protoc-gen-validate \
  github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway \
  github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2

out="$work/out"
mkdir -p "$out/proto/gatehouse/admin/v1"
annotations=google.golang.org/genproto/googleapis/api/annotations
# The Debian copies of google/api/*.proto carry a bare go_package; every Go plugin is told the
# real import path.
m="Mgoogle/api/annotations.proto=$annotations,Mgoogle/api/http.proto=$annotations"
# Generated code is committed without the protoc version line so that a patch release of
# protoc does not make every file stale.
PATH="$work/bin:$PATH" protoc \
  -I proto -I "$googleapis" -I "$pgv" -I /usr/include \
  --go_out="$out" --go_opt="module=gatehouse,$m" \
  --go-grpc_out="$out" --go-grpc_opt="module=gatehouse,$m" \
  --validate_out="lang=go,paths=source_relative,$m:$out/proto" \
  --grpc-gateway_out="$out" --grpc-gateway_opt="module=gatehouse,$m" \
  --openapiv2_out="$out/proto/gatehouse/admin/v1" \
  --openapiv2_opt="$m,allow_merge=true,merge_file_name=admin,json_names_for_fields=false,disable_default_errors=false" \
  $(find proto -name '*.proto' | sort)
find "$out" -name '*.go' -exec sed -i '/^\/\/ \tprotoc  *v/d;/^\/\/ - protoc  *v/d' {} +

generated=$(cd "$out" && find . -type f | sort)
if [ "${1:-}" = "--check" ]; then
  stale=0
  for f in $generated; do
    if ! cmp -s "$out/$f" "$f"; then echo "stale: ${f#./}" >&2; stale=1; fi
  done
  for f in $(git ls-files 'proto/*.pb.go' 'proto/*.pb.*.go' 'proto/*.swagger.json'); do
    [ -f "$out/$f" ] || { echo "no longer generated: $f" >&2; stale=1; }
  done
  if [ $stale = 1 ]; then echo "generated code is stale: run 'make proto'" >&2; exit 1; fi
  echo "generated code is up to date"
  exit 0
fi
for f in $generated; do mkdir -p "$(dirname "$f")"; cp "$out/$f" "$f"; done
echo "generated $(echo "$generated" | wc -w) files"
