#!/usr/bin/env bash
# `make run`: the whole platform on one machine with embedded defaults. Starts the control
# plane, the example recipe runtime and one authz sidecar, seeds the demo (deploy/demo.yaml),
# prints a caller token and the calls to try, and starts Envoy when it is installed. Ctrl-C
# stops everything; the next run reuses the data directory (state, admin token, demo token).
#
# Environment: DATA_DIR (default .data), BIN (default bin, built by `make build`).
# shellcheck disable=SC2317 # stop_all and on_exit run from traps, which shellcheck cannot see.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-bin}
DATA_DIR=${DATA_DIR:-.data}
LOG_DIR="$DATA_DIR/logs"

# The platform's fixed ports (see the README); all on this machine.
ADMIN_HTTP=9080 ADMIN_GRPC=9090 XDS=18000
AUTHZ_GRPC=9191 AUTHZ_HTTP=9192
RUNTIME=8081 ENVOY_PUBLIC=10000 ENVOY_ADMIN=9901

say() { printf '%s\n' "$*"; }
die() { printf 'run: %s\n' "$*" >&2; exit 1; }

for b in gatehouse-controlplane gatehouse-authz gatehousectl example-runtime; do
  [ -x "$BIN/$b" ] || die "$BIN/$b is missing: run 'make run' (it builds first) or 'make build'"
done

# port_busy succeeds when something accepts connections on the port, on loopback or on every
# interface; either would make our server fail to bind.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ports=("$ADMIN_HTTP:control plane admin HTTP" "$ADMIN_GRPC:control plane admin gRPC"
  "$XDS:control plane xDS" "$AUTHZ_GRPC:authz ext_authz gRPC" "$AUTHZ_HTTP:authz HTTP check"
  "$RUNTIME:example runtime")
if command -v envoy >/dev/null; then
  ports+=("$ENVOY_PUBLIC:Envoy public listener" "$ENVOY_ADMIN:Envoy admin")
fi
for p in "${ports[@]}"; do
  if port_busy "${p%%:*}"; then
    die "port ${p%%:*} (${p#*:}) is already in use: stop what listens there (is another 'make run' still running?)"
  fi
done

mkdir -p "$DATA_DIR" "$LOG_DIR"
chmod 700 "$DATA_DIR"

# The admin token is the local operator's credential for the admin API (REST and gatehousectl):
# whoever can read this file administers this control plane. It is created on the first run,
# readable only by you, and reused by every later run.
ADMIN_TOKEN_FILE="$DATA_DIR/admin-token"
if [ ! -s "$ADMIN_TOKEN_FILE" ]; then
  (umask 077 && "$BIN/gatehouse-controlplane" admin-token >"$ADMIN_TOKEN_FILE.tmp")
  mv "$ADMIN_TOKEN_FILE.tmp" "$ADMIN_TOKEN_FILE"
fi
chmod 600 "$ADMIN_TOKEN_FILE"
GATEHOUSE_ADMIN_TOKEN=$(tr -d '[:space:]' <"$ADMIN_TOKEN_FILE")
export GATEHOUSE_ADMIN_TOKEN GATEHOUSE_ADDR="127.0.0.1:$ADMIN_GRPC"

