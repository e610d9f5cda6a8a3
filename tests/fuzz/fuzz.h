/* Shared by the libFuzzer harnesses: the input as a file path, and the check on a failure. */
#ifndef CULL_FUZZ_H
#define CULL_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "io.h"

/* The input as a file: "/proc/self/fd/N" of a memfd holding exactly the n bytes. */
static __attribute__((unused)) const char *fuzz_path(const uint8_t *data, size_t n)
{
	static char path[64];
	static int fd = -1;
	size_t off = 0;
	ssize_t w;

	if (fd < 0) {
		fd = memfd_create("cull-fuzz", 0);
		if (fd < 0)
			abort();
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) < 0)
		abort();
	while (off < n) {
		w = pwrite(fd, data + off, n - off, (off_t)off);
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

#endif
