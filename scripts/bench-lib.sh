# Helpers shared by the scripts/bench-*.sh benchmarks (sourced, not run).

# Flushes dirty data and, when root, drops the page cache so the next run reads from disk.
drop() { sync; if [ "$(id -u)" -eq 0 ]; then echo 3 >/proc/sys/vm/drop_caches; fi; }
# Seconds since the epoch, with nanoseconds.
now() { date +%s.%N; }
# The median of whitespace-separated numbers on stdin.
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
