/* Base64 (standard alphabet, padding optional, whitespace ignored).
 * Private to the library. */
#ifndef CK_UTIL_BASE64_H
#define CK_UTIL_BASE64_H

#include <stddef.h>

/* Decode `in` (NUL-terminated). On success returns 0 and sets *out
 * (malloc'd, NUL-terminated for convenience; caller frees) and *outlen.
 * Returns CK_EINVAL on a character outside the alphabet or bad length. */
int ck_base64_decode(const char *in, unsigned char **out, size_t *outlen);

/* Encode; returns a malloc'd NUL-terminated string or NULL. */
char *ck_base64_encode(const unsigned char *in, size_t len);

#endif
