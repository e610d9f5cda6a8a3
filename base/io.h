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
	EXIT_DEVICE = 6, /* the device asked for cannot be used: no GPU, driver or library */
	EXIT_INTERRUPTED = 130,   /* SIGINT or SIGTERM, after saving what can be resumed */
};

#define CULL_VERSION "0.1.0"

extern const char *progname;     /* set by cull_init() */

/* Set progname from argv[0] and restore SIGPIPE's default; call first in main(). */
void cull_init(const char *argv0);

/* "prog: message" on stderr and exit(code). exit() flushes what was written before.
 * For programs: code in formats/ and nn/ reports a cull_err instead (below). */
void die(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
/* "prog: warning: message" on stderr. */
void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "prog: message" on stderr, no prefix word. */
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Libraries report, programs decide (STYLE.md 11). A function in formats/ or nn/ that can
 * fail returns -1 (or NULL) and fills a cull_err: the exit status a program would end
 * with (EXIT_DATA, EXIT_IO, ...) and one line of text, without the program's name. A
 * stateless call takes a cull_err * (NULL: the caller wants no message); a stateful
 * reader keeps one inside and exposes it (rec_error()). A program passes it to die_err(),
 * or words it as a warning and goes on; only programs (filters/, trainer/, theory/,
 * tests/, bench/) call die() or exit().
 * The one exception is memory: xmalloc and friends below, and die_nomem() where a
 * library's own allocator fails, end the program from anywhere, libraries included.
 */
typedef struct {
	int code;          /* EXIT_*; 0 while there is no error */
	char msg[1024];    /* one line, cut at 1023 bytes */
} cull_err;

/* Fill e (when not NULL) and return -1, so a library can `return cull_err_set(...)`. */
int cull_err_set(cull_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* die(e->code, "%s", e->msg). */
void die_err(const cull_err *e) __attribute__((noreturn));
/* "prog: message" and EXIT_NOMEM: an allocation that failed outside xmalloc (msgpack-c's,
 * libarchive's). Fatal from a library too, like xmalloc. */
void die_nomem(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* Allocation that dies with EXIT_NOMEM on failure, from programs and libraries alike. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
/* realloc to n * size, checking the multiplication. */
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* asprintf that dies on failure. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* realloc that reports instead: NULL and xrealloc's message (EXIT_NOMEM) in e, p kept.
 * For a buffer whose size the input decides (a decompressed file), which a library grows. */
void *cull_realloc(void *p, size_t n, cull_err *e);

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

/* The same three for libraries: -1 (or NULL) with the message the x version would die
 * with, and EXIT_IO, in e. */
FILE *cull_fopen(const char *path, const char *mode, cull_err *e);
int cull_fwrite(const void *buf, size_t n, FILE *f, const char *name, cull_err *e);
int cull_fclose(FILE *f, const char *name, cull_err *e);

/* Whether path may be replaced by a temporary file and rename: absent or a regular file
 * (not "-", nor a device such as /dev/full or a FIFO, which are written in place). */
int is_replaceable(const char *path);
/* "path.tmp", the temporary file that commit_file() will move over path; until then it is
 * removed if the program exits (a failed write dies with half a file in it). */
char *temp_path(const char *path);
/* Move tmp over path once its bytes are on disk, then sync the directory entry. Dies with
 * EXIT_IO (removing tmp) on failure; path is then left as it was. */
void commit_file(const char *tmp, const char *path);
/* commit_file for libraries: -1 and the message in e instead of dying. */
int cull_commit_file(const char *tmp, const char *path, cull_err *e);

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
