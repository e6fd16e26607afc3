#!/bin/bash
# Counts a worker's system calls, by kind, over its whole life (perf stat on syscall
# tracepoints: needs root or perf_event_paranoid <= -1). Use it as the benchmarks' binary:
#
#   SF_BIN=build/app/sagaflow SAGAFLOW_BINARY=bench/count_syscalls.sh build/bench/saga_bench 20000 1
#
# Each `sagaflow worker` the benchmark starts writes its counts to
# ${SF_OUT:-/tmp}/syscalls.<pid>.txt (perf stat's CSV: count,,event,...); every other
# subcommand runs as is. A SIGTERM or SIGINT for the worker is passed on to it, so perf
# stat ends with it and writes its counts.
set -u
bin=${SF_BIN:?SF_BIN: the sagaflow binary to run}
if [ "${1:-}" != "worker" ]; then exec "$bin" "$@"; fi
unset LD_PRELOAD
events=raw_syscalls:sys_enter
for s in epoll_wait epoll_ctl setsockopt sendto recvfrom write read; do
  events="$events,syscalls:sys_enter_$s"
done
perf stat -x, -o "${SF_OUT:-/tmp}/syscalls.$$.txt" -e "$events" "$bin" "$@" &
perf_pid=$!
trap 'kill -TERM $(pgrep -P $perf_pid) 2>/dev/null' TERM INT
wait $perf_pid  # returns early when a trapped signal arrives
wait $perf_pid
