# tests/fuzz: libFuzzer harnesses built with clang, ASan and UBSan into build/fuzz.
# `make fuzz FUZZ_SECONDS=N` builds them and runs each for N seconds on its seed corpus
# (tests/fuzz/corpus/NAME, copied to build/fuzz/corpus/NAME, where new inputs go) and its
# regression inputs; a crash, leak or UB report stops it, the input left in build/fuzz.
# A huge malloc that fails is not a crash: msgpack-c reserves a map's or array's entries
# when it reads the header (32 bytes each, before they arrive), and the record reader
# reports the failure. So ASan returns NULL past 1 GiB instead of aborting.
# `make fuzz-build` only builds; tests/fuzz.test replays the corpora and regressions.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_ARGS    ?=
FUZZ_NAMES    = $(basename $(notdir $(wildcard tests/fuzz/*.c)))
FUZZ_DIR      = build/fuzz
FUZZ_BINS     = $(addprefix $(FUZZ_DIR)/,$(FUZZ_NAMES))
FUZZ_SAN      = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS   = -g -O1 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra \
                -Ibase -Iformats $(PKG_CFLAGS) $(FUZZ_SAN)
FUZZ_OBJS     = $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(BASE_SRC) $(FORMATS_SRC))

$(FUZZ_DIR)/obj/%.o: %.c $(wildcard base/*.h formats/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/libcullformats.a: $(FUZZ_OBJS)
	rm -f $@ && ar rcs $@ $^

# Every reader reports bad input instead of exiting (the wds harness asks wds_next for that
# with defer_errors), so no harness catches exit(): an exit is a finding ("fuzz target
# exited"), as is a failure that comes without a status and a message (fuzz_reported).
$(FUZZ_DIR)/%: tests/fuzz/%.c tests/fuzz/fuzz.h $(FUZZ_DIR)/libcullformats.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -D_GNU_SOURCE -fsanitize=fuzzer \
	  -o $@ $< $(FUZZ_DIR)/libcullformats.a $(PKG_LIBS) -lm -pthread

fuzz-build: $(FUZZ_BINS)

# Each run's libFuzzer output goes to build/fuzz/logs/NAME.log and a line to
# build/fuzz/ledger.tsv (date, harness, wall and CPU seconds, executions, coverage,
# features, corpus);
# `make fuzz-report` sums the ledger per harness, so fuzzing time adds up across runs.
fuzz: fuzz-build
	@mkdir -p $(FUZZ_DIR)/logs; \
	for n in $(FUZZ_NAMES); do \
	  mkdir -p $(FUZZ_DIR)/corpus/$$n $(FUZZ_DIR)/artifacts/$$n && \
	  cp -n tests/fuzz/corpus/$$n/* $(FUZZ_DIR)/corpus/$$n/ 2>/dev/null; \
	  echo "fuzz: $$n for $(FUZZ_SECONDS) s"; \
	  start=$$(date +%s); \
	  ASAN_OPTIONS=allocator_may_return_null=1:max_allocation_size_mb=1024:$$ASAN_OPTIONS \
	  /usr/bin/time -f '%U %S' -o $(FUZZ_DIR)/logs/$$n.cpu \
	  $(FUZZ_DIR)/$$n -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	    -close_fd_mask=3 -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/artifacts/$$n/ \
	    $(FUZZ_ARGS) $(FUZZ_DIR)/corpus/$$n $$(ls -d tests/fuzz/regress/$$n 2>/dev/null) \
	    >$(FUZZ_DIR)/logs/$$n.log 2>&1; rc=$$?; \
	  tests/fuzz/ledger $$n $$(( $$(date +%s) - start )) $(FUZZ_DIR)/logs/$$n.cpu \
	    $(FUZZ_DIR)/logs/$$n.log $(FUZZ_DIR)/corpus/$$n >>$(FUZZ_DIR)/ledger.tsv; \
	  tail -1 $(FUZZ_DIR)/ledger.tsv; \
	  if [ $$rc -ne 0 ]; then tail -40 $(FUZZ_DIR)/logs/$$n.log; exit 1; fi; \
	done

fuzz-report:
	@tests/fuzz/ledger --report $(FUZZ_DIR)/ledger.tsv

.PHONY: fuzz fuzz-build fuzz-if-clang fuzz-report

# make check replays the corpora and regressions (tests/fuzz.test) where clang is installed.
fuzz-if-clang:
	@if command -v $(FUZZ_CC) >/dev/null 2>&1; then $(MAKE) --no-print-directory fuzz-build; fi

check: fuzz-if-clang
