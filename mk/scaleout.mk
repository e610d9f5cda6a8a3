# The per-shard workflow on many machines: the Slurm test alone, and the 1-vs-2-jobs benchmark.
check-slurm: all
	CULL_BIN=$(abspath $(BIN)) tests/run slurm.test

bench-scaleout: all
	CULL_BIN=$(abspath $(BIN)) bench/scaleout/run $(BENCH_ARGS)

.PHONY: check-slurm bench-scaleout
