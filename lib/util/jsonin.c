/* JSON text to a jansson tree (see jsonin.h). */
#include "util/jsonin.h"

#include "util/buf.h"
#include "util/utf8.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rd {
  const unsigned char *s;
  size_t n, i;
  int depth;
  ck_buf_t scratch; /* unescaped strings */
  ck_json_err_t *e;
  bool failed;
} rd_t;

static json_t *fail(rd_t *r, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static json_t *fail(rd_t *r, size_t at, const char *fmt, ...) {
  if (!r->failed && r->e) {
    r->e->position = at;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->e->text, sizeof r->e->text, fmt, ap);
    va_end(ap);
  }
  r->failed = true;
  return NULL;
}

static void skip_ws(rd_t *r) {
  while (r->i < r->n) {
    unsigned char c = r->s[r->i];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
      return;
    r->i++;
  }
}

static int hex4(const unsigned char *p) {
  int v = 0;
  for (int k = 0; k < 4; k++) {
    int c = p[k], d = c >= '0' && c <= '9'   ? c - '0'
                      : c >= 'a' && c <= 'f' ? c - 'a' + 10
                      : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                             : -1;
    if (d < 0)
      return -1;
    v = v << 4 | d;
  }
  return v;
}

static void put_utf8(ck_buf_t *b, uint32_t cp) {
  char u[4];
  size_t l;
  if (cp < 0x80) {
    u[0] = (char)cp;
    l = 1;
  } else if (cp < 0x800) {
    u[0] = (char)(0xc0 | cp >> 6);
    u[1] = (char)(0x80 | (cp & 0x3f));
    l = 2;
  } else if (cp < 0x10000) {
    u[0] = (char)(0xe0 | cp >> 12);
    u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
    u[2] = (char)(0x80 | (cp & 0x3f));
    l = 3;
  } else {
    u[0] = (char)(0xf0 | cp >> 18);
    u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    u[3] = (char)(0x80 | (cp & 0x3f));
    l = 4;
  }
  ck_buf_append(b, u, l);
}

/* The string whose opening quote is at r->i: its bytes in *out (into the
 * text, or into the scratch buffer when it has escapes), length *len.
 * r->i ends past the closing quote. false: failed (r->e set). */
static bool read_string(rd_t *r, const char **out, size_t *len) {
  size_t start = ++r->i, run = start;
  bool esc = false;
  const unsigned char *s = r->s;
  for (;;) {
    while (r->i < r->n && s[r->i] >= 0x20 && s[r->i] < 0x80 && s[r->i] != '"' && s[r->i] != '\\')
      r->i++;
    if (r->i >= r->n) {
      fail(r, r->i, "premature end of input in a string");
      return false;
    }
    unsigned char c = s[r->i];
    if (c == '"')
      break;
    if (c >= 0x80) {
      uint32_t cp;
      size_t l = ck_utf8_decode(s + r->i, r->n - r->i, &cp);
      if (!l) {
        fail(r, r->i, "invalid UTF-8 byte 0x%02x", c);
        return false;
      }
      r->i += l;
      continue;
    }
    if (c < 0x20) {
      fail(r, r->i, "control character 0x%x in a string", c);
      return false;
    }
    /* a backslash */
    if (!esc) {
      ck_buf_reset(&r->scratch);
      esc = true;
    }
    ck_buf_append(&r->scratch, s + run, r->i - run);
    if (r->i + 1 >= r->n) {
      fail(r, r->i, "premature end of input in a string");
      return false;
    }
    unsigned char x = s[r->i + 1];
    const char *lit = x == '"' ? "\"" : x == '\\' ? "\\" : x == '/' ? "/" : x == 'b' ? "\b"
                      : x == 'f' ? "\f" : x == 'n' ? "\n" : x == 'r' ? "\r" : x == 't' ? "\t"
                                                                                     : NULL;
    if (lit) {
      ck_buf_append(&r->scratch, lit, 1);
      r->i += 2;
    } else if (x == 'u') {
      size_t at = r->i;
      int v = r->i + 6 <= r->n ? hex4(s + r->i + 2) : -1;
      if (v < 0) {
        fail(r, at, "invalid \\u escape");
        return false;
      }
      r->i += 6;
      uint32_t cp = (uint32_t)v;
      if (cp >= 0xd800 && cp <= 0xdbff) { /* a pair, or refused */
        int lo = r->i + 6 <= r->n && s[r->i] == '\\' && s[r->i + 1] == 'u' ? hex4(s + r->i + 2) : -1;
        if (lo < 0xdc00 || lo > 0xdfff) {
          fail(r, at, "invalid Unicode '\\u%04X'", cp);
          return false;
        }
        cp = 0x10000 + ((cp - 0xd800) << 10) + ((uint32_t)lo - 0xdc00);
        r->i += 6;
      } else if (cp >= 0xdc00 && cp <= 0xdfff) {
        fail(r, at, "invalid Unicode '\\u%04X'", cp);
        return false;
      } else if (cp == 0) {
        fail(r, at, "\\u0000 is not allowed");
        return false;
      }
      put_utf8(&r->scratch, cp);
    } else {
      fail(r, r->i, "invalid escape");
      return false;
    }
    run = r->i;
  }
  if (esc) {
    ck_buf_append(&r->scratch, s + run, r->i - run);
    if (r->scratch.oom) { /* it would be cut short */
      fail(r, start, "out of memory");
      return false;
    }
    *out = r->scratch.data ? r->scratch.data : "";
    *len = r->scratch.len;
  } else {
    *out = (const char *)s + start;
    *len = r->i - start;
  }
  r->i++; /* the closing quote */
  return true;
}

