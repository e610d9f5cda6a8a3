/* Checked I/O, allocation and error reporting shared by every cull program. */
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *progname = "cull";

void cull_init(const char *argv0)
{
	const char *s;

	/* `prog | head` ends quietly (status 141) even where SIGPIPE was inherited ignored */
	signal(SIGPIPE, SIG_DFL);
	if (argv0 && *argv0) {
		s = strrchr(argv0, '/');
		progname = s ? s + 1 : argv0;
	}
}

static void vmsg(const char *prefix, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: %s", progname, prefix);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void die(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("", fmt, ap);
	va_end(ap);
	exit(code);
}

void warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("warning: ", fmt, ap);
	va_end(ap);
}

void note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("", fmt, ap);
	va_end(ap);
}

int cull_err_set(cull_err *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (e) {
		e->code = code;
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof e->msg, fmt, ap);
		va_end(ap);
	}
	return -1;
}

void die_err(const cull_err *e)
{
	die(e->code, "%s", e->msg);
}

void die_nomem(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("", fmt, ap);
	va_end(ap);
	exit(EXIT_NOMEM);
}

static void *oom(size_t n)
{
	die(EXIT_NOMEM, "out of memory allocating %zu bytes", n);
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	return p ? p : oom(n);
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	return p ? p : oom(n * size);
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	return q ? q : oom(n);
}

void *cull_realloc(void *p, size_t n, cull_err *e)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		cull_err_set(e, EXIT_NOMEM, "out of memory allocating %zu bytes", n);
	return q;
}

void *xreallocarray(void *p, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		die(EXIT_NOMEM, "allocation of %zu x %zu bytes overflows", n, size);
	return xrealloc(p, n * size);
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		die(EXIT_NOMEM, "bad format");
	s = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

const char *io_name(const char *path, int output)
{
	if (!path || strcmp(path, "-") == 0)
		return output ? "<stdout>" : "<stdin>";
	return path;
}

FILE *cull_fopen(const char *path, const char *mode, cull_err *e)
{
	FILE *f;
	int output = mode[0] != 'r';

	if (!path || strcmp(path, "-") == 0)
		return output ? stdout : stdin;
	f = fopen(path, mode);
	if (!f)
		cull_err_set(e, EXIT_IO, "%s: %s", path, strerror(errno));
	return f;
}

FILE *xfopen(const char *path, const char *mode)
{
	cull_err e;
	FILE *f = cull_fopen(path, mode, &e);

	if (!f)
		die_err(&e);
	return f;
}

/* A failed write to `name`, from errno (EPIPE and ENOSPC by name). */
static int write_error(const char *name, cull_err *e)
{
	int n = errno;

	if (n == EPIPE)
		return cull_err_set(e, EXIT_IO, "%s: broken pipe (the reader went away)", name);
	if (n == ENOSPC)
		return cull_err_set(e, EXIT_IO, "%s: no space left on device", name);
	return cull_err_set(e, EXIT_IO, "%s: write error: %s", name,
	                    n ? strerror(n) : "unknown error");
}

void die_write(const char *name)
{
	cull_err e;

	write_error(name, &e);
	die_err(&e);
}

int cull_fwrite(const void *buf, size_t n, FILE *f, const char *name, cull_err *e)
{
	if (n && fwrite(buf, 1, n, f) != n)
		return write_error(name, e);
	return 0;
}

void xfwrite(const void *buf, size_t n, FILE *f, const char *name)
{
	if (n && fwrite(buf, 1, n, f) != n)
		die_write(name);
}

int cull_fclose(FILE *f, const char *name, cull_err *e)
{
	errno = 0;
	if (fflush(f) != 0 || ferror(f))
		return write_error(name, e);
	if (f == stdin)
		return 0;
	if (fclose(f) != 0)
		return write_error(name, e);
	return 0;
}

void xfclose(FILE *f, const char *name)
{
	cull_err e;

	if (cull_fclose(f, name, &e) < 0)
		die_err(&e);
}

int is_replaceable(const char *path)
{
	struct stat st;

	if (!path || strcmp(path, "-") == 0)
		return 0;
	return stat(path, &st) != 0 || S_ISREG(st.st_mode);
}

static int fsync_path(const char *path, int dir, cull_err *e)
{
	int fd = open(path, dir ? O_RDONLY | O_DIRECTORY : O_RDONLY);

	if (fd < 0) {
		if (dir)
			return 0;    /* best effort for the directory */
		return cull_err_set(e, EXIT_IO, "%s: %s", path, strerror(errno));
	}
	if (fsync(fd) != 0 && !dir) {
		int n = errno;
		close(fd);
		unlink(path);
		return cull_err_set(e, EXIT_IO, "%s: fsync: %s", path, strerror(n));
	}
	close(fd);
	return 0;
}

/* The temporary files being written, removed at exit unless committed. */
enum { MAX_TEMPS = 16 };
static char *temps[MAX_TEMPS];

static void remove_temps(void)
{
	for (int i = 0; i < MAX_TEMPS; i++)
		if (temps[i])
			unlink(temps[i]);
}

char *temp_path(const char *path)
{
	static int registered;
	char *tmp = xasprintf("%s.tmp", path);

	if (!registered++)
		atexit(remove_temps);
	for (int i = 0; i < MAX_TEMPS; i++)
		if (!temps[i]) {
			temps[i] = xstrdup(tmp);
			break;
		}
	return tmp;
}

static void forget_temp(const char *tmp)
{
	for (int i = 0; i < MAX_TEMPS; i++)
		if (temps[i] && strcmp(temps[i], tmp) == 0) {
			free(temps[i]);
			temps[i] = NULL;
		}
}

int cull_commit_file(const char *tmp, const char *path, cull_err *e)
{
	char *copy;

	if (fsync_path(tmp, 0, e) < 0)
		return -1;
	if (rename(tmp, path) != 0) {
		int n = errno;
		unlink(tmp);
		return cull_err_set(e, EXIT_IO, "cannot rename %s to %s: %s", tmp, path, strerror(n));
	}
	forget_temp(tmp);
	copy = xstrdup(path);
	fsync_path(dirname(copy), 1, NULL);
	free(copy);
	return 0;
}

void commit_file(const char *tmp, const char *path)
{
	cull_err e;

	if (cull_commit_file(tmp, path, &e) < 0)
		die_err(&e);
}

unsigned char *read_file(const char *path, size_t *len)
{
	FILE *f = xfopen(path, "rb");
	size_t cap = 1 << 16, n = 0, r;
	unsigned char *buf = xmalloc(cap);

	for (;;) {
		if (n == cap)
			buf = xrealloc(buf, cap *= 2);
		r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	if (ferror(f))
		die(EXIT_IO, "%s: read error: %s", io_name(path, 0), strerror(errno));
	if (f != stdin)
		fclose(f);
	*len = n;
	return buf;
}

long long parse_int(const char *opt, const char *s, long long lo, long long hi)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		die(EXIT_USAGE, "%s: expected an integer in [%lld, %lld], got '%s'", opt, lo, hi, s);
	return v;
}

double parse_double(const char *opt, const char *s, double lo, double hi)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo && v <= hi))
		die(EXIT_USAGE, "%s: expected a number in [%g, %g], got '%s'", opt, lo, hi, s);
	return v;
}

