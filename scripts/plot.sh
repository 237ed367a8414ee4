#!/usr/bin/env bash
# Renders redlock-bench results to one PNG with gnuplot (Debian: gnuplot-nox).
#
#   scripts/plot.sh [-o OUT.png] [-t TITLE] [--samples SAMPLES.tsv] RESULTS.jsonl
#   scripts/plot.sh [-o OUT.png] [-t TITLE] --run [redlock-bench arguments...]
#
# RESULTS.jsonl is redlock-bench's stdout (one JSON object per line). With
# --run the tool is run first (build/release/bench/redlock-bench, or
# $REDLOCK_BENCH), with --samples, and its output is kept next to OUT.png
# (OUT.jsonl, OUT.samples.tsv). Panels: p50/p99 per run (median over reps),
# throughput, each target's measured ratio next to its limit, the geo round
# trips, and, with --samples, the CDF of each run's cycle latency.
set -euo pipefail

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

out=bench.png
title=""
samples=""
run=0
results=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    -o) [[ $# -ge 2 ]] || usage; out=$2; shift 2 ;;
    -t) [[ $# -ge 2 ]] || usage; title=${2//\"/}; shift 2 ;;
    --samples) [[ $# -ge 2 ]] || usage; samples=$2; shift 2 ;;
    --run) run=1; shift; break ;;
    -h|--help) usage ;;
    -*) usage ;;
    *) results=$1; shift ;;
  esac
done

command -v gnuplot >/dev/null || { echo "plot.sh: gnuplot not found (apt-get install gnuplot-nox)" >&2; exit 1; }

if [[ $run -eq 1 ]]; then
  here=$(cd "$(dirname "$0")/.." && pwd)
  bench=${REDLOCK_BENCH:-$here/build/release/bench/redlock-bench}
  [[ -x $bench ]] || { echo "plot.sh: $bench not built (cmake --build --preset release --target redlock-bench redlock-delayproxy)" >&2; exit 1; }
  results=${out%.png}.jsonl
  samples=${out%.png}.samples.tsv
  rm -f "$samples"
  "$bench" --samples "$samples" "$@" >"$results"
