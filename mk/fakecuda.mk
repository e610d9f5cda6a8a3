# tests/fake: a CPU stand-in for libcudart, libcublas and libcudnn, so the tests run nn/gpu.c's
# GPU path without a GPU (CULL_CUDA_LIBDIR=$(BIN)/fakecuda), and the program that checks it.
# One source built per library (-DFAKE_LIB): libcudart holds the state (device allocations,
# call counters) and the other two link to it ($ORIGIN), so the three share one device.
FAKECUDA_DIR  = $(BIN)/fakecuda
FAKECUDA_RT   = $(FAKECUDA_DIR)/libcudart.so.13
FAKECUDA_LIBS = $(FAKECUDA_RT) $(FAKECUDA_DIR)/libcublas.so.13 $(FAKECUDA_DIR)/libcudnn.so.9
FAKECUDA_SO   = $(CC) $(CFLAGS) $(LDFLAGS) -fPIC -shared -Wl,-soname,$(notdir $@)

$(FAKECUDA_RT): tests/fake/fakecuda.c tests/fake/fakecudnn_train.c nn/cuda.h $(FLAGS_FILE)
	@mkdir -p $(dir $@)
	$(FAKECUDA_SO) -DFAKE_LIB=FAKE_CUDART -o $@ $< -lm

$(FAKECUDA_DIR)/libcublas.so.13: tests/fake/fakecuda.c tests/fake/fakecudnn_train.c nn/cuda.h $(FAKECUDA_RT)
	$(FAKECUDA_SO) -DFAKE_LIB=FAKE_CUBLAS -Wl,-rpath,'$$ORIGIN' -o $@ $< $(FAKECUDA_RT) -lm

$(FAKECUDA_DIR)/libcudnn.so.9: tests/fake/fakecuda.c tests/fake/fakecudnn_train.c nn/cuda.h $(FAKECUDA_RT)
	$(FAKECUDA_SO) -DFAKE_LIB=FAKE_CUDNN -Wl,-rpath,'$$ORIGIN' -o $@ $< $(FAKECUDA_RT) -lm

# It dlopens the libraries, as nn/gpu.c does.
$(BIN)/tools/fakecuda_check: $(BUILD)/tests/fake/fakecuda_check.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< -ldl

all: $(FAKECUDA_LIBS) $(BIN)/tools/fakecuda_check