void parse_floats3(const char *opt, const char *s, float *v)
{
	char *copy = xstrdup(s), *tok, *save = NULL;
	int n = 0;

	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (n == 3)
			die(EXIT_USAGE, "%s: at most 3 values, got '%s'", opt, s);
		v[n++] = (float)parse_double(opt, tok, -1e6, 1e6);
	}
	if (n == 1)
		v[1] = v[2] = v[0];
	else if (n != 3)
		die(EXIT_USAGE, "%s: expected 1 or 3 comma-separated numbers, got '%s'", opt, s);
	free(copy);
}

uint64_t parse_size(const char *opt, const char *s)
{
	char *end;
	unsigned long long v;
	int shift = 0;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		goto bad;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	}
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end || v > (UINT64_MAX >> shift))
		goto bad;
	return (uint64_t)v << shift;
bad:
	die(EXIT_USAGE, "%s: expected a size such as 512M, got '%s'", opt, s);
}

int default_threads(void)
{
	const char *e = getenv("CULL_THREADS");
	long n;

	if (e && *e)
		return (int)parse_int("CULL_THREADS", e, 1, THREADS_MAX);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

int parse_threads(const char *s)
{
	return (int)parse_int("--threads", s, 1, THREADS_MAX);
}

void print_version(const char *prog, const char *detail)
{
	printf("%s %s\n", prog, CULL_VERSION);
	if (detail)
		printf("%s\n", detail);
	xfclose(stdout, "<stdout>");
	exit(EXIT_OK);
}

volatile sig_atomic_t cull_interrupted;

static void on_interrupt(int sig)
{
	(void)sig;
	cull_interrupted = 1;
}

void catch_interrupts(void)
{
	signal(SIGINT, on_interrupt);
	signal(SIGTERM, on_interrupt);
}

double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int stderr_is_tty(void)
{
	return isatty(2);
}
