#!/usr/bin/env bash
# Measures the authz sidecar with the Redis limiter backend against the in-memory backend in the
# same run, on one loopback Redis this script starts: throughput and latency under the same load,
# latency at half of each one's own throughput, and the Redis round trips each decision takes.
#
# The fixture's token gets an access policy with a rate limit and a quota that never refuse
# (fixture -rate-limit), so the limiter decides every call; the script fails if a call is refused,
# errs, or if the Redis limiter fell back to its local fail mode, since its numbers would then not
# be Redis's.
#
# Round trips: `INFO commandstats` calls of EVALSHA and EVAL (the limiter's only decision commands)
# are read before and after every Redis run and divided by the Check calls the load generator made.
# Measured runs use -warmup 0 so that every call Redis saw is counted; each server gets one
# unmeasured warm-up run first.
#
# Environment: DURATION (default 10s per run), CONCURRENCY (64 calls in flight for throughput),
# HALF_CONCURRENCY (8 calls in flight at half load), ROUNDS (2: memory and Redis alternate, the
# best run of each counts), RATE_LIMIT (1000000 per second, the most the limiters keep exact),
# BIN (bin), REDIS_SERVER and REDIS_CLI (found on PATH by default). The numbers are only as quiet
# as the machine: the load average is printed with them.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local

BIN=${BIN:-bin}
DURATION=${DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-64}
HALF_CONCURRENCY=${HALF_CONCURRENCY:-8}
ROUNDS=${ROUNDS:-2}
RATE_LIMIT=${RATE_LIMIT:-1000000}

REDIS_SERVER=${REDIS_SERVER:-redis-server}
REDIS_CLI=${REDIS_CLI:-redis-cli}
for tool in "$REDIS_SERVER" "$REDIS_CLI" python3 curl; do
  command -v "$tool" >/dev/null || {
    echo "bench-authz-redis: $tool not found; install it (Debian: apt-get install redis-server curl)" >&2
    exit 1
  }
done

# shellcheck source=bench-lib.sh
. scripts/bench-lib.sh
trap 'exit 130' INT TERM

calc() { python3 -c "print($1)"; }
# cpu_us PID: the user+system CPU time a process has used, in microseconds. CPU per decision
# tells the backends apart even when a busy machine blurs their throughput.
cpu_us() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) * 1000000 / hz}' "/proc/$1/stat"; }

# Redis: no persistence, so that only the limiter's work is measured.
redis_port=$(free_port)
"$REDIS_SERVER" --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
  --daemonize no --logfile "$work/redis.log" &
redis_server_pid=$!
pids+=("$redis_server_pid")
for _ in $(seq 100); do "$REDIS_CLI" -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
"$REDIS_CLI" -p "$redis_port" ping >/dev/null 2>&1 || { echo "redis-server did not start:" >&2; cat "$work/redis.log" >&2; exit 1; }

# cmdcalls prints "command calls" for every command Redis has served. Commands a script runs are
# counted too, so the breakdown shows the decision script's GET/SET/INCR/PEXPIRE next to the one
# EVALSHA that carried them; INFO is this script's own.
cmdcalls() {
  "$REDIS_CLI" -p "$redis_port" info commandstats | tr -d '\r' |
    awk -F'[:=,]' '/^cmdstat_/ && $1 != "cmdstat_info" {sub(/^cmdstat_/, "", $1); print $1, $3}'
}
declare -A cmd_delta=()
token=$("$BIN/gatehouse-authz-load" fixture -out "$work/authz.yaml" -rate-limit "$RATE_LIMIT")

# start_authz NAME FLAGS...: starts a sidecar and sets NAME_grpc and NAME_http to its ports.
start_authz() {
  local name=$1 grpc http
  shift
  grpc=$(free_port) http=$(free_port)
  "$BIN/gatehouse-authz" --config-file="$work/authz.yaml" --data-dir="$work/$name" \
    --grpc-addr="127.0.0.1:$grpc" --http-addr="127.0.0.1:$http" --log-level=warn "$@" \
    2>"$work/$name.log" &
  pids+=($!)
  printf -v "${name}_pid" %s "$!"
  printf -v "${name}_grpc" %s "$grpc"
  printf -v "${name}_http" %s "$http"
  wait_port "$grpc"
}
start_authz memory --limiter=memory
start_authz redis --limiter=redis --redis-addr="127.0.0.1:$redis_port"

