/* Tar headers as the shard reader parses them: fields, checksums, pax records, GNU sparse maps. */
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

/* What an entry is, as libarchive classifies it (by the type flag, the mode's file type
 * bits where the flag says nothing, a link name and a trailing slash). */
enum {
	TAR_REGULAR,       /* a file: a sample member */
	TAR_HARDLINK,      /* a hard link without data of its own: link names the target */
	TAR_SYMLINK, TAR_CHAR, TAR_BLOCK, TAR_DIR, TAR_FIFO, TAR_SOCKET,
	TAR_UNKNOWN,       /* no file type (a GNU multi-volume continuation, say) */
	TAR_BAD_SPARSE,    /* a GNU sparse file in a format other than 0.0, 0.1, 1.0, old */
};
/* The words for a kind that is not carried (TAR_SYMLINK ... TAR_UNKNOWN): "a symbolic link". */
const char *tar_kind_name(int kind);

/* A run of data in a sparse file: size bytes at offset; the rest of the file is zeros. */
typedef struct {
	uint64_t offset, size;
} tar_chunk;

/* One entry: what its extension headers ('L', 'K', 'x', 'X') said, then its own header.
 * The strings and the map are its own storage, reused from entry to entry. */
typedef struct {
	/* set by the extension headers; the first one that sets a field wins, as in libarchive */
	char *path, *link, *sparse_name;
	size_t path_cap, link_cap, sparse_name_cap;
	int have_path, have_link, have_sparse_name;
	int have_size, have_realsize;
	uint64_t pax_size, realsize;
	int sparse_major, sparse_minor;   /* GNU.sparse.major/minor; -1 when not given */
	int map_given;                    /* a sparse map came with the headers */
	uint64_t map_offset;              /* 0.0: an offset waiting for its numbytes */
	int map_half;                     /* 0.0: 1 offset, 2 numbytes is waiting */
	tar_chunk *map;
	size_t nmap, map_cap;
	/* set by tar_entry_header() */
	const char *name;      /* the member's path: one of the strings above, or hname */
	size_t name_len;
	char *hname;           /* the path from the header's name and prefix fields */
	size_t hname_cap;
	int kind;              /* TAR_REGULAR, ... */
	uint64_t size;         /* bytes stored in the archive after the header */
	int sparse;            /* the stored bytes are the map's runs of a file of realsize bytes */
	int extended;          /* old GNU sparse: extension blocks follow the header */
	int map10;             /* GNU sparse 1.0: the map is at the start of the data */
	size_t map10_pos;      /* 1.0: bytes of the map parsed */
	int64_t map10_left;    /* 1.0: numbers still to read (-1: the count line) */
	uint64_t map10_offset;
} tar_entry;

/* Forget what the previous entry's extension headers said (the storage is kept). */
void tar_entry_reset(tar_entry *e);
void tar_entry_free(tar_entry *e);
/* Take the body of an 'L' (path) or 'K' (link) header, n bytes. */
void tar_entry_longname(tar_entry *e, int type, const char *p, size_t n);
/* Apply the records of a pax 'x' header: 0, or -1 when they are malformed. */
int tar_entry_pax(tar_entry *e, const char *p, size_t n);
/* Parse the entry's own header h, its extensions already applied. pax: whether the
 * archive reads as pax here (libarchive then takes a hard link's size as data). Returns
 * the archive's pax state after this header. */
int tar_entry_header(tar_entry *e, const unsigned char *h, int pax);
/* An old GNU sparse extension block: its runs are added; returns whether another follows. */
int tar_entry_extension(tar_entry *e, const unsigned char *b);
/* GNU sparse 1.0: parse the map from the first n bytes of the data (the same bytes, and
 * more, on each call). 1 when the map is complete (its bytes are map10_pos, padded to 512
 * by the caller), 0 when it needs more bytes, -1 when it is malformed. */
int tar_entry_map10(tar_entry *e, const unsigned char *p, size_t n);
/* Whether a sparse entry's map is well formed: runs in order and within realsize, and
 * together exactly the stored bytes. 0, or -1. */
int tar_entry_check_map(const tar_entry *e);

#endif