static bool digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* One digit or more at r->i, skipped; false when there is none. */
static bool digits(rd_t *r) {
  if (r->i >= r->n || !digit(r->s[r->i]))
    return false;
  while (r->i < r->n && digit(r->s[r->i]))
    r->i++;
  return true;
}

static json_t *read_number(rd_t *r) {
  size_t start = r->i;
  const unsigned char *s = r->s;
  if (r->i < r->n && s[r->i] == '-')
    r->i++;
  if (r->i >= r->n || !digit(s[r->i]))
    return fail(r, start, "invalid token");
  if (s[r->i] == '0') {
    r->i++;
    if (r->i < r->n && digit(s[r->i]))
      return fail(r, start, "invalid token");
  } else {
    while (r->i < r->n && digit(s[r->i]))
      r->i++;
  }
  bool real = false;
  if (r->i < r->n && s[r->i] == '.') {
    r->i++;
    if (!digits(r))
      return fail(r, start, "invalid token");
    real = true;
  }
  if (r->i < r->n && (s[r->i] == 'e' || s[r->i] == 'E')) {
    r->i++;
    if (r->i < r->n && (s[r->i] == '+' || s[r->i] == '-'))
      r->i++;
    if (!digits(r))
      return fail(r, start, "invalid token");
    real = true;
  }
  size_t len = r->i - start;
  char stack[64], *num = len < sizeof stack ? stack : malloc(len + 1);
  if (!num)
    return fail(r, start, "out of memory");
  memcpy(num, s + start, len);
  num[len] = '\0';
  json_t *v = NULL;
  char *end;
  errno = 0;
  if (!real) {
    long long x = strtoll(num, &end, 10);
    if (errno == ERANGE)
      fail(r, start, "too big %sinteger", x < 0 ? "negative " : "");
    else
      v = json_integer((json_int_t)x);
  } else {
    double d = strtod(num, &end);
    if (end != num + len) { /* a locale whose decimal point is not '.': jansson's way */
      v = json_loadb(num, len, JSON_DECODE_ANY, NULL);
      if (!v)
        fail(r, start, "invalid real number");
    } else if ((d == HUGE_VAL || d == -HUGE_VAL) && errno == ERANGE) {
      fail(r, start, "real number overflow");
    } else {
      v = json_real(d);
    }
  }
  if (num != stack)
    free(num);
  if (!v && !r->failed)
    fail(r, start, "out of memory");
  return v;
}

static json_t *read_value(rd_t *r);

/* After an item of an object or array: 1 when a comma says another
 * follows, 0 when `close` ends it (consumed), -1 (failed) otherwise. */
static int next_item(rd_t *r, char close) {
  skip_ws(r);
  if (r->i < r->n && r->s[r->i] == ',') {
    r->i++;
    skip_ws(r);
    return 1;
  }
  if (r->i < r->n && r->s[r->i] == (unsigned char)close) {
    r->i++;
    return 0;
  }
  fail(r, r->i, "',' or '%c' expected", close);
  return -1;
}

