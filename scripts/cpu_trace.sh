#!/usr/bin/env bash
# CPU used per process name, once a second, for N seconds (from /proc utime+stime):
#   scripts/cpu_trace.sh 45 &   build/bench/saga_bench 60000
# Prints lines like "t=12 beam.smp=1.87 redis-server=0.71 sagaflow=0.39" (cores).
set -u
seconds="${1:-30}"
snap() {
  for p in /proc/[0-9]*; do
    c=$(cat "$p/comm" 2>/dev/null) || continue
    read -r -a s < <(cut -d' ' -f14,15 "$p/stat" 2>/dev/null)
    echo "${c// /_} ${s[0]:-0} ${s[1]:-0}"
  done | awk '{a[$1]+=$2+$3} END {for (k in a) print k, a[k]}' | sort
}
prev=$(mktemp) now=$(mktemp)
trap 'rm -f "$prev" "$now"' EXIT
snap >"$prev"
hz=$(getconf CLK_TCK)
for i in $(seq 1 "$seconds"); do
  sleep 1
  snap >"$now"
  echo "t=$i $(join "$prev" "$now" | awk -v hz="$hz" '{d=($3-$2)/hz; if (d>0.04) printf "%s=%.2f ", $1, d}')"
  cp "$now" "$prev"
done
