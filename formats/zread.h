/* Read a plain or compressed (gzip, bzip2, xz, zstd) file through libarchive's raw format. */
#ifndef CULL_ZREAD_H
#define CULL_ZREAD_H

#include <stddef.h>
#include <stdint.h>

typedef struct zread zread;

/* Open a file ("-" or NULL: standard input); dies with EXIT_IO when it cannot be opened. */
zread *zread_open(const char *path);
/* Read up to n decompressed bytes; returns fewer only at the end of the data. A read or
 * decompression error is fatal (EXIT_DATA, naming the file and offset). */
size_t zread_read(zread *z, void *buf, size_t n);
uint64_t zread_offset(const zread *z);   /* decompressed bytes returned so far */
const char *zread_name(const zread *z);  /* display name of the file */
void zread_close(zread *z);

/* The whole decompressed content of a file (malloc'd; *len its size). */
unsigned char *zread_all(const char *path, size_t *len);

#endif
