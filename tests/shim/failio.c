/* LD_PRELOAD shim for tests/faults.test and tests/kill.test: makes writes, fsync or rename
 * fail on chosen paths, or kills the process at a chosen one of those calls. */
/*
 * FAILIO_PATH=SUBSTRING  the paths to fail (a file opened with fopen/open whose name holds it;
 *                        for rename, either name)
 * FAILIO_CALL=write|fsync|rename   which call fails (default write)
 * FAILIO_ERRNO=EIO|ENOSPC          the error (default EIO)
 * FAILIO_KILL_AT=N       instead of failing, SIGKILL the process just before the Nth such
 *                        call on those paths: of FAILIO_CALL's kind when it is set, else
 *                        of any (a write of any kind, fsync or rename)
 * FAILIO_COUNT=FILE      with FAILIO_KILL_AT: at exit, write how many calls there were
 * Writes are caught at fwrite/fputs/fputc/fflush/fclose (glibc's stdio does not call write()
 * through the PLT) and at write() and writev() on descriptors.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

enum { MAXF = 64 };
static FILE *bad_files[MAXF];

static long events;

static long kill_at(void)
{
	const char *k = getenv("FAILIO_KILL_AT");

	return k && *k ? atol(k) : 0;
}

/* One call on a chosen path: in kill mode, die by SIGKILL at the chosen one. */
static int event(void)
{
	long k = kill_at();

	if (!k)
		return 0;
	if (++events >= k)
		raise(SIGKILL);
	return 1;
}

__attribute__((destructor)) static void count_events(void)
{
	const char *c = getenv("FAILIO_COUNT");
	FILE *f;

	if (kill_at() && c && *c && (f = fdopen(open(c, O_WRONLY | O_CREAT | O_TRUNC, 0644), "w"))) {
		fprintf(f, "%ld\n", events);
		fclose(f);
	}
}

static int want(const char *call)
{
	const char *c = getenv("FAILIO_CALL");

	if (kill_at() && !(c && *c))
		return 1;       /* every call counts */
	return strcmp(c && *c ? c : "write", call) == 0;
}

static int match(const char *path)
{
	const char *p = getenv("FAILIO_PATH");

	return p && *p && path && strstr(path, p);
}

static int fail(void)
{
	const char *e = getenv("FAILIO_ERRNO");

	errno = e && strcmp(e, "ENOSPC") == 0 ? ENOSPC : EIO;
	return -1;
}

static int fd_matches(int fd)
{
	char link[64], path[4096];
	ssize_t n;

	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof path - 1);
	if (n < 0)
		return 0;
	path[n] = '\0';
	return match(path);
}

static int is_bad(FILE *f)
{
	for (int i = 0; i < MAXF; i++)
		if (f && bad_files[i] == f)
			return 1;
	return 0;
}

static void remember(FILE *f, const char *path)
{
	if (!f || !want("write") || !match(path))
		return;
	for (int i = 0; i < MAXF; i++)
		if (!bad_files[i]) {
			bad_files[i] = f;
			return;
		}
}

#define REAL(ret, name, ...) static ret (*real)(__VA_ARGS__); \
	if (!real) real = (ret (*)(__VA_ARGS__))dlsym(RTLD_NEXT, name)

FILE *fopen(const char *path, const char *mode)
{
	REAL(FILE *, "fopen", const char *, const char *);
	FILE *f = real(path, mode);

	if (mode[0] != 'r' || strchr(mode, '+'))
		remember(f, path);
	return f;
}

FILE *fopen64(const char *path, const char *mode)
{
	return fopen(path, mode);
}

size_t fwrite(const void *buf, size_t size, size_t n, FILE *f)
{
	REAL(size_t, "fwrite", const void *, size_t, size_t, FILE *);

	if (is_bad(f) && size && n && !event()) {
		fail();
		return 0;
	}
	return real(buf, size, n, f);
}

int fputs(const char *s, FILE *f)
{
	REAL(int, "fputs", const char *, FILE *);

	return is_bad(f) && !event() ? (fail(), EOF) : real(s, f);
}

int fputc(int c, FILE *f)
{
	REAL(int, "fputc", int, FILE *);

	return is_bad(f) && !event() ? (fail(), EOF) : real(c, f);
}

int fflush(FILE *f)
{
	REAL(int, "fflush", FILE *);

	return is_bad(f) && !event() ? (fail(), EOF) : real(f);
}

int fclose(FILE *f)
{
	REAL(int, "fclose", FILE *);
	int bad = is_bad(f) && !event(), r;

	for (int i = 0; i < MAXF; i++)
		if (bad_files[i] == f)
			bad_files[i] = NULL;
	r = real(f);
	return bad ? fail() : r;
}

ssize_t write(int fd, const void *buf, size_t n)
{
	REAL(ssize_t, "write", int, const void *, size_t);

	if (fd > 2 && want("write") && fd_matches(fd) && !event())
		return fail();
	return real(fd, buf, n);
}

ssize_t writev(int fd, const struct iovec *iov, int n)
{
	REAL(ssize_t, "writev", int, const struct iovec *, int);

	if (fd > 2 && want("write") && fd_matches(fd) && !event())
		return fail();
	return real(fd, iov, n);
}

int fsync(int fd)
{
	REAL(int, "fsync", int);

	if (want("fsync") && fd_matches(fd) && !event())
		return fail();
	return real(fd);
}

int fdatasync(int fd)
{
	REAL(int, "fdatasync", int);

	if (want("fsync") && fd_matches(fd) && !event())
		return fail();
	return real(fd);
}

int rename(const char *from, const char *to)
{
	REAL(int, "rename", const char *, const char *);

	if (want("rename") && (match(from) || match(to)) && !event())
		return fail();
	return real(from, to);
}
