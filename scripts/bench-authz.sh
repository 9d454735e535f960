#!/usr/bin/env bash
# Measures the authz sidecar over gRPC on loopback against a do-nothing ext_authz server driven
# by the same load generator in the same run, then its latency at half of its own throughput,
# then its memory across 1,000,000 calls with random invalid tokens.
#
# Environment: DURATION (default 10s per run), CONCURRENCY (64 calls in flight for throughput),
# HALF_CONCURRENCY (8 calls in flight at half load: enough to keep the rate, few enough not to
# queue), INVALID_CALLS (1000000), BIN (bin). The numbers are only as quiet as the machine: the
# load average is printed with them.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local

BIN=${BIN:-bin}
DURATION=${DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-64}
INVALID_CALLS=${INVALID_CALLS:-1000000}

# shellcheck source=bench-lib.sh
. scripts/bench-lib.sh

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

token=$("$BIN/gatehouse-authz-load" fixture -out "$work/authz.yaml")
authz_port=$(free_port) http_port=$(free_port) noop_port=$(free_port)
"$BIN/gatehouse-authz" --config-file="$work/authz.yaml" --data-dir="$work/data" \
  --grpc-addr="127.0.0.1:$authz_port" --http-addr="127.0.0.1:$http_port" --log-level=error &
authz_pid=$!
pids+=("$authz_pid")
"$BIN/gatehouse-authz-load" noop -addr "127.0.0.1:$noop_port" &
pids+=($!)
wait_port "$authz_port"
wait_port "$noop_port"

load() { "$BIN/gatehouse-authz-load" run -concurrency "$CONCURRENCY" -token "$token" "$@"; }

# Alternate the two servers so that drift of the machine hits both alike; keep the best run.
best_noop=0 best_authz=0
for round in 1 2; do
  n=$(load -addr "127.0.0.1:$noop_port" -duration "$DURATION")
  a=$(load -addr "127.0.0.1:$authz_port" -duration "$DURATION")
  echo "round $round noop:  $n"
  echo "round $round authz: $a"
  echo "round $round ratio: $(python3 -c "print(round($(json req_per_s <<<"$a") / $(json req_per_s <<<"$n"), 3))")"
  [ "$(json allowed <<<"$a")" = "$(json requests <<<"$a")" ] || { echo "authz refused calls of a valid token" >&2; exit 1; }
  best_noop=$(python3 -c "print(max($best_noop, $(json req_per_s <<<"$n")))")
  best_authz=$(python3 -c "print(max($best_authz, $(json req_per_s <<<"$a")))")
done
ratio=$(python3 -c "print(round($best_authz / $best_noop, 3))")

half=$(python3 -c "print(int($best_authz / 2))")
h=$("$BIN/gatehouse-authz-load" run -token "$token" -addr "127.0.0.1:$authz_port" -duration "$DURATION" \
  -rate "$half" -concurrency "${HALF_CONCURRENCY:-8}" -conns 1)
echo "half load ($half/s): $h"

rss_before=$(rss_kb "$authz_pid")
inv=$(load -addr "127.0.0.1:$authz_port" -invalid -requests "$INVALID_CALLS" -duration 10m -warmup 0)
rss_after=$(rss_kb "$authz_pid")
echo "invalid tokens: $inv"

cat <<REPORT

authz throughput      $(printf '%.0f' "$best_authz") req/s
no-op ext_authz       $(printf '%.0f' "$best_noop") req/s
ratio                 $ratio (target >= 0.85)
half load p50 / p99   $(json p50_us <<<"$h") us / $(json p99_us <<<"$h") us (target p99 < 1000 us)
RSS before / after    ${rss_before} kB / ${rss_after} kB across $(json requests <<<"$inv") invalid-token calls
load average          $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs
REPORT
