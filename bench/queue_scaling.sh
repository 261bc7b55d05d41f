#!/usr/bin/env bash
# Bulk work on two cores (issue 17, >= 1.8x): bench/queue_bench.sh without its sync round, with one
# queue worker and with two, ROUNDS times (default 3; odd rounds one worker first, even rounds two
# first, so a drift of the machine does not favour either), on a server of its own each time.
# Rates count from the re-embedding UPDATE's return (its commit: the rows become visible to the
# workers then) to the empty queue; also from the UPDATE's start. Prints each round's ratio and
# their mean +/- standard error; writes bench/results/queue-scaling.txt.
#   [SINGLE_CPUS=0] bench/queue_scaling.sh [ROUNDS] [N]
# SINGLE_CPUS: the one-worker server on those CPUs only (QUEUE_CPUS of queue_bench.sh), so its rate
# is one core's and not one worker's with autovacuum and the WAL writer on the other core.
source "$(dirname "$0")/../scripts/lib.sh"
ROUNDS=${1:-3}
N=${2:-10000}
SINGLE_CPUS=${SINGLE_CPUS:-}
OUT="$ROOT/bench/results/queue-scaling${SINGLE_CPUS:+-pinned}.txt"
update_ms() { sed -n 's/^deferred: UPDATE of [0-9]* products returned after \([0-9]*\) ms.*/\1/p' "$1"; }
rate() { awk -F'[( ]' -v key="$2" 'index($0, key) == 1 { for (i = 1; i <= NF; i++) if ($i == "products/s" || $i == "products/s)") { print $(i - 1); exit } }' "$1"; }
{
  echo "queue scaling: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet || echo -dirty), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "command: ${SINGLE_CPUS:+SINGLE_CPUS=$SINGLE_CPUS }bench/queue_scaling.sh $ROUNDS $N (bench/queue_bench.sh $N with QUEUE_SKIP_SYNC=1, QUEUE_WORKERS 1${SINGLE_CPUS:+ on CPU(s) $SINGLE_CPUS} then 2 on every core, per round)"
  echo "round | 1 worker from commit | 2 workers from commit | ratio | 1 worker from UPDATE | 2 workers from UPDATE | ratio | UPDATE ms, 1 / 2 workers"
} > "$OUT.tmp"
: > "$RUN/queue-scaling-vacuum.txt"
for r in $(seq "$ROUNDS"); do
  order="1 2"; [ $((r % 2)) = 1 ] || order="2 1"
  for w in $order; do
    cpus=""; [ "$w" = 2 ] || cpus=$SINGLE_CPUS
    QUEUE_SKIP_SYNC=1 QUEUE_WORKERS=$w QUEUE_CPUS=$cpus bash "$ROOT/bench/queue_bench.sh" "$N" >/dev/null
  done
  c1=$(rate "$RUN/queue-scaling-1.txt" "from the UPDATE's commit"); c2=$(rate "$RUN/queue-scaling-2.txt" "from the UPDATE's commit")
  u1=$(rate "$RUN/queue-scaling-1.txt" "deferred:"); u2=$(rate "$RUN/queue-scaling-2.txt" "deferred:")
  for w in 1 2; do
    grep -h '^autovacuum' "$RUN/queue-scaling-$w.txt" | sed "s/^/  round $r, $w worker(s): /" >> "$RUN/queue-scaling-vacuum.txt"
    grep -h '^command' "$RUN/queue-scaling-$w.txt" | sed "s/.*the postmaster's/  round $r, $w worker(s): the postmaster's/" >> "$RUN/queue-scaling-vacuum.txt"
  done
  d1=$(update_ms "$RUN/queue-scaling-1.txt"); d2=$(update_ms "$RUN/queue-scaling-2.txt")
  awk -v r="$r" -v c1="$c1" -v c2="$c2" -v u1="$u1" -v u2="$u2" -v d1="$d1" -v d2="$d2" \
    'BEGIN { printf "%s | %s | %s | %.3f | %s | %s | %.3f | %s / %s\n", r, c1, c2, c2 / c1, u1, u2, u2 / u1, d1, d2 }' | tee -a "$OUT.tmp"
done
awk -F' [|] ' 'NR > 3 { n++; a += $4; aa += $4 * $4; b += $7; bb += $7 * $7 }
  END { if (n > 1) printf "mean ratio from commit %.3f +/- %.3f, from the UPDATE %.3f +/- %.3f (%d rounds; +/- is the standard error)\n",
        a / n, sqrt(sd(aa - a * a / n) / (n - 1) / n), b / n, sqrt(sd(bb - b * b / n) / (n - 1) / n), n }
  function sd(x) { return x > 0 ? x : 0 }' "$OUT.tmp" | tee -a "$OUT.tmp"
cat "$RUN/queue-scaling-vacuum.txt" >> "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
