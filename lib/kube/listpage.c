/* A List answer walked item by item. Parsing a page of 500 objects whole
 * builds every object's tree at once (several MiB, the peak of a relist);
 * here the text is split at the top level and each item is parsed, handed
 * on and freed before the next. The split follows only the punctuation
 * (strings, nesting); every piece it cuts out is parsed by the JSON
 * reader (util/jsonin.h), which checks the rest, so the walk accepts what
 * a whole parse would. */
#include "kube/kube_internal.h"
#include "util/jsonin.h"

#include <string.h>

static bool ws(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_ws(const char *b, size_t n, size_t i) {
  while (i < n && ws(b[i]))
    i++;
  return i;
}

/* Index just past the JSON value that starts at b[i], or 0 when none can
 * end there (truncated, or a closing bracket with nothing open). */
static size_t span(const char *b, size_t n, size_t i) {
  size_t depth = 0;
  do {
    if (i >= n)
      return 0;
    char c = b[i];
    if (c == '"') {
      for (i++; i < n && b[i] != '"'; i++)
        if (b[i] == '\\')
          i++;
      if (i >= n)
        return 0;
      i++;
    } else if (c == '{' || c == '[') {
      depth++;
      i++;
    } else if (c == '}' || c == ']') {
      if (depth == 0)
        return 0;
      depth--;
      i++;
    } else if (depth > 0 && (c == ',' || c == ':' || ws(c))) {
      i++;
    } else { /* a number or a literal: up to the next delimiter */
      size_t s = i;
      while (i < n && !ws(b[i]) && !strchr(",:[]{}\"", b[i]))
        i++;
      if (i == s)
        return 0;
    }
  } while (depth > 0);
  return i;
}

static int fault(ck_error_t *err, size_t at, const char *what) {
  return ck_error_set(err, CK_EPARSE, "not a List at byte %zu: %s", at, what);
}

/* The value b[s..e) parsed on its own; NULL (err set) when invalid. */
static json_t *parse(const char *b, size_t s, size_t e, ck_error_t *err) {
  ck_json_err_t je;
  json_t *v = ck_json_loadb(b + s, e - s, true, &je);
  if (!v)
    ck_error_set(err, CK_EPARSE, "not a List at byte %zu: %s", s + je.position, je.text);
  return v;
}

/* The elements of the array at b[i]; *end: past it. */
static int items(const char *b, size_t n, size_t i, size_t *end,
                 int (*fn)(void *ctx, json_t *item), void *ctx, ck_error_t *err) {
  if (i + 4 <= n && memcmp(b + i, "null", 4) == 0) {
    *end = i + 4;
    return 0;
  }
  if (i >= n || b[i] != '[')
    return fault(err, i, "items is not an array");
  i = skip_ws(b, n, i + 1);
  if (i < n && b[i] == ']') {
    *end = i + 1;
    return 0;
  }
  for (;;) {
    size_t e = span(b, n, i);
    if (!e)
      return fault(err, i, "an item does not end");
    json_t *item = parse(b, i, e, err);
    if (!item)
      return CK_EPARSE;
    int rc = fn(ctx, item);
    json_decref(item);
    if (rc)
      return rc;
    i = skip_ws(b, n, e);
    if (i < n && b[i] == ']') {
      *end = i + 1;
      return 0;
    }
    if (i >= n || b[i] != ',')
      return fault(err, i, "expected , or ] after an item");
    i = skip_ws(b, n, i + 1);
  }
}

int ck_list_page_each(const char *body, size_t len, int (*fn)(void *ctx, json_t *item),
                      void *ctx, json_t **meta, ck_error_t *err) {
  if (meta)
    *meta = NULL;
  size_t i = skip_ws(body, len, 0);
  if (i >= len || body[i] != '{')
    return fault(err, i, "not an object");
  i = skip_ws(body, len, i + 1);
  int rc = 0;
  bool first = true;
  while (rc == 0) {
    if (i < len && body[i] == '}' && first) {
      i++;
      break;
    }
    size_t ke = i < len && body[i] == '"' ? span(body, len, i) : 0;
    if (!ke) {
      rc = fault(err, i, "expected a member name");
      break;
    }
    json_t *key = parse(body, i, ke, err);
    if (!key) {
      rc = CK_EPARSE;
      break;
    }
    const char *k = json_string_value(key);
    bool is_items = strcmp(k, "items") == 0, is_meta = strcmp(k, "metadata") == 0;
    json_decref(key);
    i = skip_ws(body, len, ke);
    if (i >= len || body[i] != ':') {
      rc = fault(err, i, "expected :");
      break;
    }
    i = skip_ws(body, len, i + 1);
    size_t ve = 0;
    if (is_items) {
      rc = items(body, len, i, &ve, fn, ctx, err);
    } else if (!(ve = span(body, len, i))) {
      rc = fault(err, i, "a value does not end");
    } else {
      json_t *v = parse(body, i, ve, err); /* checked even when not kept */
      if (!v)
        rc = CK_EPARSE;
      else if (is_meta && meta && json_is_object(v)) {
        json_decref(*meta);
        *meta = json_incref(v);
      }
      json_decref(v);
    }
    if (rc)
      break;
    first = false;
    i = skip_ws(body, len, ve);
    if (i < len && body[i] == '}') {
      i++;
      break;
    }
    if (i >= len || body[i] != ',') {
      rc = fault(err, i, "expected , or } after a member");
      break;
    }
    i = skip_ws(body, len, i + 1);
  }
  if (rc == 0 && skip_ws(body, len, i) != len)
    rc = fault(err, i, "text after the List");
  if (rc && meta) {
    json_decref(*meta);
    *meta = NULL;
  }
  return rc;
}
