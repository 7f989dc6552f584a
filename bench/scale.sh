#!/usr/bin/env bash
# glaciersync scale benchmark (issue 10): SCALE files of 0-200 random bytes, 1,000 per directory,
# local backend, default settings, warm cache. glaciersync beside restic and `find`, every figure
# from this one run, one run of each (a million files takes minutes). Prints a markdown table.
#
#   SCALE=100000 bash bench/run.sh        # run.sh hands over to this script when SCALE is set
#   SCALE=1000000 BENCH_DIR=/mnt/big/gss bash bench/scale.sh
#   # A noisy disk decides wall times; a tmpfs (8 GiB holds a million files) takes it out:
#   mount -t tmpfs -o size=8g tmpfs /mnt/gs && SCALE=1000000 BENCH_DIR=/mnt/gs/b bash bench/scale.sh
#
# Environment: SCALE (files, default 100000), BENCH_DIR (default /tmp/glaciersync-scale),
# KEEP=1, NO_RESTIC=1 (skip restic), GLACIERSYNC (binary), CARGO_TARGET_DIR.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
n=${SCALE:-100000}
work=${BENCH_DIR:-/tmp/glaciersync-scale}
keep=${KEEP:-0}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/glaciersync/target}"

say() { printf '== %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

need=()
[ "${NO_RESTIC:-0}" = 1 ] || command -v restic >/dev/null 2>&1 || need+=(restic)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  apt-get install -y "${need[@]}" >&2 || { apt-get update >&2 && apt-get install -y "${need[@]}" >&2; }
fi
if [ -n "${GLACIERSYNC:-}" ]; then
  gs=$GLACIERSYNC
else
  say "cargo build --release"
  (cd "$repo" && cargo build --release --quiet) >&2
  gs=$CARGO_TARGET_DIR/release/glaciersync
fi

marker=.glaciersync-scale
if [ -e "$work" ] && [ ! -e "$work/$marker" ] && [ -n "$(ls -A "$work" 2>/dev/null)" ]; then
  die "$work exists and is not a work dir of this script: choose another BENCH_DIR"
fi
rm -rf "$work"
mkdir -p "$work/logs"
touch "$work/$marker"
work=$(cd "$work" && pwd)
trap '[ "$keep" = 1 ] && say "kept $work" || rm -rf "$work"' EXIT
tree=$work/tree
logs=$work/logs

declare -A secs rss
measure() { # measure NAME CMD...
  local name=$1 t0 t1 rc=0
  shift
  sync
  t0=$(date +%s%N)
  /usr/bin/time -v -o "$logs/$name.time" "$@" >"$logs/$name.out" 2>"$logs/$name.err" || rc=$?
  t1=$(date +%s%N)
  [ "$rc" -eq 0 ] || { tail -n 20 "$logs/$name.err" >&2; die "$name failed (exit $rc): $*"; }
  secs[$name]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
  rss[$name]=$(awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$logs/$name.time")
  say "$name: ${secs[$name]} s, ${rss[$name]} MiB"
}

say "generating $n files of 0-200 random bytes, 1000 per directory, under $tree"
python3 - "$tree" "$n" <<'EOF'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(20261201)
for i in range(n):
    d = os.path.join(root, f"d{i // 1000:05}")
    if i % 1000 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:07}.bin"), "wb") as f:
        f.write(os.urandom(rng.randint(0, 200)))
EOF
say "warming the caches"
find "$tree" -printf '%s %T@\n' >/dev/null
cat >"$work/bench.ini" <<EOF
[global]
database_dir = $work/db

[bench]
local_dir = $work/store
path = $tree
EOF
gsc=("$gs" -c "$work/bench.ini")
catalog=$work/db/bench.sqlite3

measure find find "$tree" -printf '%s %T@\n'
measure gs_first "${gsc[@]}" --json sync
full_copy=$(du -sb "$work/store/catalog" | cut -f1)
first_catalog=$(stat -c %s "$catalog")
measure gs_noop "${gsc[@]}" --json sync
measure find2 find "$tree" -printf '%s %T@\n'
measure gs_noop2 "${gsc[@]}" --json sync
catalog_bytes=$(stat -c %s "$catalog")
store_catalog_before=$(du -sb "$work/store/catalog" | cut -f1)
echo changed >"$tree/d00000/f0000000.bin"
measure gs_one "${gsc[@]}" --json sync
store_catalog_after=$(du -sb "$work/store/catalog" | cut -f1)
one_copy=$((store_catalog_after - store_catalog_before))
measure gs_ls sh -c '"$@" ls | wc -l' sh "${gsc[@]}"
measure gs_status "${gsc[@]}" status
measure gs_restore_dir "${gsc[@]}" restore --to "$work/restored" 'path/d00001/**'
restored=$(find "$work/restored" -type f | wc -l)
if [ "${NO_RESTIC:-0}" != 1 ]; then
  export RESTIC_PASSWORD=x RESTIC_REPOSITORY=$work/restic-repo RESTIC_CACHE_DIR=$work/restic-cache
  restic init >/dev/null
  measure restic_first restic backup "$tree"
  measure restic_noop restic backup "$tree"
fi

r() { echo "${secs[$1]:-} | ${rss[$1]:-}"; }
echo "## glaciersync scale benchmark, $n files, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "- $(nproc) cores; load average at the end $(cut -d' ' -f1-3 /proc/loadavg); work dir on $(df -PT "$work" | awk 'NR == 2 { print $2 }')"
echo "- glaciersync at $(git -C "$repo" rev-parse --short HEAD); $(restic version 2>/dev/null | awk '{ print $1, $2 }')"
echo
echo "| measurement | seconds | peak RSS MiB |"
echo "|---|---:|---:|"
echo "| find stat walk (two runs) | ${secs[find]}, ${secs[find2]} | ${rss[find]} |"
echo "| glaciersync first sync | $(r gs_first) |"
echo "| glaciersync no-change sync (two runs) | ${secs[gs_noop]}, ${secs[gs_noop2]} | ${rss[gs_noop]}, ${rss[gs_noop2]} |"
echo "| glaciersync sync after one file changed | $(r gs_one) |"
echo "| restic first backup | $(r restic_first) |"
echo "| restic no-change backup | $(r restic_noop) |"
echo "| \`ls \| wc -l\` ($(cat "$logs/gs_ls.out") lines) | $(r gs_ls) |"
echo "| \`status\` | $(r gs_status) |"
echo "| restore of one directory ($restored files) | $(r gs_restore_dir) |"
echo
echo "- catalog on disk after the no-change syncs: $catalog_bytes B ($((catalog_bytes / n)) B a file)"
echo "- full catalog copy stored by the first sync (zstd): $full_copy B ($(awk -v a="$full_copy" -v b="$first_catalog" 'BEGIN { printf "%.1f", 100 * a / b }') % of the $first_catalog B catalog)"
echo "- catalog backup uploaded by the sync that changed one file: $one_copy B ($(awk -v a="$one_copy" -v b="$catalog_bytes" 'BEGIN { printf "%.2f", 100 * a / b }') % of the catalog)"
echo "- store: $(du -sm "$work/store" | cut -f1) MiB; catalog copies in it: $(find "$work/store/catalog" -type f | wc -l)"
