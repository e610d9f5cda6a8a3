# theory/ (cull-theory) and bench/theory (its runs): the perceptron teacher-student simulation
# of data pruning (issue 7).
# `make theory` builds cull-theory, runs the default grid and writes docs/theory.tsv and
# docs/theory-*.png; THEORY_ARGS passes options (e.g. THEORY_ARGS='--reps 5 --alphas 0.5:10:8').
THEORY_SRC  = theory/theory.c theory/frontier.c theory/maxmargin.c
THEORY_OBJ  = $(patsubst %.c,$(BUILD)/%.o,$(THEORY_SRC))
THEORY_ARGS ?=
THEORY_THREADS ?= 2

$(THEORY_OBJ): CFLAGS += -Itheory
$(THEORY_OBJ): $(wildcard theory/*.h)

$(BIN)/cull-theory: $(THEORY_OBJ) $(LIBBASE)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(THEORY_OBJ) $(LIBBASE) $(LDLIBS)

# the unit test links the solver it checks
$(BUILD)/tests/unit/test_theory.o: CFLAGS += -Itheory
$(BUILD)/tests/unit/test_theory.o: $(wildcard theory/*.h)
$(BIN)/test_theory: $(BUILD)/tests/unit/test_theory.o $(BUILD)/theory/maxmargin.o $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBS) $(LDLIBS)

all: $(BIN)/cull-theory
EXTRA_PROGS += $(BIN)/cull-theory

theory: $(BIN)/cull-theory
	CULL_BIN=$(abspath $(BIN)) bench/theory/run --threads $(THEORY_THREADS) $(THEORY_ARGS)

.PHONY: theory