# Children, stopped in reverse order on exit: Envoy first, the control plane last.
pids=() names=()
stop_all() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
  done
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    wait "${pids[i]}" 2>/dev/null || true
  done
  pids=()
}
on_exit() {
  local rc=$?
  trap - EXIT INT TERM
  if [ ${#pids[@]} -gt 0 ]; then
    say ""
    say "stopping ${names[*]}..."
    stop_all
    say "stopped. Data is kept in $DATA_DIR; run 'make run' again to continue."
  fi
  exit "$rc"
}
trap on_exit EXIT
# Ctrl-C or SIGTERM is how this script is meant to end: stopping cleanly is a success.
trap 'exit 0' INT TERM

# start NAME CMD...: runs CMD in the background with its output in $LOG_DIR/NAME.log.
start() {
  local name=$1
  shift
  printf '=== %s run.sh starts: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >>"$LOG_DIR/$name.log"
  "$@" >>"$LOG_DIR/$name.log" 2>&1 &
  pids+=($!)
  names+=("$name")
}

# wait_ready NAME URL: polls URL until it answers 2xx, failing when the process died.
wait_ready() {
  local name=$1 url=$2 i pid=${pids[${#pids[@]} - 1]}
  for ((i = 0; i < 300; i++)); do
    if curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      say "$name exited; last lines of $LOG_DIR/$name.log:" >&2
      tail -n 20 "$LOG_DIR/$name.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  die "$name was not ready at $url after 30s; see $LOG_DIR/$name.log"
}

command -v curl >/dev/null || die "curl is needed (Debian: apt-get install curl)"

say "starting the control plane (log: $LOG_DIR/controlplane.log)"
start controlplane "$BIN/gatehouse-controlplane" serve \
  --data-dir="$DATA_DIR" \
  --admin-http-addr="127.0.0.1:$ADMIN_HTTP" --admin-grpc-addr="127.0.0.1:$ADMIN_GRPC" \
  --xds-addr="127.0.0.1:$XDS" --runtime-addr="127.0.0.1:$RUNTIME"
wait_ready controlplane "http://127.0.0.1:$ADMIN_HTTP/readyz"

say "starting the example recipe runtime (log: $LOG_DIR/runtime.log)"
start runtime "$BIN/example-runtime" --addr="127.0.0.1:$RUNTIME"
wait_ready runtime "http://127.0.0.1:$RUNTIME/healthz"

say "seeding the demo from deploy/demo.yaml"
"$BIN/gatehousectl" apply -f deploy/demo.yaml | sed 's/^/  /'

say "starting the authz sidecar (log: $LOG_DIR/authz.log)"
start authz "$BIN/gatehouse-authz" \
  --data-dir="$DATA_DIR" \
  --grpc-addr="127.0.0.1:$AUTHZ_GRPC" --http-addr="127.0.0.1:$AUTHZ_HTTP" \
  --xds-addr="127.0.0.1:$XDS" --node-id=local-authz
wait_ready authz "http://127.0.0.1:$AUTHZ_HTTP/readyz"

# check_url PATH: the authz HTTP check for a call to PATH, as nginx or Caddy would ask it.
# The /check prefix has Envoy http_service semantics: the call's own path follows it.
check_url() { printf 'http://127.0.0.1:%s/check%s' "$AUTHZ_HTTP" "$1"; }

# The demo caller token is kept (like the admin token, readable only by you) so a second run
# shows the same one; a new token is made when it is missing or no longer accepted.
DEMO_TOKEN_FILE="$DATA_DIR/demo-token"
token_works() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "API-Token: $1" "$(check_url /demo-v1/hello)") || return 1
  [ "${code:0:1}" = 2 ]
}
DEMO_TOKEN=""
if [ -s "$DEMO_TOKEN_FILE" ]; then
  DEMO_TOKEN=$(tr -d '[:space:]' <"$DEMO_TOKEN_FILE")
  token_works "$DEMO_TOKEN" || DEMO_TOKEN=""
fi
if [ -z "$DEMO_TOKEN" ]; then
  DEMO_TOKEN=$("$BIN/gatehousectl" tokens create --client demo-client --profile demo-api-token --name make-run -q)
  (umask 077 && printf '%s\n' "$DEMO_TOKEN" >"$DEMO_TOKEN_FILE")
  # The sidecar learns of the new token over xDS a moment later; print the calls once they work.
  for ((i = 0; i < 100; i++)); do
    token_works "$DEMO_TOKEN" && break
    sleep 0.1
  done
  token_works "$DEMO_TOKEN" || die "the authz sidecar does not accept the new demo token; see $LOG_DIR/authz.log"
fi

if command -v envoy >/dev/null; then
  say "starting Envoy with envoy/bootstrap.yaml (log: $LOG_DIR/envoy.log)"
  # envoy/bootstrap.yaml is rendered by `gatehouse-controlplane bootstrap` for the platform's
  # default ports, which are the ones used here.
  start envoy envoy -c envoy/bootstrap.yaml --log-level warn
  wait_ready envoy "http://127.0.0.1:$ENVOY_ADMIN/ready"
  ENVOY_NOTE="Envoy is running (admin: http://127.0.0.1:$ENVOY_ADMIN)."
else
  ENVOY_NOTE="Envoy is not installed here, so :$ENVOY_PUBLIC is not served. For the whole data path run
  docker compose -f deploy/compose/compose.yaml up --build
or install Envoy (https://www.envoyproxy.io/docs/envoy/latest/start/install) and run 'make run' again."
fi

cat <<EOF

Gatehouse is running. Data: $DATA_DIR   Logs: $LOG_DIR/*.log

Admin API:   REST http://127.0.0.1:$ADMIN_HTTP/v1/ (OpenAPI: /openapi.json), gRPC 127.0.0.1:$ADMIN_GRPC
Admin token: in $ADMIN_TOKEN_FILE. It is the local operator's credential for this control
             plane: keep it private. For example:
  curl -H "Authorization: Bearer \$(cat $ADMIN_TOKEN_FILE)" http://127.0.0.1:$ADMIN_HTTP/v1/collections
  export GATEHOUSE_ADDR=127.0.0.1:$ADMIN_GRPC GATEHOUSE_ADMIN_TOKEN=\$(cat $ADMIN_TOKEN_FILE)
  $BIN/gatehousectl get endpoints --collection demo-v1

Caller token of the demo client (also in $DEMO_TOKEN_FILE):
  $DEMO_TOKEN

Call the demo through Envoy:
  curl -i -H "API-Token: $DEMO_TOKEN" http://127.0.0.1:$ENVOY_PUBLIC/demo-v1/invoices/inv-42

Ask the authz sidecar for a decision directly (what nginx auth_request or Caddy forward_auth do):
  curl -i -H "API-Token: $DEMO_TOKEN" $(check_url /demo-v1/invoices/inv-42)
  curl -i $(check_url /demo-v1/hello)      # no token: 401 problem+json

$ENVOY_NOTE

Press Ctrl-C to stop.
EOF

# Wait until Ctrl-C (the traps stop everything) or until a child dies, which stops the rest.
set +e
wait -n "${pids[@]}"
rc=$?
for i in "${!pids[@]}"; do
  if ! kill -0 "${pids[i]}" 2>/dev/null; then
    say "${names[i]} exited unexpectedly (status $rc), so everything stops; last lines of $LOG_DIR/${names[i]}.log:" >&2
    tail -n 20 "$LOG_DIR/${names[i]}.log" >&2
  fi
done
exit 1
