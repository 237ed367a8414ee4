#!/usr/bin/env bash
# Draws the distance-to-the-floor table of bench/README.md as one PNG with
# gnuplot (Debian: gnuplot-nox): per measure, the earlier and the current
# ratio as bars on a log scale, and the target as a mark.
#
#   scripts/plot-floor.sh [-o OUT.png] [-t TITLE] TABLE.tsv
#
# TABLE.tsv: a header line, then one line per measure, tab-separated:
#   measure  earlier  now  target  lower|higher
# "lower" when a smaller ratio is better (a latency against the floor),
# "higher" when a larger one is (a throughput against the floor). An empty
# or "-" earlier value draws no bar.
set -euo pipefail

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

out=docs/bench.png
title="redlock against the machine's floor"
table=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    -o) [[ $# -ge 2 ]] || usage; out=$2; shift 2 ;;
    -t) [[ $# -ge 2 ]] || usage; title=${2//\"/}; shift 2 ;;
    -h|--help) usage ;;
    -*) usage ;;
    *) table=$1; shift ;;
  esac
done
[[ -n $table && -r $table ]] || usage
command -v gnuplot >/dev/null || { echo "plot-floor.sh: gnuplot not found (apt-get install gnuplot-nox)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Labels carry the direction, so that a reader knows which way is better.
awk -F'\t' 'NR > 1 && NF >= 5 {
  gsub(/"/, "", $1)
  arrow = ($5 == "lower") ? "(lower is better)" : "(higher is better)"
  before = ($2 == "" || $2 == "-") ? "NaN" : $2
  printf "\"%s\\n%s\"\t%s\t%s\t%s\n", $1, arrow, before, $3, $4
}' "$table" >"$work/data"
[[ -s $work/data ]] || { echo "plot-floor.sh: no rows in $table" >&2; exit 1; }
# The log axis reaches at least 20, and past the largest value when one is.
top=$(awk -F'\t' '{ for (i = 2; i <= 4; i++) if ($i != "NaN" && $i + 0 > m) m = $i + 0 } END { t = m * 1.5; if (t < 20) t = 20; print t }' "$work/data")

gnuplot <<EOF
set terminal pngcairo size 1400,700 font "sans,10"
set output "$out"
set title "$title"
set datafile separator "\t"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set logscale y
set yrange [0.1:$top]
set ylabel "ratio (x floor, or x the a cycle, or on/off)"
set grid ytics
set key top left
set xtics rotate by -20 font "sans,9"
plot "$work/data" using 2:xtic(1) title "earlier" lc rgb "#9e9e9e", \
     "" using 3 title "now" lc rgb "#1f77b4", \
     "" using (\$0):4 with points pt 7 ps 1.6 lc rgb "#d62728" title "target"
EOF
echo "plot-floor.sh: wrote $out" >&2
