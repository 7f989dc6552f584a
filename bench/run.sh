#!/usr/bin/env bash
# glaciersync benchmark: speed and memory against find, cp -a and restic, on one generated tree.
# Every figure comes from this one run. Prints a markdown table on stdout (progress on stderr)
# and exits 0 even when a target is missed (it is a report); it exits non-zero only when the
# benchmark itself cannot be trusted (a tool failed, or the restore differs from the source).
#
#   bash bench/run.sh                       # work dir /tmp/glaciersync-bench, removed at the end
#   BENCH_DIR=/mnt/big/gsb KEEP=1 bash bench/run.sh
#
# Environment:
#   BENCH_DIR          work dir (default /tmp/glaciersync-bench); created, and removed at the end
#   KEEP=1             keep the work dir
#   REPEAT             runs of each timed figure but the 4 MiB/4 GiB ones (default 5); the table
#                      gives the time of STAT, the other times beside it, and the largest peak RSS
#   STAT               min (default: the run least disturbed by other load on the machine) or
#                      median; the targets are judged on it
#   CARGO_TARGET_DIR   where the release binary is built (default ~/.cache/glaciersync/target)
#   GLACIERSYNC        use this binary instead of building one
# See bench/README.md for what is measured and the last results.
set -euo pipefail

# SCALE=N: the scale benchmark (N small files, 1,000 per directory): bench/scale.sh.
if [ -n "${SCALE:-}" ]; then
  exec bash "$(dirname "$0")/scale.sh"
fi

repo=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_DIR:-/tmp/glaciersync-bench}
keep=${KEEP:-0}
repeat=${REPEAT:-5}
stat=${STAT:-min}
case $stat in min | median) ;; *) echo "bench: STAT is min or median, not $stat" >&2; exit 2 ;; esac
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/glaciersync/target}"

# The tree: small_files random files of 1-8 KiB over dirs directories, plus big_files random
# files of big_mib MiB each. Sizes come from a fixed seed; the bytes are random.
small_files=10000
dirs=100
big_files=5
big_mib=50
# Targets.
rss_limit_mib=100
sparse_rss_slack_mib=20

