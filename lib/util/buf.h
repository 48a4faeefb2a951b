/* Growable byte buffer (private to the library). A zeroed ck_buf_t is an
 * empty buffer; data is always NUL-terminated once anything was appended.
 * Allocation failure sets `oom` and further appends are ignored, so a
 * caller checks once at the end. Free with ck_buf_free. */
#ifndef CK_UTIL_BUF_H
#define CK_UTIL_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct ck_buf {
  char *data;
  size_t len;
  size_t cap;
  bool oom;
} ck_buf_t;

void ck_buf_free(ck_buf_t *b);
void ck_buf_reset(ck_buf_t *b);
bool ck_buf_reserve(ck_buf_t *b, size_t extra);
void ck_buf_append(ck_buf_t *b, const void *data, size_t n);
void ck_buf_puts(ck_buf_t *b, const char *s);
void ck_buf_putc(ck_buf_t *b, char c);
void ck_buf_printf(ck_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ck_buf_vprintf(ck_buf_t *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Append `s` as a JSON string literal (quoted, escaped). */
void ck_buf_json_string(ck_buf_t *b, const char *s);
/* Append `s` percent-encoded for a URL query value or path segment. */
void ck_buf_urlencode(ck_buf_t *b, const char *s);
/* Take ownership of the data (caller frees); the buffer becomes empty. */
char *ck_buf_steal(ck_buf_t *b);

#endif
