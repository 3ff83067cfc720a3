#!/usr/bin/env bash
# Fan-out benchmark of tidewire-net (issue 14, "Speed").
#
#   crates/net/bench/fanout.sh [--quick]
#
# One publisher and N subscribers on one server. Each server runs in its own process on CPU 0
# (taskset); `fanout` (the publisher and every subscriber, one thread, verifying every
# message) runs on CPU 1 over loopback. Servers:
#   publish   tidewire_fanout: Context::publish to one topic
#   loop      tidewire_fanout --loop: the same server, a loop of Context::send
#   tt        tungstenite_fanout: tokio-tungstenite 0.30, a tokio::sync::broadcast channel
#             feeding one task per connection, on a single-threaded runtime (one core, like
#             tidewire). tungstenite has no permessage-deflate: no deflate row for it.
# For N = 1,000 and 10,000 (200 with --quick), 16 B and 1 KiB JSON-like text messages, and
# at 1 KiB also with permessage-deflate offered by every subscriber (16 B is below the
# server's default compression threshold of 32 B: it would go uncompressed, the same as the
# plain row). WINDOW (default 16) publishes in flight; 1 s warm-up, 4 s measured (0.5 s and
# 1 s with --quick). 16 B messages are also measured with WIDE_WINDOW (default 256)
# publishes in flight (not with --quick): with a window of W, each write to a subscriber
# carries up to W messages, so the kernel's cost per write (the same for publish and the
# loop) is shared by more deliveries and the engine's share of the CPU shows. Each case runs
# ROUNDS times (default 3, 1 with --quick), the servers interleaved; the table shows medians.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
warmup=1
duration=4
subs_list="1000 10000"
window=${WINDOW:-16}
rounds=${ROUNDS:-3}
wide_window=${WIDE_WINDOW:-256}
if [ "${1:-}" = "--quick" ]; then
    warmup=0.5
    duration=1
    subs_list=200
    wide_window=
    rounds=1
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
(cd "$here" && CARGO_TARGET_DIR="$CARGO_TARGET_DIR/bench" cargo build --quiet --release)
bin="$CARGO_TARGET_DIR/bench/release"

server_pid=
server_log=$(mktemp)
stop_server() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=
    fi
}
trap 'stop_server; rm -f "$server_log"' EXIT

# start_server NAME: starts it on CPU 0 and sets server_pid and port.
start_server() {
    : >"$server_log"
    case $1 in
        publish) taskset -c 0 "$bin/tidewire_fanout" --port 0 >"$server_log" 2>&1 & ;;
        loop) taskset -c 0 "$bin/tidewire_fanout" --port 0 --loop >"$server_log" 2>&1 & ;;
        tt) taskset -c 0 "$bin/tungstenite_fanout" --port 0 >"$server_log" 2>&1 & ;;
    esac
    server_pid=$!
    port=
    for _ in $(seq 100); do
        port=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$server_log" | head -1)
        [ -n "$port" ] && break
        sleep 0.05
    done
    [ -n "$port" ] || { echo "server $1 did not start" >&2; exit 1; }
}

field() { sed -n "s/\(^\|.* \)$1=\([^ ]*\).*/\2/p"; }

# run_case SERVER SUBS SIZE WINDOW [FLAGS...]: one measurement; sets result to fanout's
# key=value line.
run_case() {
    local srv=$1 subs=$2 size=$3 w=$4 totals
    shift 4
    start_server "$srv"
    result=$(taskset -c 1 "$bin/fanout" --port "$port" --server-pid "$server_pid" \
        --subs "$subs" --size "$size" --window "$w" --warmup "$warmup" \
        --duration "$duration" "$@")
    # tidewire prints its totals when the publisher leaves: nothing may have been skipped
    # or refused.
    if [ "$srv" != tt ]; then
        for _ in $(seq 20); do
            grep -q '^published=' "$server_log" && break
            sleep 0.05
        done
        totals=$(grep '^published=' "$server_log" || true)
        case $totals in
            *" skipped_slow=0 closed_slow=0 not_open=0 "*) ;;
            *) echo "server $srv: unexpected totals: $totals" >&2; exit 1 ;;
        esac
    fi
    stop_server
}