say() { printf '== %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------- prerequisites
need_pkgs=()
command -v restic >/dev/null 2>&1 || need_pkgs+=(restic)
[ -x /usr/bin/time ] || need_pkgs+=(time)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  say "installing ${need_pkgs[*]}"
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  if ! "${sudo[@]}" apt-get install -y "${need_pkgs[@]}" >&2; then
    "${sudo[@]}" apt-get update >&2
    "${sudo[@]}" apt-get install -y "${need_pkgs[@]}" >&2
  fi
fi
for tool in python3 diff awk df; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is needed"
done

if [ -n "${GLACIERSYNC:-}" ]; then
  gs=$GLACIERSYNC
else
  say "cargo build --release (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
  (cd "$repo" && cargo build --release --quiet) >&2
  gs=$CARGO_TARGET_DIR/release/glaciersync
fi
[ -x "$gs" ] && "$gs" --version >/dev/null || die "no working glaciersync binary at $gs"

# ---------------------------------------------------------------------------- work dir
# The work dir is removed at the end, so refuse a non-empty directory this script did not make.
marker=.glaciersync-bench
if [ -e "$work" ] && [ ! -e "$work/$marker" ] && [ -n "$(ls -A "$work" 2>/dev/null)" ]; then
  die "$work exists and is not a work dir of this script: choose another BENCH_DIR"
fi
rm -rf "$work"
mkdir -p "$work"
touch "$work/$marker"
work=$(cd "$work" && pwd)
cleanup() {
  if [ "$keep" = 1 ]; then
    say "kept $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

tree=$work/tree
logs=$work/logs
mkdir -p "$logs"

# ---------------------------------------------------------------------------- measuring
declare -A secs rss

# measure NAME CMD...: runs CMD once under /usr/bin/time -v (stdout and stderr to $logs/NAME.*),
# dies if it fails, and records wall seconds and peak RSS (MiB) under NAME. Dirty pages of the
# steps before are written out first (`sync`, untimed), so that no run pays for another's
# writeback; caches are kept.
measure() {
  local name=$1
  shift
  local t0 t1 rc=0
  sync
  t0=$(date +%s%N)
  /usr/bin/time -v -o "$logs/$name.time" "$@" >"$logs/$name.out" 2>"$logs/$name.err" || rc=$?
  t1=$(date +%s%N)
  if [ "$rc" -ne 0 ]; then
    printf 'bench: %s failed (exit %s): %s\n' "$name" "$rc" "$*" >&2
    tail -n 20 "$logs/$name.err" >&2
    exit 1
  fi
  secs[$name]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  rss[$name]=$(awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$logs/$name.time")
  say "$name: ${secs[$name]} s, ${rss[$name]} MiB"
}

# summarize NAME: from the runs NAME.1 .. NAME.$repeat, records under NAME the seconds of $stat
# (min or median), the other figures of the runs as text (spread), and the largest peak RSS.
declare -A spread
summarize() {
  local name=$1 i min med max
  read -r min med max < <(for ((i = 1; i <= repeat; i++)); do echo "${secs[$name.$i]}"; done |
    sort -g | awk '{ v[NR] = $1 } END { print v[1], v[int((NR + 1) / 2)], v[NR] }')
  if [ "$stat" = min ]; then
    secs[$name]=$min
    spread[$name]="median $med, max $max"
  else
    secs[$name]=$med
    spread[$name]="min $min, max $max"
  fi
  rss[$name]=$(for ((i = 1; i <= repeat; i++)); do echo "${rss[$name.$i]}"; done |
    sort -g | tail -n 1)
  [ "$repeat" -gt 1 ] || spread[$name]=""
  say "$name: $stat ${secs[$name]} s (${spread[$name]}), peak ${rss[$name]} MiB"
}

# measure_runs NAME CMD...: runs CMD $repeat times and summarizes. CMD must leave the state
# as it found it (it is run again).
measure_runs() {
  local name=$1 i
  shift
  for ((i = 1; i <= repeat; i++)); do
    measure "$name.$i" "$@"
  done
  summarize "$name"
}

# json_field FILE EXPR: evaluates a Python expression over the JSON document `d` in FILE.
json_field() {
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# ---------------------------------------------------------------------------- the tree
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
say "generating $small_files files of 1-8 KiB in $dirs dirs and $big_files x $big_mib MiB under $tree"
python3 - "$tree" "$small_files" "$dirs" <<'EOF'
import os, random, sys
root, n, dirs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(20261126)
for d in range(dirs):
    os.makedirs(os.path.join(root, f"d{d:03}"), exist_ok=True)
for i in range(n):
    size = rng.randint(1024, 8192)
    with open(os.path.join(root, f"d{i % dirs:03}", f"f{i:05}.bin"), "wb") as f:
        f.write(os.urandom(size))
EOF
mkdir -p "$tree/big"
for ((i = 1; i <= big_files; i++)); do
  head -c "$((big_mib << 20))" /dev/urandom >"$tree/big/big$i.bin"
done
tree_files=$(find "$tree" -type f | wc -l)
tree_mib=$(du -sm --apparent-size "$tree" | cut -f1)
[ "$tree_files" -eq $((small_files + big_files)) ] || die "generated $tree_files files"

# Warm-up, so that every tool meets the same warm page cache and dentry cache: read every
# byte and stat every file once, and load each binary once.
say "warming the caches"
tar -C "$tree" -cf - . | cat >/dev/null
find "$tree" -printf '%s %T@\n' >/dev/null
restic version >/dev/null
"$gs" --version >/dev/null

# ---------------------------------------------------------------------------- speed
# Each glaciersync figure and the reference it is compared with are measured back to back, run
# after run, so that both meet the same load on a shared machine.
json_check() {
  local file=$1 expr=$2 what=$3
  [ "$(json_field "$file" "$expr")" = True ] || die "$what: $(cat "$file")"
}
cat >"$work/bench.ini" <<EOF
[global]
database_dir = $work/db

[bench]
local_dir = $work/store
path = $tree
EOF

# The same profile, age-encrypted (a key pair made by `glaciersync init --age`).
"$gs" init --age "$work/age/settings.ini" >/dev/null 2>&1 || die "init --age failed"
age_recipient=$(awk -F': ' '/^# public key: / { print $2 }' "$work/age/glaciersync-identity.txt")
cat >"$work/bench-age.ini" <<EOF
[global]
database_dir = $work/db-age

[bench]
local_dir = $work/store-age
path = $tree
age_recipients = $age_recipient
age_identity_file = $work/age/glaciersync-identity.txt
EOF

# First backup: restic (with its local cache, its default; a fresh repository per run) against
# glaciersync (a fresh catalog and store per run; the last ones stay for the steps below).
export RESTIC_PASSWORD=x
export RESTIC_CACHE_DIR=$work/restic-cache
for ((i = 1; i <= repeat; i++)); do
  export RESTIC_REPOSITORY=$work/restic-repo$i
  measure "restic_init.$i" restic init
  measure "restic_first.$i" restic backup "$tree"
  rm -rf "$work/db" "$work/store"
  measure "gs_first.$i" "$gs" -c "$work/bench.ini" --json sync
  json_check "$logs/gs_first.$i.out" \
    "d['profiles'][0]['scanned'] == $tree_files and d['profiles'][0]['new'] == $tree_files and not d['profiles'][0]['errors']" \
    "the first sync did not back up the $tree_files files"
  rm -rf "$work/db-age" "$work/store-age"
  measure "gs_first_age.$i" "$gs" -c "$work/bench-age.ini" --json sync
  json_check "$logs/gs_first_age.$i.out" \
    "d['profiles'][0]['new'] == $tree_files and not d['profiles'][0]['errors']" \
    "the encrypted first sync did not back up the $tree_files files"
done
summarize restic_init
summarize restic_first
summarize gs_first
summarize gs_first_age
rm -rf "$work/db-age" "$work/store-age"
measure_runs restic_nochange restic backup "$tree"
rm -rf "$work"/restic-repo* "$work/restic-cache"

# No-change backup: the stat walk of find against glaciersync's no-op sync.
for ((i = 1; i <= repeat; i++)); do
  measure "find.$i" find "$tree" -printf '%s %T@\n'
  measure "gs_noop.$i" "$gs" -c "$work/bench.ini" --json sync
  json_check "$logs/gs_noop.$i.out" \
    "d['profiles'][0]['unchanged'] == $tree_files and not d['profiles'][0]['errors']" \
    "the no-op sync was not a no-op"
done
summarize find
summarize gs_noop

# Restore: cp -a (and, for reference, cp -a made durable with sync, as the restore makes every
# file it writes) against glaciersync's restore of everything into a fresh directory.
for ((i = 1; i <= repeat; i++)); do
  measure "cp.$i" cp -a "$tree" "$work/cp-copy"
  rm -rf "$work/cp-copy"
  measure "cp_sync.$i" sh -c 'cp -a "$1" "$2" && sync -f "$2"' sh "$tree" "$work/cp-copy"
  rm -rf "$work/cp-copy"
  measure "gs_restore.$i" "$gs" -c "$work/bench.ini" restore --to "$work/restored"
  # Restored paths are <tree key>/<relative path>; the key is `path`.
  diff -r "$tree" "$work/restored/path" >"$logs/restore.diff" 2>&1 ||
    die "the restore differs from the source: $(head -n 5 "$logs/restore.diff")"
  restored_files=$(find "$work/restored/path" -type f | wc -l)
  [ "$restored_files" -eq "$tree_files" ] || die "restored $restored_files files of $tree_files"
  rm -rf "$work/restored"
done
summarize cp
summarize cp_sync
summarize gs_restore

# ---------------------------------------------------------------------------- streaming
# A 4 GiB sparse file (reads as zeros) and a 4 MiB one, each synced alone to its own store.
# The 4 GiB store holds 4 GiB of real blocks: check the space, and delete it at once.
avail_kib=$(df -Pk "$work" | awk 'NR == 2 { print $4 }')
[ "$avail_kib" -gt $((6 << 20)) ] || die "the 4 GiB sparse test needs 6 GiB free under $work (df: $((avail_kib >> 20)) GiB)"
mkdir -p "$work/sparse4g" "$work/sparse4m"
truncate -s 4G "$work/sparse4g/zeros"
truncate -s 4M "$work/sparse4m/zeros"
cat >"$work/sparse.ini" <<EOF
[global]
database_dir = $work/db-sparse

[sparse4m]
local_dir = $work/store-sparse4m
path = $work/sparse4m

[sparse4g]
local_dir = $work/store-sparse4g
path = $work/sparse4g
EOF
for p in sparse4m sparse4g; do
  measure "gs_$p" "$gs" -c "$work/sparse.ini" -p "$p" --json sync
  json_check "$logs/gs_$p.out" \
    "d['profiles'][0]['new'] == 1 and not d['profiles'][0]['errors']" "the $p sync did not back up its file"
done
rm -rf "$work/store-sparse4g" "$work/sparse4g"

# ---------------------------------------------------------------------------- the report
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }

failed=0
verdict() { # verdict OK-TIME OK-RSS
  local why=()
  [ "$1" = 1 ] || why+=(time)
  [ "$2" = 1 ] || why+=(RSS)
  if [ ${#why[@]} -eq 0 ]; then
    echo "PASS"
  else
    echo "**FAIL** (${why[*]})"
  fi
}
rss_ok() { le "${rss[$1]}" "$rss_limit_mib" && echo 1 || echo 0; }

row() { printf '| %s | %s | %s | %s | %s |\n' "$@"; }
# t NAME: the seconds cell of NAME.
t() { echo "${secs[$1]}${spread[$1]:+ (${spread[$1]})}"; }

noop_limit=$(calc "4 * ${secs[find]}")
first_limit=$(calc "${secs[restic_first]} / 3")
restore_limit=$(calc "2 * ${secs[cp]}")
age_limit=$(calc "1.3 * ${secs[gs_first]}")
sparse_diff=$(awk -v a="${rss[gs_sparse4g]}" -v b="${rss[gs_sparse4m]}" 'BEGIN { printf "%.1f", a - b }')

t_first=$(le "${secs[gs_first]}" "$first_limit" && echo 1 || echo 0)
t_noop=$(le "${secs[gs_noop]}" "$noop_limit" && echo 1 || echo 0)
t_age=$(le "${secs[gs_first_age]}" "$age_limit" && echo 1 || echo 0)
t_restore=$(le "${secs[gs_restore]}" "$restore_limit" && echo 1 || echo 0)
t_sparse=$(le "${sparse_diff#-}" "$sparse_rss_slack_mib" && echo 1 || echo 0)

v_first=$(verdict "$t_first" "$(rss_ok gs_first)")
v_age=$(verdict "$t_age" "$(rss_ok gs_first_age)")
v_noop=$(verdict "$t_noop" "$(rss_ok gs_noop)")
v_restore=$(verdict "$t_restore" "$(rss_ok gs_restore)")
v_4m=$(verdict 1 "$(rss_ok gs_sparse4m)")
v_4g=$(verdict 1 "$(rss_ok gs_sparse4g)")
if [ "$t_sparse" = 1 ]; then v_4g_vs=PASS; else v_4g_vs="**FAIL** (RSS)"; fi
for v in "$v_first" "$v_age" "$v_noop" "$v_restore" "$v_4m" "$v_4g" "$v_4g_vs"; do
  case $v in PASS) ;; *) failed=$((failed + 1)) ;; esac
done

gs_commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -z "$(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null)" ] || gs_commit="$gs_commit (with uncommitted changes)"

echo "## glaciersync benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "- machine: $(nproc) cores, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)," \
  "$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM," \
  "$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME"), kernel $(uname -r)"
echo "- load average (1, 5, 15 min) at the start: $load_start; at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- work dir: $work on $(df -PT "$work" | awk 'NR == 2 { print $2 }')"
echo "- $(cd "$repo" && rustc --version 2>/dev/null || echo 'rustc: unknown'); glaciersync $("$gs" --version | awk '{ print $2 }') at commit $gs_commit"
echo "- $(restic version | awk '{ print $1, $2 }'); $(find --version | head -n 1); $(cp --version | head -n 1)"
echo "- tree: $tree_files files, $tree_mib MiB ($small_files of 1-8 KiB in $dirs dirs + $big_files x $big_mib MiB random)"
echo "- warm page cache (the tree was read once before; nothing dropped), \`sync\` (untimed) before each run;"
echo "  restic with its local cache, default repository format and compression"
echo "- $repeat runs of each figure (the 4 MiB/4 GiB syncs: 1), each glaciersync run right after the runs of"
echo "  its reference; seconds: the $stat of the runs (targets are judged on it), the others in brackets;"
echo "  peak RSS: the largest of the runs"
echo
row measurement seconds "peak RSS MiB" target "pass/fail"
row --- ---: ---: --- ---
row "find stat walk (\`find -printf '%s %T@'\`)" "$(t find)" "${rss[find]}" "baseline" ""
row "\`cp -a\` of the tree" "$(t cp)" "${rss[cp]}" "baseline" ""
row "\`cp -a\` then \`sync -f\` (durable copy, for reference)" "$(t cp_sync)" "${rss[cp_sync]}" "" ""
row "restic init" "$(t restic_init)" "${rss[restic_init]}" "" ""
row "restic first backup" "$(t restic_first)" "${rss[restic_first]}" "baseline" ""
row "restic no-change backup" "$(t restic_nochange)" "${rss[restic_nochange]}" "" ""
row "glaciersync first sync" "$(t gs_first)" "${rss[gs_first]}" "≤ restic first / 3 = $first_limit s; RSS ≤ $rss_limit_mib" "$v_first"
row "glaciersync first sync, age-encrypted" "$(t gs_first_age)" "${rss[gs_first_age]}" "≤ 1.3 × first sync = $age_limit s; RSS ≤ $rss_limit_mib" "$v_age"
row "glaciersync no-op sync" "$(t gs_noop)" "${rss[gs_noop]}" "≤ 4 × find = $noop_limit s; RSS ≤ $rss_limit_mib" "$v_noop"
row "glaciersync restore (all, fresh dir)" "$(t gs_restore)" "${rss[gs_restore]}" "≤ 2 × cp -a = $restore_limit s; RSS ≤ $rss_limit_mib" "$v_restore"
row "glaciersync sync of one 4 MiB sparse file" "$(t gs_sparse4m)" "${rss[gs_sparse4m]}" "RSS ≤ $rss_limit_mib" "$v_4m"
row "glaciersync sync of one 4 GiB sparse file" "$(t gs_sparse4g)" "${rss[gs_sparse4g]}" "RSS ≤ $rss_limit_mib" "$v_4g"
row "RSS(4 GiB) − RSS(4 MiB)" "" "$sparse_diff" "within ±$sparse_rss_slack_mib MiB" "$v_4g_vs"
echo
if [ "$failed" -eq 0 ]; then
  echo "All targets met."
else
  echo "**FAIL: $failed of 7 targets missed.**"
fi
exit 0
