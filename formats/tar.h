/* Tar headers as the shard reader parses them: fields, checksums. */
#ifndef CULL_TAR_H
#define CULL_TAR_H

#include <stddef.h>
#include <stdint.h>

/* Each field is read as libarchive reads it, so that a plain shard (parsed by wds.c over
 * these functions) and a compressed one (read by libarchive) give the same members. */

/* A numeric header field: GNU base-256 when the first byte has its high bit set, else
 * octal after leading spaces and tabs, ending at the first byte that is not an octal digit
 * (so a field that starts with NUL reads 0, as libarchive and Python's tarfile read it). */
uint64_t tar_number(const unsigned char *f, size_t n);
/* The sum of a 512-byte block's bytes, unsigned. */
unsigned tar_block_sum(const unsigned char *h);
/* Whether a 512-byte block is a header with a valid checksum: the unsigned byte sum POSIX
 * specifies or the signed one of historic tars, with the checksum field counted as spaces. */
int tar_header_ok(const unsigned char *h);
/* Whether a block is all zero bytes (end-of-archive). */
int tar_block_zero(const unsigned char *h);

#endif
