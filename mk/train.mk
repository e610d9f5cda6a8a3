# bench/train: the pure nn training step as a separate tool, for comparing with cull-train.
$(BIN)/tools/train-step: $(BUILD)/bench/train/step.o $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

all: $(BIN)/tools/train-step
