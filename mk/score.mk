# Benchmarks of cull-score's k-means against faiss, and of cull-select's shard output against cat.
$(BIN)/bench/kmeans-fit: $(BUILD)/bench/kmeans/kmeans-fit.o $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

bench-kmeans: $(BIN)/bench/kmeans-fit
	/usr/bin/python3 bench/kmeans/bench.py --bin $(BIN)/bench/kmeans-fit $(BENCH_ARGS)

bench-select: all
	CULL_BIN=$(abspath $(BIN)) bench/select/run $(BENCH_ARGS)

.PHONY: bench-kmeans bench-select