# metric PORT NAME: the sum of a Prometheus metric's samples (NAME may carry labels).
metric() {
  curl -fsS "http://127.0.0.1:$1/metrics" |
    awk -v m="$2" 'index($0, m) == 1 && (substr($0, length(m) + 1, 1) ~ /[ {]/ || m ~ /}$/) {n += $NF} END {print n + 0}'
}
limit_ok() { metric "$1" 'gatehouse_limit_decisions_total{result="ok"}'; }

# load ADDR FLAGS...: one measured run, its JSON left in $res; fails on any call that errs or is
# not allowed. Called in the script's own shell (never in $(...)) so that redis_load's counts stay.
res=''
load() {
  res=$("$BIN/gatehouse-authz-load" run -token "$token" -warmup 0 -addr "$@")
  if [ "$(json errors <<<"$res")" != 0 ] || [ "$(json allowed <<<"$res")" != "$(json requests <<<"$res")" ]; then
    echo "calls of a valid token under a policy that never refuses were refused or failed: $res" >&2
    exit 1
  fi
}

# Check calls per sidecar, to compare with the limiter decisions each counted.
mem_checks=0 redis_checks=0
mem_load() {
  load "$@"
  mem_checks=$((mem_checks + $(json requests <<<"$res") + $(json errors <<<"$res")))
}

# redis_load is load bracketed by commandstats; cmd_delta sums the commands of all Redis runs.
redis_load() {
  local before after name n
  before=$(cmdcalls)
  load "$@"
  after=$(cmdcalls)
  redis_checks=$((redis_checks + $(json requests <<<"$res") + $(json errors <<<"$res")))
  while read -r name n; do cmd_delta[$name]=$(( ${cmd_delta[$name]:-0} + n )); done <<<"$after"
  while read -r name n; do [ -n "$name" ] && cmd_delta[$name]=$(( ${cmd_delta[$name]:-0} - n )); done <<<"$before"
}

mem_ok0=$(limit_ok "$memory_http") redis_ok0=$(limit_ok "$redis_http")
mem_cpu0=$(cpu_us "$memory_pid") redis_cpu0=$(cpu_us "$redis_pid") server_cpu0=$(cpu_us "$redis_server_pid")
mem_load "127.0.0.1:$memory_grpc" -concurrency "$CONCURRENCY" -duration 1s
redis_load "127.0.0.1:$redis_grpc" -concurrency "$CONCURRENCY" -duration 1s

best_mem=0 best_redis=0 best_mem_run='' best_redis_run=''
for round in $(seq "$ROUNDS"); do
  mem_load "127.0.0.1:$memory_grpc" -concurrency "$CONCURRENCY" -duration "$DURATION"
  m=$res
  redis_load "127.0.0.1:$redis_grpc" -concurrency "$CONCURRENCY" -duration "$DURATION"
  r=$res
  echo "round $round memory: $m"
  echo "round $round redis:  $r"
  echo "round $round ratio:  $(calc "round($(json req_per_s <<<"$r") / $(json req_per_s <<<"$m"), 3)")"
  if [ "$(calc "int($(json req_per_s <<<"$m") > $best_mem)")" = 1 ]; then
    best_mem=$(json req_per_s <<<"$m") best_mem_run=$m
  fi
  if [ "$(calc "int($(json req_per_s <<<"$r") > $best_redis)")" = 1 ]; then
    best_redis=$(json req_per_s <<<"$r") best_redis_run=$r
  fi
done

half_mem=$(calc "int($best_mem / 2)") half_redis=$(calc "int($best_redis / 2)")
mem_load "127.0.0.1:$memory_grpc" -duration "$DURATION" -rate "$half_mem" -concurrency "$HALF_CONCURRENCY" -conns 1
hm=$res
redis_load "127.0.0.1:$redis_grpc" -duration "$DURATION" -rate "$half_redis" -concurrency "$HALF_CONCURRENCY" -conns 1
hr=$res
echo "half load memory ($half_mem/s): $hm"
echo "half load redis ($half_redis/s):  $hr"