fi
[[ -n $results && -r $results ]] || usage
[[ -n $title ]] || title="redlock-bench: $(basename "$results")"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The JSON lines are flat objects written by redlock-bench; awk reads the
# fields it needs. Lines of single processes (a --processes run) are skipped.
awk -v dir="$work" '
function num(line, key,    m) {
  if (!match(line, "\"" key "\":-?[0-9.eE+-]+")) return "";
  m = substr(line, RSTART, RLENGTH); sub(/^"[^"]*":/, "", m); return m + 0;
}
function str(line, key,    m) {
  if (!match(line, "\"" key "\":\"[^\"]*\"")) return "";
  m = substr(line, RSTART, RLENGTH); sub(/^"[^"]*":"/, "", m); sub(/"$/, "", m); return m;
}
function arr(line, key,    m) {
  if (!match(line, "\"" key "\":\\[[^]]*\\]")) return "";
  m = substr(line, RSTART, RLENGTH); sub(/^"[^"]*":\[/, "", m); sub(/\]$/, "", m); return m;
}
# Median of v[1..n] (sorts v in place; n is small: one value per rep).
function median(v, n,    i, j, t) {
  for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t; }
  return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2;
}
function put(label, key, value) {
  if (value == "") return;
  n[label, key]++; val[label, key, n[label, key]] = value;
}
function med(label, key,    k, v) {
  if (!((label, key) in n)) return "";
  for (k = 1; k <= n[label, key]; k++) v[k] = val[label, key, k];
  return median(v, n[label, key]);
}
/"process":/ { next }
/^\{/ {
  label = str($0, "label"); if (label == "") next;
  if (!(label in seen)) { seen[label] = 1; order[++nl] = label; }
  scen[label] = str($0, "scenario");
  rel[label] = str($0, "release");
  put(label, "p50", num($0, "p50_us")); put(label, "p99", num($0, "p99_us"));
  put(label, "acq50", num($0, "acq_p50_us")); put(label, "ops", num($0, "ops_per_s"));
  put(label, "ratio", num($0, "ratio")); put(label, "qrtt", num($0, "quorum_rtt_us"));
  if (label == "geo") { rtts = arr($0, "rtts_us"); delays = arr($0, "delays_ms"); }
}
END {
  lat = dir "/lat.dat"; thr = dir "/thr.dat"; tgt = dir "/targets.dat"; geo = dir "/geo.dat";
  for (i = 1; i <= nl; i++) {
    l = order[i];
    if (scen[l] != "geo") printf "\"%s\" %s %s\n", l, med(l, "p50"), med(l, "p99") > lat;
    if (scen[l] != "geo") printf "\"%s\" %s\n", l, med(l, "ops") > thr;
  }
  base50 = med("base/c1", "p50"); baseops = med("base/c1", "ops");
  if (base50 != "" && med("a", "p50") != "" && rel["a"] == "wait")
    printf "\"a: cycle p50 / base p50\" %.3f 2.6 \"<= 2.6\"\n", med("a", "p50") / base50 > tgt;
  for (i = 1; i <= nl; i++) {
    l = order[i];
    if (scen[l] == "b" && baseops != "")
      printf "\"%s: ops/s / base ops/s\" %.3f 4 \">= 4\"\n", l, med(l, "ops") / baseops > tgt;
    if (scen[l] == "d") {
      same = rel[l] == "guard" ? "a/guard" : "a";
      if (same in seen) {
        printf "\"%s: cycle p50 / %s\" %.3f 1 \"<= 1\"\n", l, same, med(l, "p50") / med(same, "p50") > tgt;
        printf "\"%s: acquire p50 / %s\" %.3f 1 \"<= 1\"\n", l, same, med(l, "acq50") / med(same, "acq50") > tgt;
      }
    }
    if (scen[l] == "geo") printf "\"geo: acquire p50 / quorum RTT\" %.3f 1.1 \"<= 1.1\"\n", med(l, "ratio") > tgt;
  }
  if (rtts != "") {
    nr = split(rtts, r, ","); split(delays, d, ",");
    for (k = 1; k <= nr; k++) printf "\"%s ms\" %.3f\n", d[k], r[k] / 1000.0 > geo;
    geo_acq = med("geo", "acq50") / 1000.0; geo_q = med("geo", "qrtt") / 1000.0;
    printf "%.3f %.3f\n", geo_acq, geo_q > (dir "/geo_lines.dat");
  }
}' "$results"

[[ -s $work/lat.dat ]] || { echo "plot.sh: no redlock-bench results in $results" >&2; exit 1; }

# CDF input: at most ~20000 points per run (every k-th sample, in time order).
cdf_labels=""
if [[ -n $samples && -s $samples ]]; then
  awk -F'\t' '$3 == "cycle" { c[$1]++ } END { for (l in c) print l "\t" c[l] }' "$samples" \
    | sort >"$work/cdf_counts"
  while IFS=$'\t' read -r label count; do
    [[ $label == geo* ]] && continue
    f="$work/cdf_$(echo "$label" | tr -c 'A-Za-z0-9' '_').dat"
    awk -F'\t' -v l="$label" -v k=$(( count / 20000 + 1 )) \
      '$1 == l && $3 == "cycle" && (++i % k) == 0 { print $4 }' "$samples" >"$f"
    cdf_labels+="$label"$'\t'"$f"$'\n'
  done <"$work/cdf_counts"
fi

panels=3
[[ -s $work/geo.dat ]] && panels=$((panels + 1))
[[ -n $cdf_labels ]] && panels=$((panels + 1))
rows=$(( (panels + 1) / 2 ))

{
  cat <<EOF
set terminal pngcairo size 1400,$(( rows * 430 )) font "sans,10"
set output "$out"
set multiplot layout $rows,2 title "$title"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key top left
set xtics rotate by -30 nomirror
set bmargin 5

set title "Latency per operation (median of reps): base = one SET, redlock = acquire + release"
set ylabel "microseconds (log)"
set logscale y
set yrange [10:*]
plot "$work/lat.dat" using 2:xtic(1) title "p50" lc rgb "#4878a8", \
     "" using 3 title "p99" lc rgb "#e0a040", \
     "" using (\$0-0.2):2:(sprintf("%.0f", \$2)) with labels offset 0,0.6 font ",8" notitle, \
     "" using (\$0+0.2):3:(sprintf("%.0f", \$3)) with labels offset 0,0.6 font ",8" notitle
unset logscale y
set yrange [0:*]

set title "Throughput (median of reps): base = SETs, redlock = acquire + release cycles"
set ylabel "operations per second"
set offsets 0, 0, graph 0.08, 0
plot "$work/thr.dat" using 2:xtic(1) notitle lc rgb "#58a058", \
     "" using 0:2:(sprintf("%.0f", \$2)) with labels offset 0,0.7 font ",8" notitle

set title "Targets: measured ratio next to its limit"
set key top right
set ylabel "ratio (log)"
set offsets 0, 0, 0, 0
set logscale y
set yrange [0.1:*]
plot "$work/targets.dat" using 2:xtic(1) title "measured" lc rgb "#b04848", \
     "" using 3 title "limit" lc rgb "#a0a0a0", \
     "" using (\$0-0.2):2:(sprintf("%.2f", \$2)) with labels offset 0,0.7 font ",8" notitle, \
     "" using (\$0+0.2):3:4 with labels offset 0,0.7 font ",8" notitle
unset logscale y
set yrange [0:*]
set key top left
EOF
  if [[ -s $work/geo.dat ]]; then
    read -r geo_acq geo_q <"$work/geo_lines.dat"
    cat <<EOF

set offsets 0, 0, 0, 0
set title "geo: PING round trip through each delay proxy (one-way delay)"
set ylabel "milliseconds"
set xtics norotate
plot "$work/geo.dat" using 2:xtic(1) title "PING round trip" lc rgb "#8070b0", \
     "" using 0:2:(sprintf("%.1f", \$2)) with labels offset 0,0.7 font ",8" notitle, \
     $geo_acq with lines lw 2 lc rgb "#b04848" title sprintf("acquire p50 %.1f ms", $geo_acq), \
     $geo_q with lines dt 2 lc rgb "#404040" title sprintf("quorum-th round trip %.1f ms", $geo_q)
set xtics rotate by -30
EOF
  fi
  if [[ -n $cdf_labels ]]; then
    echo
    echo 'set title "CDF of one operation'"'"'s latency (--samples)"'
    echo 'set style data lines'
    echo 'set ylabel "fraction"'
    echo 'set xlabel "microseconds (log)"'
    echo 'set logscale x'
    echo 'set xtics norotate'
    echo 'set yrange [0:1]'
    echo 'set key bottom right'
    printf 'plot '
    first=1
    while IFS=$'\t' read -r label f; do
      [[ -z $label ]] && continue
      [[ $first -eq 1 ]] || printf ', \\\n     '
      printf '"%s" using 1:(1.0) smooth cnormal lw 2 title "%s"' "$f" "$label"
      first=0
    done <<<"$cdf_labels"
    echo
  fi
  echo "unset multiplot"
} >"$work/plot.gp"

gnuplot "$work/plot.gp"
echo "plot.sh: wrote $out" >&2