started=$(date +%s)
echo "fan-out: 1 publisher, N subscribers, W publishes in flight, ${duration} s measured, $rounds rounds"
echo "(medians; the servers interleaved);"
echo "server on CPU 0, publisher + subscribers (one thread, every message verified) on CPU 1"
echo
echo '| N | size | deflate | W | server | deliveries/s | server ns/delivery | publish vs loop: rate | publish vs loop: CPU | client CPU | server RSS idle | peak RSS growth | growth per publish in flight |'
echo '| ---: | ---: | :---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'
for subs in $subs_list; do
    for size in 16 1024; do
        modes="plain"
        [ "$size" -ge 1024 ] && modes="plain deflate"
        [ "$size" -lt 1024 ] && [ -n "$wide_window" ] && modes="plain wide"
        for mode in $modes; do
            servers="publish loop tt"
            flags=()
            w=$window
            if [ "$mode" = deflate ]; then
                servers="publish loop"
                flags=(--deflate)
            elif [ "$mode" = wide ]; then
                w=$wide_window
            fi
            # Every server runs ROUNDS times, the servers interleaved; a row shows the round
            # with the median CPU per delivery, and the ratios are those of the medians.
            declare -A out=()
            for round in $(seq "$rounds"); do
                for srv in $servers; do
                    run_case "$srv" "$subs" "$size" "$w" "${flags[@]}"
                    out[$srv.$round]=$result
                done
            done
            declare -A rate=() cpu=()
            for srv in $servers; do
                median_round=$(for round in $(seq "$rounds"); do
                    echo "$(echo "${out[$srv.$round]}" | field server_ns_per_delivery) $round"
                done | sort -n | awk -v n="$rounds" 'NR == int((n + 1) / 2) { print $2 }')
                o=${out[$srv.$median_round]}
                rate[$srv]=$(for round in $(seq "$rounds"); do
                    echo "${out[$srv.$round]}" | field deliveries_per_s
                done | sort -n | awk -v n="$rounds" 'NR == int((n + 1) / 2)')
                cpu[$srv]=$(echo "$o" | field server_ns_per_delivery)
                ratio_rate=
                ratio_cpu=
                if [ "$srv" = loop ]; then
                    ratio_rate=$(awk -v a="${rate[publish]}" -v b="${rate[loop]}" 'BEGIN { printf "%.2fx", a / b }')
                    ratio_cpu=$(awk -v a="${cpu[publish]}" -v b="${cpu[loop]}" 'BEGIN { printf "%.2fx", a / b }')
                    # The CPU ratio of each round, publish and loop of the same round.
                    ratio_cpu="$ratio_cpu ($(for round in $(seq "$rounds"); do
                        awk -v a="$(echo "${out[publish.$round]}" | field server_ns_per_delivery)" \
                            -v b="$(echo "${out[loop.$round]}" | field server_ns_per_delivery)" \
                            'BEGIN { printf "%.2f ", a / b }'
                    done | sed 's/ $//'))"
                fi
                printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s %% | %s MiB | %s MiB | %s KiB |\n' \
                    "$subs" "$size" "$([ "$mode" = deflate ] && echo yes || echo no)" "$w" \
                    "$srv" "${rate[$srv]}" "${cpu[$srv]}" "$ratio_rate" "$ratio_cpu" \
                    "$(echo "$o" | field client_cpu_pct)" \
                    "$(awk -v k="$(echo "$o" | field server_rss_idle_kib)" 'BEGIN { printf "%.1f", k / 1024 }')" \
                    "$(awk -v k="$(echo "$o" | field server_rss_peak_growth_kib)" 'BEGIN { printf "%.1f", k / 1024 }')" \
                    "$(echo "$o" | field growth_kib_per_publish_in_flight)"
            done
            unset out rate cpu
        done
    done
done
echo
echo "ratios: publish / loop, deliveries per second (above 1: publish faster) and server CPU per"
echo "delivery (below 1: publish cheaper); in brackets, the CPU ratio of each round."
echo "client CPU: the share of CPU 1 the publisher and subscribers used (near 100 %: they set the pace)."
echo "peak RSS growth: the server's peak resident size while publishing above its size with"
echo "every subscriber connected and idle; per publish in flight: that divided by W."
echo "duration: $(($(date +%s) - started)) s"
