/* Checked I/O, allocation and error reporting shared by every cull program. */
#ifndef CULL_IO_H
#define CULL_IO_H

#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit statuses, listed in cull(7). */
enum {
	EXIT_OK = 0,
	EXIT_DATA = 1,   /* bad input stream: corrupt tar, msgpack, IDX, ... */
	EXIT_USAGE = 2,  /* bad command line */
	EXIT_IO = 3,     /* cannot open, read or write a file or stream */
	EXIT_SKIP = 4,   /* --strict and a sample was skipped */
	EXIT_NOMEM = 5,  /* out of memory or over a configured limit */
	EXIT_INTERRUPTED = 130,   /* SIGINT or SIGTERM, after saving what can be resumed */
};

#define CULL_VERSION "0.1.0"

extern const char *progname;     /* set by cull_init() */

/* Set progname from argv[0] and restore SIGPIPE's default; call first in main(). */
void cull_init(const char *argv0);

/* "prog: message" on stderr and exit(code). exit() flushes what was written before. */
void die(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
/* "prog: warning: message" on stderr. */
void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "prog: message" on stderr, no prefix word. */
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
/* realloc to n * size, checking the multiplication. */
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* asprintf that dies on failure. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Open a file; NULL or "-" means stdin/stdout. Dies with EXIT_IO naming the path. */
FILE *xfopen(const char *path, const char *mode);
/* The display name for a path argument: "-" and NULL become "<stdin>" / "<stdout>". */
const char *io_name(const char *path, int output);
/* fwrite that dies with EXIT_IO naming `name` on a short write. */
void xfwrite(const void *buf, size_t n, FILE *f, const char *name);
/* fflush + ferror + fclose (stdout included) and die with EXIT_IO on any failure. */
void xfclose(FILE *f, const char *name);
/* Die on a failed write to `name`, reporting errno (EPIPE and ENOSPC by name). */
void die_write(const char *name) __attribute__((noreturn));

/* Whether path may be replaced by a temporary file and rename: absent or a regular file
 * (not "-", nor a device such as /dev/full or a FIFO, which are written in place). */
int is_replaceable(const char *path);
/* "path.tmp", the temporary file that commit_file() will move over path; until then it is
 * removed if the program exits (a failed write dies with half a file in it). */
char *temp_path(const char *path);
/* Move tmp over path once its bytes are on disk, then sync the directory entry. Dies with
 * EXIT_IO (removing tmp) on failure; path is then left as it was. */
void commit_file(const char *tmp, const char *path);

/* Read a whole file (or stdin) into memory; dies on error. */
unsigned char *read_file(const char *path, size_t *len);

/* Parse helpers for option values: die with EXIT_USAGE naming the option. */
long long parse_int(const char *opt, const char *s, long long lo, long long hi);
double parse_double(const char *opt, const char *s, double lo, double hi);
/* Parse "m" or "m,m,m" (e.g. --mean, --std) into three floats; one value fills all. */
void parse_floats3(const char *opt, const char *s, float *v);
/* Parse a size with optional k/M/G suffix (powers of 1024). */
uint64_t parse_size(const char *opt, const char *s);

/* Number of threads: --threads, else $CULL_THREADS, else online CPUs. */
int default_threads(void);
/* The most threads any program takes (--threads, CULL_THREADS). */
#define THREADS_MAX 1024
/* --threads T: 1..THREADS_MAX, else die with EXIT_USAGE. */
int parse_threads(const char *s);

/* --version: "PROG VERSION", then the line `detail` if not NULL (e.g. "nn: ..."), on
 * stdout, checked, and exit 0. */
void print_version(const char *prog, const char *detail) __attribute__((noreturn));

/* SIGINT and SIGTERM set cull_interrupted instead of ending the program, so a long loop
 * can save its state and stop at the next safe point (then exit EXIT_INTERRUPTED). */
extern volatile sig_atomic_t cull_interrupted;
void catch_interrupts(void);

/* Seconds since an arbitrary epoch (monotonic). */
double now_seconds(void);

/* Whether stderr is a terminal (progress lines are shown only then). */
int stderr_is_tty(void);

#endif
