/* Records as JSON Lines, both ways: cull-json's mapping (see cull-json(1)). */
#ifndef CULL_JSONL_H
#define CULL_JSONL_H

#include <stddef.h>

#include "io.h"
#include "json.h"
#include "record.h"

/*
 * One record as one line of JSON, "\n" included, into b (emptied first). Strings stay
 * strings, bin fields become {"base64": "..."}, a float32 "emb" an array of %.9g numbers,
 * packed arrays, maps and ext values JSON arrays, objects and {"ext": N, "base64": "..."}
 * (a non-string map key becomes its JSON text). Returns 0, or -1 with EXIT_DATA in e,
 * naming src and the record's key: a packed field that is not msgpack, or non-string map
 * keys nested more than 4 deep.
 */
int jsonl_put_record(json_buf *b, const record *r, const char *src, cull_err *e);

/*
 * The line text[0, len) as record r, the reverse mapping (numbers keep the width they
 * were written with: a float32 printed by jsonl_put_record reads back as float32): 1, or
 * 0 for a blank line, or -1 with EXIT_DATA in e, "NAME:LINE:COLUMN: what". The line must
 * be one JSON object with a string "key" and field names up to 255 bytes, each once.
 */
int jsonl_to_record(record *r, const char *text, size_t len, const char *name,
                    unsigned long long line, cull_err *e);

#endif
