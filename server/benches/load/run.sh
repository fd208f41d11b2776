#!/usr/bin/env bash
# The collector under load from a real HTTP load generator, wrk (Debian's `wrk`,
# installed here if missing): uploads/s and latency percentiles of distinct ~1 KB
# reports (upload.lua) against the release binary, at several connection counts, on
# file storage and on S3 (moto's server, as the tests use it). Each point gets a
# fresh store and a fresh server. Prints one table; the raw wrk output is kept in
# the work directory it names.
#
#   server/benches/load/run.sh                  # 16, 64, 256 connections; file and s3
#   CONNS="64" STORES=file DURATION=20s server/benches/load/run.sh
#
# Variables: CONNS (default "16 64 256"), STORES ("file s3"), DURATION (10s),
# THREADS (wrk threads, 2), FILE_ROOT (where file stores go: default a temp dir on
# the disk; /dev/shm takes the disk out). Needs Linux, root or sudo for apt-get if
# wrk is missing, and moto_server (.ci/install-moto) for the s3 rows. Every request
# goes to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/../../.."

CONNS=${CONNS:-"16 64 256"}
STORES=${STORES:-"file s3"}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
script="$PWD/server/benches/load/upload.lua"

if ! command -v wrk >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends wrk
fi
cargo build --release --quiet -p telemetry-server --bin telemetry-server
bin="${CARGO_TARGET_DIR:-$PWD/target}/release/telemetry-server"

work=$(mktemp -d "${TMPDIR:-/tmp}/telemetry-load.XXXXXX")
file_root=${FILE_ROOT:-$work}
WEEK=$(date -u -d '2 days ago' +%F)
export WEEK
cat >"$work/config.json" <<'JSON'
{"OS": ["linux"], "Arch": ["x86_64"], "Toolchain": ["1.95.0"], "SampleRate": 1,
 "Programs": [{"Name": "mytool", "Versions": ["1.0.0"],
   "Counters": [{"Name": "mytool/flag:{a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t}", "Rate": 1}],
   "Stacks": [{"Name": "mytool/bug", "Rate": 1}]}]}
JSON

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# A free loopback port.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() { # URL: until it answers, at most 30 s
    for _ in $(seq 300); do
        curl -s -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "no answer from $1" >&2
    return 1
}

moto_port=
if [[ " $STORES " == *" s3 "* ]]; then
    moto_port=$(free_port)
    moto_server -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
    pids+=($!)
    wait_for "http://127.0.0.1:$moto_port/"
    curl -s -X PUT "http://127.0.0.1:$moto_port/load" >/dev/null
fi

printf '%-5s %6s %10s %9s %9s %8s %9s  %s\n' store conns uploads/s p50_ms p99_ms errors stored load
for store in $STORES; do
    for conns in $CONNS; do
        port=$(free_port)
        case $store in
        file) url="file://$file_root/data-$conns" ;;
        s3) url="s3://load/run-$conns-$RANDOM" ;;
        *) echo "unknown store $store" >&2; exit 2 ;;
        esac
        AWS_ACCESS_KEY_ID=load AWS_SECRET_ACCESS_KEY=load AWS_REGION=us-east-1 \
            AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port" AWS_ALLOW_HTTP=true \
            "$bin" serve --listen "127.0.0.1:$port" --config "$work/config.json" \
            --storage "$url" --merge-every-hours 0 --log-level warn \
            2>"$work/server-$store-$conns.log" &
        server=$!
        pids+=("$server")
        wait_for "http://127.0.0.1:$port/healthz"
        load=$(cut -d' ' -f1 /proc/loadavg)
        wrk -t"$THREADS" -c"$conns" -d"$DURATION" --timeout 10s -s "$script" \
            "http://127.0.0.1:$port" >"$work/wrk-$store-$conns.txt"
        kill "$server"
        wait "$server" || true
        result=$(grep '^RESULT' "$work/wrk-$store-$conns.txt")
        get() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$result"; }
        requests=$(get requests)
        errors=$(($(get errors_connect) + $(get errors_read) + $(get errors_write) + $(get errors_status) + $(get errors_timeout)))
        if [ "$store" = file ]; then
            stored=$(find "$file_root/data-$conns/uploaded" -name '*.json' | wc -l)
        else
            stored=-
        fi
        awk -v s="$store" -v c="$conns" -v r="$requests" -v d="$(get duration_us)" \
            -v p50="$(get p50_us)" -v p99="$(get p99_us)" -v e="$errors" -v st="$stored" -v l="$load" \
            'BEGIN { printf "%-5s %6d %10.0f %9.2f %9.2f %8d %9s  %s\n", s, c, r / (d / 1e6), p50 / 1000, p99 / 1000, e, st, l }'
    done
done

# The merge of the largest file store: how long a day of that many reports takes,
# and what it stores (for sizing).
if [[ " $STORES " == *" file "* ]]; then
    largest=$(for c in $CONNS; do
        echo "$(find "$file_root/data-$c/uploaded" -name '*.json' | wc -l) $c"
    done | sort -n | tail -1 | cut -d' ' -f2)
    store="$file_root/data-$largest"
    started=$(date +%s.%N)
    "$bin" merge --storage "file://$store" --log-level warn >"$work/merge.txt"
    ended=$(date +%s.%N)
    reports=$(sed -n 's/.*merged \([0-9]*\) reports.*/\1/p' "$work/merge.txt")
    bytes() { find "$store/$1" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }'; }
    awk -v r="$reports" -v s="$(echo "$ended - $started" | bc)" -v u="$(bytes uploaded)" \
        -v m="$(bytes merged)" -v p="$(bytes parquet)" 'BEGIN {
        printf "merge: %d reports in %.1f s (%.0f reports/s); bytes per report: uploaded %.0f, merged %.0f, parquet %.0f\n",
            r, s, r / s, u / r, m / r, p / r }'
fi
echo "raw output: $work"
