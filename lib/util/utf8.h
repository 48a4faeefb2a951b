/* UTF-8 decoding (private to the library and the operators). */
#ifndef CK_UTIL_UTF8_H
#define CK_UTIL_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Decode the well-formed UTF-8 sequence at s (n > 0 bytes left) into *cp.
 * Returns its length, or 0 when it is not well formed: overlong forms,
 * surrogates and code points past U+10FFFF are refused. */
size_t ck_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

#endif
