# cull: build, test, install. Plain make; pkg-config for every library.
PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
SAN     ?=
WERROR  ?=

PKGS     = libarchive libturbojpeg libjpeg libpng openblas
MSGPACK := $(shell pkg-config --exists msgpack-c 2>/dev/null && echo msgpack-c || echo msgpack)
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) $(MSGPACK) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) $(MSGPACK) 2>/dev/null)

CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra -pthread -march=x86-64-v2 -mtune=native
CFLAGS  += -Ibase -Iformats -Inn $(PKG_CFLAGS)
LDLIBS  += $(PKG_LIBS) -lm -pthread -ldl
# oneDNN (Debian libdnnl-dev; no pkg-config file) runs the convolutions when its headers
# are there; DNNL=0 builds the OpenBLAS-only reference path.
DNNL ?= $(if $(wildcard /usr/include/oneapi/dnnl/dnnl.h),1,0)
ifeq ($(DNNL),1)
CFLAGS  += -DCULL_DNNL -fopenmp
LDLIBS  += -ldnnl -fopenmp
endif
# CI (which sets CI=true) treats warnings as errors.
ifneq ($(WERROR)$(CI),)
CFLAGS  += -Werror
endif

ifneq ($(SAN),)
BUILD   = build/san
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
else
BUILD   = build/rel
endif
BIN = $(BUILD)/bin

BASE_SRC    = $(wildcard base/*.c)
FORMATS_SRC = $(wildcard formats/*.c)
NN_SRC      = $(wildcard nn/*.c)
TRAINER_SRC = $(wildcard trainer/*.c)
FILTERS     = $(patsubst filters/%.c,%,$(wildcard filters/*.c))
PROGS       = $(addprefix $(BIN)/cull-,$(FILTERS)) $(if $(TRAINER_SRC),$(BIN)/cull-train)
UNIT_TESTS  = $(patsubst tests/unit/%.c,$(BIN)/%,$(wildcard tests/unit/*.c))
TEST_TOOLS  = $(patsubst tests/tools/%.c,$(BIN)/tools/%,$(wildcard tests/tools/*.c))
# The helper scripts installed beside the programs (cull-convert needs python3-torch).
SCRIPTS     = scripts/cull-convert scripts/cull-parallel scripts/cull-slurm
MAN1        = $(wildcard man/*.1)
MAN5        = $(wildcard man/*.5)
MAN7        = $(wildcard man/*.7)
MODELS      = $(wildcard models/*.safetensors)

LIBBASE    = $(BUILD)/libcullbase.a
LIBFORMATS = $(BUILD)/libcullformats.a
LIBNN      = $(BUILD)/libcullnn.a

all: $(PROGS) $(UNIT_TESTS) $(TEST_TOOLS) bin

# bin/ points at the release build so README examples work from the checkout.
bin: $(PROGS)
	@if [ -z "$(SAN)" ]; then ln -sfn $(BUILD)/bin bin; fi

# Objects depend on the flags they were built with (oneDNN found or not, SAN, WERROR), so
# a change in them rebuilds everything instead of linking stale objects.
FLAGS_FILE := $(BUILD)/flags
# Not under make -n, which must change nothing.
FLAGS_NOW  := $(CC) $(CFLAGS) $(LDFLAGS) $(LDLIBS)
ifeq (,$(findstring n,$(firstword -$(MAKEFLAGS))))
ifneq ($(file <$(FLAGS_FILE)),$(FLAGS_NOW))
$(shell mkdir -p $(BUILD) && printf '%s' '$(FLAGS_NOW)' >$(FLAGS_FILE))
endif
endif

$(BUILD)/%.o: %.c $(wildcard base/*.h formats/*.h nn/*.h trainer/*.h) $(FLAGS_FILE)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(LIBBASE): $(patsubst %.c,$(BUILD)/%.o,$(BASE_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIBFORMATS): $(patsubst %.c,$(BUILD)/%.o,$(FORMATS_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# The numeric loops need -O3 for GCC to vectorize them.
$(BUILD)/nn/%.o: CFLAGS += -O3

$(LIBNN): $(patsubst %.c,$(BUILD)/%.o,$(NN_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

LIBS = $(LIBNN) $(LIBFORMATS) $(LIBBASE)

# cull-embed looks for the shipped encoder here when it is not beside the program.
$(BUILD)/filters/embed.o: CFLAGS += -DCULL_MODELDIR='"$(PREFIX)/share/cull/models"'

$(BIN)/cull-%: $(BUILD)/filters/%.o $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

$(BIN)/cull-train: $(patsubst %.c,$(BUILD)/%.o,$(TRAINER_SRC)) $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBS) $(LDLIBS)

$(BIN)/test_%: $(BUILD)/tests/unit/test_%.o $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

# Helpers for the tests and benchmarks (not installed).
$(BIN)/tools/%: $(BUILD)/tests/tools/%.o $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

# Under CI (CI=true), make check also runs the suite again built with ASan + UBSan.
check: all
	CULL_BIN=$(abspath $(BIN)) tests/run $(TESTS)
ifneq ($(CI),)
ifeq ($(SAN),)
	$(MAKE) --no-print-directory check SAN=1
endif
endif

# The suite again under each instruction set below this CPU's and on NCHW activations
# (tests/run-isa): what a user's older CPU runs; 8-10 minutes a level on 2 cores.
check-isa: all
	CULL_BIN=$(abspath $(BIN)) tests/run-isa $(TESTS)

lint-man:
	mandoc -T lint -W warning $(MAN1) $(MAN5) $(MAN7)

# EXTRA_PROGS: programs built by mk/*.mk (expanded when the recipe runs).
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	  $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man7
	install -m 755 $(PROGS) $(EXTRA_PROGS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(MAN1) $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 $(MAN5) $(DESTDIR)$(PREFIX)/share/man/man5/
	install -m 644 $(MAN7) $(DESTDIR)$(PREFIX)/share/man/man7/
	install -d $(DESTDIR)$(PREFIX)/share/cull/models
	install -m 644 $(MODELS) $(DESTDIR)$(PREFIX)/share/cull/models/
	install -m 755 $(SCRIPTS) $(DESTDIR)$(PREFIX)/bin/
	install -d $(DESTDIR)$(PREFIX)/libexec/cull
	install -m 755 scripts/slurm/cull-step $(DESTDIR)$(PREFIX)/libexec/cull/

deps:
	@scripts/deps

demo: deps
	$(MAKE) all
	scripts/demo

# Extra targets kept beside the code they build (e.g. bench/theory).
include $(wildcard mk/*.mk)

clean:
	rm -rf build bin

.PHONY: all bin check check-isa lint-man install deps demo clean
.SECONDARY:
