/* Read a plain or compressed (gzip, bzip2, xz, zstd) file through libarchive's raw format. */
#ifndef CULL_ZREAD_H
#define CULL_ZREAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "io.h"

typedef struct zread zread;

/* Open a file ("-" or NULL: standard input). NULL when it cannot be opened (EXIT_IO in e)
 * or its compression is not recognised (EXIT_DATA), the message naming the file. */
zread *zread_open(const char *path, cull_err *e);
/* Read up to n decompressed bytes; returns fewer only at the end of the data, and -1 on a
 * read or decompression error (zread_error(): EXIT_DATA, naming the file and offset). */
ssize_t zread_read(zread *z, void *buf, size_t n);
const cull_err *zread_error(const zread *z);
uint64_t zread_offset(const zread *z);   /* decompressed bytes returned so far */
const char *zread_name(const zread *z);  /* display name of the file */
void zread_close(zread *z);

/* The whole decompressed content of a file (malloc'd; *len its size), or NULL with the
 * error in e (EXIT_NOMEM when it does not fit in memory). */
unsigned char *zread_all(const char *path, size_t *len, cull_err *e);

#endif
