# bench/train: the pure nn training step as a separate tool, for comparing with cull-train.
$(BIN)/tools/train-step: $(BUILD)/bench/train/step.o $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

all: $(BIN)/tools/train-step

# the unit test of the learning-rate schedules links the trainer's schedule.c
$(BUILD)/tests/unit/test_schedule.o: CFLAGS += -Itrainer
$(BIN)/test_schedule: $(BUILD)/tests/unit/test_schedule.o $(BUILD)/trainer/schedule.o $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBS) $(LDLIBS)
