/* Shared by the libFuzzer harnesses: input as a file path, and exit() turned into a return. */
#ifndef CULL_FUZZ_H
#define CULL_FUZZ_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sanitizer/allocator_interface.h>
#include <sanitizer/lsan_interface.h>

#include "io.h"

/* The harnesses link with -Wl,--wrap=exit: a cull library that dies on bad input calls
 * __wrap_exit, which jumps back into fuzz_call() instead of ending the fuzzer. */
void __real_exit(int code) __attribute__((noreturn));

static jmp_buf fuzz_env;
static volatile int fuzz_armed;
static int fuzz_fd = -1, fuzz_fd_base;

void __wrap_exit(int code)
{
	if (fuzz_armed) {
		fuzz_armed = 0;
		longjmp(fuzz_env, 1);
	}
	__real_exit(code);
}

/* The input as a file: "/proc/self/fd/N" of a memfd holding exactly the n bytes. */
static __attribute__((unused)) const char *fuzz_path(const uint8_t *data, size_t n)
{
	static char path[64];
	size_t off = 0;
	ssize_t w;

	if (fuzz_fd < 0) {
		fuzz_fd = memfd_create("cull-fuzz", 0);
		if (fuzz_fd < 0)
			abort();
		fuzz_fd_base = fuzz_fd + 1;
		snprintf(path, sizeof path, "/proc/self/fd/%d", fuzz_fd);
	}
	if (ftruncate(fuzz_fd, 0) < 0)
		abort();
	while (off < n) {
		w = pwrite(fuzz_fd, data + off, n - off, (off_t)off);
		if (w <= 0)
			abort();
		off += (size_t)w;
	}
	return path;
}

/* A reader that failed must say why: an exit status and a message. */
static __attribute__((unused)) void fuzz_reported(const cull_err *e)
{
	if (!e->code || !e->msg[0]) {
		fprintf(stderr, "fuzz: a failure without an error (code %d, message '%s')\n",
		        e->code, e->msg);
		abort();
	}
}

/* fn(arg) with exit() caught: 1 when it returned, 0 when it called exit(); after an exit,
 * cleanup(arg) (may be NULL) frees what the harness can reach, and the descriptors left
 * open are closed. */
static int fuzz_run(void (*fn)(void *), void (*cleanup)(void *), void *arg)
{
	fuzz_armed = 1;
	if (setjmp(fuzz_env)) {
		if (cleanup)
			cleanup(arg);
		close_range((unsigned)fuzz_fd_base, ~0U, 0);
		return 0;
	}
	fn(arg);
	fuzz_armed = 0;
	return 1;
}

/* Run fn(arg); 1 when it returned, 0 when it called exit() (a fatal bad-input message).
 * A program ends at that exit, so what it leaves allocated is not a leak: the first run is
 * made with LeakSanitizer off; a run that returns is repeated with it on, so leaks on
 * every other path count. But the fuzzer goes on after an exit, and what each one left
 * would pile up until it runs out of memory (json did, after 3.5 million inputs). So an
 * exit is repeated too: the second run, the caches of the first grown already, must
 * leave nothing more allocated after cleanup. */
static __attribute__((unused)) int fuzz_call(void (*fn)(void *), void (*cleanup)(void *),
                                             void *arg)
{
	__lsan_disable();
	if (fuzz_run(fn, cleanup, arg)) {
		__lsan_enable();
		fn(arg);
		return 1;
	}
	size_t before = __sanitizer_get_current_allocated_bytes();
	int again = fuzz_run(fn, cleanup, arg);
	size_t after = __sanitizer_get_current_allocated_bytes();
	__lsan_enable();
	if (!again && after > before) {
		fprintf(stderr, "fuzz: the fatal-error path left %zu more bytes allocated after "
		        "cleanup on its second run\n", after - before);
		abort();
	}
	return 0;
}

#endif
