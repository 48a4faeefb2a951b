#include "util/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ck_buf_free(ck_buf_t *b) {
  free(b->data);
  *b = (ck_buf_t){0};
}

void ck_buf_reset(ck_buf_t *b) {
  b->len = 0;
  if (b->data)
    b->data[0] = '\0';
  b->oom = false;
}

bool ck_buf_reserve(ck_buf_t *b, size_t extra) {
  if (b->oom)
    return false;
  if (extra > SIZE_MAX - b->len - 1) {
    b->oom = true;
    return false;
  }
  size_t need = b->len + extra + 1;
  if (need <= b->cap)
    return true;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need)
    cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  char *p = realloc(b->data, cap);
  if (!p) {
    b->oom = true;
    return false;
  }
  b->data = p;
  b->cap = cap;
  return true;
}

void ck_buf_append(ck_buf_t *b, const void *data, size_t n) {
  if (!ck_buf_reserve(b, n))
    return;
  if (n)
    memcpy(b->data + b->len, data, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void ck_buf_puts(ck_buf_t *b, const char *s) { ck_buf_append(b, s, strlen(s)); }
void ck_buf_putc(ck_buf_t *b, char c) { ck_buf_append(b, &c, 1); }

void ck_buf_vprintf(ck_buf_t *b, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0 || !ck_buf_reserve(b, (size_t)n))
    return;
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
}

void ck_buf_printf(ck_buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ck_buf_vprintf(b, fmt, ap);
  va_end(ap);
}

void ck_buf_json_string(ck_buf_t *b, const char *s) {
  ck_buf_putc(b, '"');
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    switch (*p) {
    case '"': ck_buf_puts(b, "\\\""); break;
    case '\\': ck_buf_puts(b, "\\\\"); break;
    case '\n': ck_buf_puts(b, "\\n"); break;
    case '\r': ck_buf_puts(b, "\\r"); break;
    case '\t': ck_buf_puts(b, "\\t"); break;
    default:
      if (*p < 0x20)
        ck_buf_printf(b, "\\u%04x", *p);
      else
        ck_buf_putc(b, (char)*p);
    }
  }
  ck_buf_putc(b, '"');
}

void ck_buf_urlencode(ck_buf_t *b, const char *s) {
  static const char hex[] = "0123456789ABCDEF";
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
        *p == '-' || *p == '_' || *p == '.' || *p == '~') {
      ck_buf_putc(b, (char)*p);
    } else {
      char enc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
      ck_buf_append(b, enc, 3);
    }
  }
}

char *ck_buf_steal(ck_buf_t *b) {
  char *p = b->data;
  if (!p)
    p = calloc(1, 1);
  *b = (ck_buf_t){0};
  return p;
}