static json_t *read_object(rd_t *r) {
  json_t *o = json_object();
  if (!o)
    return fail(r, r->i, "out of memory");
  r->i++; /* { */
  skip_ws(r);
  if (r->i < r->n && r->s[r->i] == '}') {
    r->i++;
    return o;
  }
  for (;;) {
    if (r->i >= r->n || r->s[r->i] != '"') {
      json_decref(o);
      return fail(r, r->i, "string or '}' expected");
    }
    const char *k;
    size_t klen;
    if (!read_string(r, &k, &klen)) {
      json_decref(o);
      return NULL;
    }
    /* The key may be in the scratch buffer, which the value reuses. */
    char stack[128], *key = klen < sizeof stack ? stack : malloc(klen + 1);
    if (!key) {
      json_decref(o);
      return fail(r, r->i, "out of memory");
    }
    memcpy(key, k, klen);
    key[klen] = '\0';
    skip_ws(r);
    json_t *v = NULL;
    if (r->i >= r->n || r->s[r->i] != ':') {
      fail(r, r->i, "':' expected");
    } else {
      r->i++;
      skip_ws(r);
      v = read_value(r);
    }
    if (v && json_object_setn_new_nocheck(o, key, klen, v) != 0) {
      v = NULL;
      fail(r, r->i, "out of memory");
    }
    if (key != stack)
      free(key);
    if (!v) {
      json_decref(o);
      return NULL;
    }
    int more = next_item(r, '}');
    if (more <= 0) {
      if (more < 0)
        json_decref(o);
      return more < 0 ? NULL : o;
    }
  }
}

static json_t *read_array(rd_t *r) {
  json_t *a = json_array();
  if (!a)
    return fail(r, r->i, "out of memory");
  r->i++; /* [ */
  skip_ws(r);
  if (r->i < r->n && r->s[r->i] == ']') {
    r->i++;
    return a;
  }
  for (;;) {
    json_t *v = read_value(r);
    if (!v || json_array_append_new(a, v) != 0) {
      json_decref(a);
      return v ? fail(r, r->i, "out of memory") : NULL;
    }
    int more = next_item(r, ']');
    if (more <= 0) {
      if (more < 0)
        json_decref(a);
      return more < 0 ? NULL : a;
    }
  }
}

static json_t *literal(rd_t *r, const char *word, json_t *v) {
  size_t l = strlen(word);
  if (r->n - r->i < l || memcmp(r->s + r->i, word, l) != 0)
    return fail(r, r->i, "invalid token");
  r->i += l;
  return v;
}

/* The value at r->i (no whitespace before it). */
static json_t *read_value(rd_t *r) {
  if (++r->depth > CK_JSON_PARSE_MAX_DEPTH)
    return fail(r, r->i, "maximum parsing depth reached");
  if (r->i >= r->n)
    return fail(r, r->i, "premature end of input");
  json_t *v;
  switch (r->s[r->i]) {
  case '{':
    v = read_object(r);
    break;
  case '[':
    v = read_array(r);
    break;
  case '"': {
    const char *str;
    size_t len;
    v = read_string(r, &str, &len) ? json_stringn_nocheck(str, len) : NULL;
    if (!v && !r->failed)
      fail(r, r->i, "out of memory");
    break;
  }
  case 't':
    v = literal(r, "true", json_true());
    break;
  case 'f':
    v = literal(r, "false", json_false());
    break;
  case 'n':
    v = literal(r, "null", json_null());
    break;
  default:
    v = read_number(r);
  }
  r->depth--;
  return v;
}

json_t *ck_json_loadb(const char *s, size_t n, bool any, ck_json_err_t *e) {
  rd_t r = {.s = (const unsigned char *)s, .n = s ? n : 0, .e = e};
  if (e) {
    e->position = 0;
    e->text[0] = '\0';
  }
  skip_ws(&r);
  json_t *v = NULL;
  if (!any && (r.i >= r.n || (r.s[r.i] != '{' && r.s[r.i] != '[')))
    fail(&r, r.i, "'[' or '{' expected");
  else
    v = read_value(&r);
  if (v) {
    skip_ws(&r);
    if (r.i < r.n) {
      json_decref(v);
      v = fail(&r, r.i, "end of input expected");
    }
  }
  ck_buf_free(&r.scratch);
  return v;
}
