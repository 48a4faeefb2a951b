/* Compact JSON from a jansson tree, faster than json_dumps (private to
 * the library and the operators).
 *
 * jansson's encoder hands each run of plain bytes and each escape to a
 * callback, and decodes every character of a string as UTF-8 on the way:
 * an aws-auth ConfigMap of 3,700 entries (480 KB, thousands of quotes and
 * line breaks to escape) takes milliseconds, for every request body and
 * for every object the informer's store keeps. This encoder copies runs
 * of plain ASCII at once and decodes only what is not.
 */
#ifndef CK_UTIL_JSONOUT_H
#define CK_UTIL_JSONOUT_H

#include "util/buf.h"

#include <jansson.h>

/* Append v as compact JSON to b: byte for byte what
 * json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) writes (objects in their
 * order, strings escaped as jansson escapes them, reals written by
 * jansson). Returns 0; CK_EINVAL when v cannot be encoded (a string or key
 * that is not UTF-8, as jansson refuses it; nesting deeper than
 * CK_JSON_MAX_DEPTH, which is also where a tree that contains itself
 * stops) with b's length unchanged; CK_ENOMEM when b ran out of memory. */
#define CK_JSON_MAX_DEPTH 2048
int ck_json_dump(const json_t *v, ck_buf_t *b);

/* The same as a malloc'd NUL-terminated string (caller frees), its length
 * in *len (may be NULL); NULL on failure. */
char *ck_json_dumps(const json_t *v, size_t *len);

#endif
