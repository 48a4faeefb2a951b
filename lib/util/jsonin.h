/* JSON text to a jansson tree, faster than json_loadb (private to the
 * library and the operators).
 *
 * jansson's reader takes the text one character at a time through a
 * stream, checking each as UTF-8 and appending each to a string buffer;
 * parsing what the API server sends (watch events, answers, list pages,
 * the store's own copies) was a fifth of the aws-auth operator's CPU
 * under churn. This reader scans runs of plain bytes at once and builds
 * the same tree: what json_loadb(s, n, 0 or JSON_DECODE_ANY) accepts, it
 * accepts with an equal result, and what it refuses, it refuses (UTF-8
 * checked everywhere, no control character or \u0000 in a string, no
 * lone surrogate, integers that do not fit refused, reals that overflow
 * refused, the last of repeated keys kept, nesting at most
 * CK_JSON_PARSE_MAX_DEPTH values deep, nothing after the value but
 * whitespace). One difference: jansson skips a NUL byte right after a
 * number or a literal ("[1\0]" is [1] to it); this reader refuses it,
 * as any other byte out of place.
 */
#ifndef CK_UTIL_JSONIN_H
#define CK_UTIL_JSONIN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define CK_JSON_PARSE_MAX_DEPTH 2048 /* as jansson's JSON_PARSER_MAX_DEPTH */

typedef struct ck_json_err {
  size_t position; /* byte offset of the fault */
  char text[96];   /* what is wrong there */
} ck_json_err_t;

/* Parse s[0..n). any: a value of any type at the top (JSON_DECODE_ANY);
 * otherwise an object or an array. Returns a new reference (caller
 * decrefs), or NULL with *e filled (e may be NULL); out of memory also
 * gives NULL ("out of memory"). */
json_t *ck_json_loadb(const char *s, size_t n, bool any, ck_json_err_t *e);

#endif
