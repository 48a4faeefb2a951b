/* Compact JSON from a jansson tree (see jsonout.h). */
#include "util/jsonout.h"

#include "crdkit/error.h"
#include "util/utf8.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes that stand for themselves in a JSON string: printable ASCII but
 * '"' and '\\'. */
static bool plain(unsigned char c) { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\'; }

static int put_string(ck_buf_t *b, const char *str, size_t n) {
  const unsigned char *s = (const unsigned char *)str;
  ck_buf_putc(b, '"');
  size_t run = 0, i = 0;
  while (i < n) {
    unsigned char c = s[i];
    if (plain(c)) {
      i++;
      continue;
    }
    if (c >= 0x80) { /* copied as it is, once known to be UTF-8 */
      uint32_t cp;
      size_t l = ck_utf8_decode(s + i, n - i, &cp);
      if (!l)
        return CK_EINVAL;
      i += l;
      continue;
    }
    ck_buf_append(b, s + run, i - run);
    char esc[8];
    switch (c) {
    case '"': ck_buf_append(b, "\\\"", 2); break;
    case '\\': ck_buf_append(b, "\\\\", 2); break;
    case '\b': ck_buf_append(b, "\\b", 2); break;
    case '\f': ck_buf_append(b, "\\f", 2); break;
    case '\n': ck_buf_append(b, "\\n", 2); break;
    case '\r': ck_buf_append(b, "\\r", 2); break;
    case '\t': ck_buf_append(b, "\\t", 2); break;
    default:
      snprintf(esc, sizeof esc, "\\u%04X", (unsigned)c);
      ck_buf_append(b, esc, 6);
    }
    run = ++i;
  }
  ck_buf_append(b, s + run, n - run);
  ck_buf_putc(b, '"');
  return 0;
}

static int put_value(const json_t *v, ck_buf_t *b, int depth) {
  if (depth > CK_JSON_MAX_DEPTH)
    return CK_EINVAL;
  switch (json_typeof(v)) {
  case JSON_OBJECT: {
    ck_buf_putc(b, '{');
    bool first = true;
    for (void *it = json_object_iter((json_t *)v); it;
         it = json_object_iter_next((json_t *)v, it)) {
      if (!first)
        ck_buf_putc(b, ',');
      first = false;
      int rc = put_string(b, json_object_iter_key(it), json_object_iter_key_len(it));
      if (rc)
        return rc;
      ck_buf_putc(b, ':');
      if ((rc = put_value(json_object_iter_value(it), b, depth + 1)) != 0)
        return rc;
    }
    ck_buf_putc(b, '}');
    return 0;
  }
  case JSON_ARRAY: {
    ck_buf_putc(b, '[');
    size_t n = json_array_size(v);
    for (size_t i = 0; i < n; i++) {
      if (i)
        ck_buf_putc(b, ',');
      int rc = put_value(json_array_get(v, i), b, depth + 1);
      if (rc)
        return rc;
    }
    ck_buf_putc(b, ']');
    return 0;
  }
  case JSON_STRING:
    return put_string(b, json_string_value(v), json_string_length(v));
  case JSON_INTEGER: {
    char num[24];
    int l = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    ck_buf_append(b, num, (size_t)l);
    return 0;
  }
  case JSON_REAL: { /* rare in API objects: jansson's own digits */
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s)
      return CK_ENOMEM;
    ck_buf_puts(b, s);
    free(s);
    return 0;
  }
  case JSON_TRUE:
    ck_buf_append(b, "true", 4);
    return 0;
  case JSON_FALSE:
    ck_buf_append(b, "false", 5);
    return 0;
  case JSON_NULL:
    ck_buf_append(b, "null", 4);
    return 0;
  }
  return CK_EINVAL;
}

int ck_json_dump(const json_t *v, ck_buf_t *b) {
  if (!v)
    return CK_EINVAL;
  size_t start = b->len;
  int rc = put_value(v, b, 0);
  if (!rc && b->oom)
    rc = CK_ENOMEM;
  if (rc == CK_EINVAL && !b->oom) {
    b->len = start; /* nothing of it stays */
    if (b->data)
      b->data[start] = '\0';
  }
  return rc;
}

char *ck_json_dumps(const json_t *v, size_t *len) {
  ck_buf_t b = {0};
  if (ck_json_dump(v, &b) != 0 || !b.data) {
    ck_buf_free(&b);
    return NULL;
  }
  if (len)
    *len = b.len;
  return ck_buf_steal(&b);
}
