# nn/ extras: the side-by-side benchmark with PyTorch (bench/nn/run) and the slow parity run.
$(BIN)/bench_nn: $(BUILD)/bench/nn/bench_nn.o $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

bench-nn: $(BIN)/bench_nn
	BENCH_NN=$(abspath $(BIN)/bench_nn) bench/nn/run

# Training parity of resnet18-cifar, resnet18 and resnet50 too (float64 torch: minutes).
check-nn-slow: all
	CULL_SLOW=1 CULL_BIN=$(abspath $(BIN)) tests/run nn_parity

.PHONY: bench-nn check-nn-slow

# The GPU path against the CPU path and its speed (bench/gpu/run, on a machine with a GPU;
# the tests run it on the stand-in device, tests/fake/).
$(BIN)/bench_gpu: $(BUILD)/bench/gpu/bench_gpu.o $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

all: $(BIN)/bench_gpu $(BIN)/bench_nn
