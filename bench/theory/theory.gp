# Plots for bench/theory: error curves per f and policy, easy vs hard, and the best-f frontier.
# Run as: gnuplot -e "dir='docs'" bench/theory/theory.gp  (reads dir/theory*.tsv)
if (!exists("dir")) dir = "docs"
tsv = dir."/theory.tsv"
ext = dir."/theory-ext.tsv"
have_ext = system("test -s ".ext." && echo 1 || echo 0") + 0
thetas = "0 10 20"
fracs = "1 0.8 0.6 0.4 0.2 0.1"
# rows of FILE with theta T, f F, policy P
sel(file, t, f, p) = sprintf("< awk -F'\t' '$1 == %s && $2 == %s && $5 == \"%s\"' %s", t, f, p, file)
selt(file, t) = sprintf("< awk -F'\t' '$1 == %s' %s", t, file)
fitv(file, t, range, col) = system(sprintf("awk -F'\t' '$1 == %s && $2 == \"%s\" { print $%d }' %s", t, range, col, file)) + 0

set terminal pngcairo size 1200,1350 font ",10"
set datafile separator "\t"
set logscale xy
set grid
set key bottom left
set format y "%g"

# --- 1: error against alpha_prune, per f and policy -------------------------------------
set output dir."/theory-curves.png"
set multiplot layout 3,2 title "Perceptron teacher-student, max-margin students on pruned data (N = 200; bars: standard error)"
do for [t in thetas] {
	do for [p in "hard easy"] {
		set title sprintf("keep %s, probe angle theta = %s deg", p, t)
		set xlabel "alpha_{prune} = f alpha_{tot}"
		set ylabel "test error"
		set yrange [0.003:0.6]
		plot for [f in fracs] sel(tsv, t, f, p) using 4:6:7 with yerrorlines title "f = ".f
	}
}
unset multiplot

# --- 2: keep hard / keep easy error ratio against alpha_tot, per f -------------------------
ratio(file, t, f) = sprintf("< awk -F'\t' '$1 == %s && $2 == %s { if ($5 == \"easy\") e[$3] = $6; else h[$3] = $6 } END { for (a in h) if (a in e) print a \"\t\" h[a] / e[a] }' %s | sort -g", t, f, file)
set output dir."/theory-easyhard.png"
set terminal pngcairo size 1200,500 font ",10"
set multiplot layout 1,3 title "Error of keep-hard over error of keep-easy at the same f and alpha_{tot} (below 1: hard is better)".(have_ext ? "; f = 0.2, 0.1 beyond 20 from the extended grid" : "")
set key top right
do for [t in thetas] {
	set title "theta = ".t." deg"
	set xlabel "alpha_{tot}"
	set ylabel "err(hard) / err(easy)"
	set yrange [0.15:10]
	plot for [i = 2:6] ratio(have_ext ? tsv." ".ext : tsv, t, word(fracs, i)) using 1:2 with linespoints lc i pt 7 ps 0.6 title "f = ".word(fracs, i), \
	     1 with lines lc rgb "black" dt 2 notitle
}
unset multiplot
set key bottom left

# --- 3: the frontier, with exponential and power-law fits ---------------------------------
# fits over the "open" range: up to where the smallest-f curve ends (beyond it the frontier
# is limited by the largest alpha_tot simulated, not by the choice of f)
fr = have_ext ? dir."/theory-frontier-ext.tsv" : dir."/theory-frontier.tsv"
fits = have_ext ? dir."/theory-fits-ext.tsv" : dir."/theory-fits.tsv"
set output dir."/theory-frontier.png"
set terminal pngcairo size 1200,500 font ",10"
set key top right
set multiplot layout 1,3 title "Best-f frontier".(have_ext ? " (default + extended grids)" : "").". Fits: red, blue over the open range, left of the dotted line; green over the upper half"
do for [t in thetas] {
	er = fitv(fits, t, "open", 6); ec = fitv(fits, t, "open", 8); e2 = fitv(fits, t, "open", 7)
	pe = fitv(fits, t, "open", 9); pc = fitv(fits, t, "open", 11); p2 = fitv(fits, t, "open", 10)
	lo = fitv(fits, t, "open", 3); hi = fitv(fits, t, "open", 4)
	he = fitv(fits, t, "high", 9); hc = fitv(fits, t, "high", 11); h2 = fitv(fits, t, "high", 10)
	hlo = fitv(fits, t, "high", 3); hhi = fitv(fits, t, "high", 4)
	set title "theta = ".t." deg"
	set xlabel "alpha_{prune}"
	set ylabel "test error"
	set yrange [0.0008:0.6]
	set samples 300
	set arrow 1 from hi, graph 0 to hi, graph 1 nohead dt 3 lc rgb "gray40"
	plot selt(tsv, t) using ($2 == 1 ? $4 : 1/0):6 with lines lc rgb "gray50" lw 2 title "f = 1 (no pruning)", \
	     selt(fr, t) using 2:3 with linespoints pt 7 ps 0.5 lc rgb "black" title "frontier", \
	     (x >= lo && x <= hi ? exp(ec - er * x) : 1/0) with lines lc rgb "red" lw 2 title sprintf("exp(-%.2f a), R^2 %.3f", er, e2), \
	     (x >= lo && x <= hi ? exp(pc) * x**(-pe) : 1/0) with lines lc rgb "blue" dt 2 lw 2 title sprintf("a^{-%.2f}, R^2 %.3f", pe, p2), \
	     (x >= hlo && x <= hhi ? exp(hc) * x**(-he) : 1/0) with lines lc rgb "dark-green" dt 4 lw 2 title sprintf("upper half: a^{-%.2f}, R^2 %.3f", he, h2)
	unset arrow 1
}
unset multiplot

# --- 4: the gain of the frontier over no pruning -----------------------------------------
set output dir."/theory-gain.png"
set terminal pngcairo size 700,500 font ",10"
set title "Gain of the best-f frontier over no pruning, err(f = 1) / err(frontier)"
set xlabel "alpha_{prune}"
set ylabel "gain"
set yrange [1:*]
set key top left
plot for [i = 1:3] selt(fr, word(thetas, i)) using 2:($7 / $3) with linespoints lc i pt 7 ps 0.5 title "theta = ".word(thetas, i)." deg"