# Every Check of the fixture's token must have been decided by the limiter, and the Redis one
# must never have left Redis for its fail mode.
mem_cpu=$(calc "round(($(cpu_us "$memory_pid") - $mem_cpu0) / $mem_checks, 1)")
redis_cpu=$(calc "round(($(cpu_us "$redis_pid") - $redis_cpu0) / $redis_checks, 1)")
server_cpu=$(calc "round(($(cpu_us "$redis_server_pid") - $server_cpu0) / $redis_checks, 1)")
mem_decided=$(calc "$(limit_ok "$memory_http") - $mem_ok0")
redis_decided=$(calc "$(limit_ok "$redis_http") - $redis_ok0")
redis_errors=$(metric "$redis_http" gatehouse_limit_backend_errors_total)
redis_fallback=$(metric "$redis_http" gatehouse_limit_fallback_active)

# Round trips: the script commands are the decisions' round trips; any other command a client
# sent (a reconnect's HELLO, a SCRIPT LOAD) is one more. GET/SET/INCR/PEXPIRE run inside the script.
trips=$(( ${cmd_delta[evalsha]:-0} + ${cmd_delta[eval]:-0} ))
other=0 breakdown=''
for name in $(printf '%s\n' "${!cmd_delta[@]}" | sort); do
  n=${cmd_delta[$name]}
  [ "$n" = 0 ] && continue
  breakdown+=" $name=$(calc "'%.3g' % ($n / $redis_checks)")"
  case $name in
    evalsha | eval) ;;
    get | set | incr | pexpire) ;;
    *) other=$((other + n)) ;;
  esac
done

ratio() { calc "round($(json "$1" <<<"$3") / $(json "$1" <<<"$2"), 3)"; }
cat <<REPORT

                      memory        redis         redis/memory
$(printf '%-22s' "req/s ($CONCURRENCY in flight)")$(printf '%-13.0f %-13.0f' "$best_mem" "$best_redis") $(ratio req_per_s "$best_mem_run" "$best_redis_run")
p50 us                $(printf '%-13s %-13s' "$(json p50_us <<<"$best_mem_run")" "$(json p50_us <<<"$best_redis_run")") $(ratio p50_us "$best_mem_run" "$best_redis_run")
p99 us                $(printf '%-13s %-13s' "$(json p99_us <<<"$best_mem_run")" "$(json p99_us <<<"$best_redis_run")") $(ratio p99_us "$best_mem_run" "$best_redis_run")
half load             $(printf '%-13s %-13s' "$half_mem/s" "$half_redis/s")
half load p50 us      $(printf '%-13s %-13s' "$(json p50_us <<<"$hm")" "$(json p50_us <<<"$hr")") $(ratio p50_us "$hm" "$hr")
half load p99 us      $(printf '%-13s %-13s' "$(json p99_us <<<"$hm")" "$(json p99_us <<<"$hr")") $(ratio p99_us "$hm" "$hr")
sidecar CPU us/call   $(printf '%-13s %-13s' "$mem_cpu" "$redis_cpu") $(calc "round($redis_cpu / $mem_cpu, 3)") (redis-server: $server_cpu us per decision more)
limiter decisions     $(printf '%-13s %-13s' "$(printf '%.0f' "$mem_decided")/$mem_checks" "$(printf '%.0f' "$redis_decided")/$redis_checks") (ok decisions / Check calls)

Redis round trips     $(calc "round(($trips + $other) / $redis_checks, 4)") per decision (target 1): $trips EVALSHA+EVAL and $other other commands for $redis_checks Check calls
Redis commands        per decision:$breakdown (GET/SET/INCR/PEXPIRE inside the script)
Redis limiter         $(printf '%.0f' "$redis_errors") backend errors, fallback active now: $(printf '%.0f' "$redis_fallback")
load average          $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs; Redis $("$REDIS_SERVER" --version | sed 's/.*v=\([^ ]*\).*/\1/')
REPORT

if [ "$(printf '%.0f' "$redis_errors")" != 0 ] || [ "$(printf '%.0f' "$redis_fallback")" != 0 ]; then
  echo "the Redis limiter failed calls or fell back to its fail mode: its numbers are not Redis's" >&2
  exit 1
fi
if [ "$(printf '%.0f' "$mem_decided")" != "$mem_checks" ] || [ "$(printf '%.0f' "$redis_decided")" != "$redis_checks" ]; then
  echo "a sidecar decided calls without its limiter: the backends were not measured" >&2
  exit 1
fi
