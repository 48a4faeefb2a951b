#include "util/yaml.h"
#include "util/utf8.h"

#include <ctype.h>
#include <errno.h>
#include <libfyaml.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct frame {
  json_t *node;  /* borrowed: owned by its parent or by the document slot */
  char *key;     /* pending mapping key (malloc'd) or NULL */
  bool key_pending;
  char *anchor;  /* anchor to register when the container ends */
  size_t start_count;
} frame_t;

typedef struct anchor {
  char *name;
  json_t *value;
  size_t count; /* nodes in the anchored subtree */
} anchor_t;

typedef struct conv {
  const ck_yaml_opts_t *o;
  size_t max_nodes;
  int max_depth;
  size_t count;
  frame_t *stack;
  int depth;
  anchor_t *anchors;
  size_t nanchors, capanchors;
  json_t *docs;
  json_t *doc;
  char diag[512];
  ck_error_t *err;
  int rc;
} conv_t;

static void diag_out(struct fy_diag *d, void *user, const char *buf, size_t len) {
  (void)d;
  conv_t *c = user;
  if (c->diag[0])
    return; /* keep the first message: it names the real problem */
  char tmp[sizeof c->diag];
  size_t n = len < sizeof tmp - 1 ? len : sizeof tmp - 1;
  memcpy(tmp, buf, n);
  tmp[n] = '\0';
  while (n && (tmp[n - 1] == '\n' || tmp[n - 1] == ' '))
    tmp[--n] = '\0';
  /* libfyaml writes "<source>:L:C: error: what", where the source of an
   * in-memory string is a memory address: say "line L, column C: what". */
  const char *what = strstr(tmp, ": error: ");
  if (what) {
    const char *col = what;
    while (col > tmp && isdigit((unsigned char)col[-1]))
      col--;
    const char *line = col > tmp + 1 && col < what && col[-1] == ':' ? col - 1 : NULL;
    while (line && line > tmp && isdigit((unsigned char)line[-1]))
      line--;
    if (line && line < col - 1 && line > tmp && line[-1] == ':') {
      snprintf(c->diag, sizeof c->diag, "line %ld, column %ld: %s", strtol(line, NULL, 10),
               strtol(col, NULL, 10), what + strlen(": error: "));
      return;
    }
  }
  memcpy(c->diag, tmp, n + 1);
}

static int fail_at(conv_t *c, struct fy_event *ev, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_at(conv_t *c, struct fy_event *ev, int code, const char *fmt, ...) {
  const struct fy_mark *m = ev ? fy_event_start_mark(ev) : NULL;
  char what[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  if (m)
    ck_error_set(c->err, code, "line %d, column %d: %s", m->line + 1, m->column + 1, what);
  else
    ck_error_set(c->err, code, "%s", what);
  c->rc = code;
  return code;
}

/* ---- scalar resolution ---------------------------------------------- */

static bool eq_any(const char *s, size_t len, const char *const *words) {
  for (; *words; words++)
    if (strlen(*words) == len && memcmp(s, *words, len) == 0)
      return true;
  return false;
}

static json_t *parse_int(const char *s, size_t len, ck_yaml_schema_t schema) {
  char buf[80];
  size_t n = 0;
  if (len == 0 || len >= sizeof buf)
    return NULL;
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '_' && schema == CK_YAML_11)
      continue;
    buf[n++] = s[i];
  }
  buf[n] = '\0';
  const char *p = buf;
  bool neg = false;
  if (*p == '+' || *p == '-') {
    neg = *p == '-';
    p++;
  }
  int base = 10;
  if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
    base = 16;
    p += 2;
  } else if (p[0] == '0' && p[1] == 'o' && schema == CK_YAML_CORE) {
    base = 8;
    p += 2;
  } else if (p[0] == '0' && p[1] == 'b' && schema == CK_YAML_11) {
    base = 2;
    p += 2;
  } else if (p[0] == '0' && p[1] && schema == CK_YAML_11) {
    base = 8;
    p += 1;
  }
  if (!*p)
    return NULL;
  for (const char *q = p; *q; q++) {
    int d = isdigit((unsigned char)*q)   ? *q - '0'
            : isxdigit((unsigned char)*q) ? 10 + (tolower((unsigned char)*q) - 'a')
                                          : 99;
    if (d >= base)
      return NULL;
  }
  errno = 0;
  unsigned long long v = strtoull(p, NULL, base);
  if (errno == ERANGE || v > (unsigned long long)INT64_MAX + (neg ? 1u : 0u)) {
    double d = (double)v;
    return errno == ERANGE ? NULL : json_real(neg ? -d : d);
  }
  json_int_t iv = neg ? (json_int_t)(0 - v) : (json_int_t)v;
  return json_integer(iv);
}

static json_t *parse_float(const char *s, size_t len, ck_yaml_schema_t schema) {
  char buf[80] = {0};
  size_t n = 0;
  if (len == 0 || len >= sizeof buf)
    return NULL;
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '_' && schema == CK_YAML_11)
      continue;
    buf[n++] = s[i];
  }
  buf[n] = '\0';
  static const char *const inf[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", NULL};
  static const char *const ninf[] = {"-.inf", "-.Inf", "-.INF", NULL};
  static const char *const nan_[] = {".nan", ".NaN", ".NAN", NULL};
  /* JSON has no infinities or NaN: keep such values as strings, as the
   * Kubernetes YAML->JSON conversion cannot carry them either. */
  if (eq_any(buf, n, inf) || eq_any(buf, n, ninf) || eq_any(buf, n, nan_))
    return NULL;
  /* [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
  const char *p = buf;
  if (*p == '+' || *p == '-')
    p++;
  bool digits = false, dot = false;
  while (isdigit((unsigned char)*p)) {
    p++;
    digits = true;
  }
  if (*p == '.') {
    dot = true;
    p++;
    while (isdigit((unsigned char)*p)) {
      p++;
      digits = true;
    }
  }
  if (!digits)
    return NULL;
  bool exp = false;
  if (*p == 'e' || *p == 'E') {
    p++;
    if (*p == '+' || *p == '-')
      p++;
    if (!isdigit((unsigned char)*p))
      return NULL;
    while (isdigit((unsigned char)*p))
      p++;
    exp = true;
  }
  if (*p || (!dot && !exp))
    return NULL;
  double d = strtod(buf, NULL);
  if (!isfinite(d))
    return NULL;
  return json_real(d);
}

json_t *ck_yaml_resolve_plain(const char *s, size_t len, ck_yaml_schema_t schema) {
  static const char *const null_words[] = {"", "~", "null", "Null", "NULL", NULL};
  static const char *const true12[] = {"true", "True", "TRUE", NULL};
  static const char *const false12[] = {"false", "False", "FALSE", NULL};
  static const char *const true11[] = {"y", "Y", "yes", "Yes", "YES", "on", "On", "ON",
                                       "true", "True", "TRUE", NULL};
  static const char *const false11[] = {"n", "N", "no", "No", "NO", "off", "Off", "OFF",
                                        "false", "False", "FALSE", NULL};
  if (eq_any(s, len, null_words))
    return json_null();
  if (eq_any(s, len, schema == CK_YAML_11 ? true11 : true12))
    return json_true();
  if (eq_any(s, len, schema == CK_YAML_11 ? false11 : false12))
    return json_false();
  if (len && (isdigit((unsigned char)s[0]) || s[0] == '-' || s[0] == '+' || s[0] == '.')) {
    json_t *v = parse_int(s, len, schema);
    if (!v)
      v = parse_float(s, len, schema);
    if (v)
      return v;
  }
  return json_stringn(s, len);
}

/* ---- tree building ---------------------------------------------------- */

static json_t *scalar_value(conv_t *c, struct fy_event *ev) {
  struct fy_token *vt = ev->scalar.value;
  size_t len = 0;
  const char *s = vt ? fy_token_get_text(vt, &len) : "";
  if (!s) {
    s = "";
    len = 0;
  }
  if (ev->scalar.tag) {
    const char *tag = fy_tag_token_suffix0(ev->scalar.tag);
    /* !!str, its verbatim form, and the non-specific "!" (empty suffix)
     * make a string. */
    if (tag && *tag && strcmp(tag, "str") != 0 && strcmp(tag, "tag:yaml.org,2002:str") != 0) {
      /* Other explicit tags (!!int, !!bool, custom) resolve as plain. */
      return ck_yaml_resolve_plain(s, len, c->o->schema);
    }
    return json_stringn(s, len);
  }
  /* No value token: an empty node, which is null. */
  if (!vt || fy_token_scalar_style(vt) == FYSS_PLAIN)
    return ck_yaml_resolve_plain(s, len, c->o->schema);
  return json_stringn(s, len);
}

static char *key_text(json_t *v) {
  if (json_is_string(v))
    return strndup(json_string_value(v), json_string_length(v));
  if (json_is_null(v))
    return strdup("null");
  if (json_is_true(v))
    return strdup("true");
  if (json_is_false(v))
    return strdup("false");
  return json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
}

/* Attach `v` (stolen) to the current container or make it the document. */
static int attach(conv_t *c, struct fy_event *ev, json_t *v) {
  if (!v)
    return fail_at(c, ev, CK_ENOMEM, "out of memory");
  if (c->depth == 0) {
    if (c->doc) {
      json_decref(v);
      return fail_at(c, ev, CK_EINVAL, "more than one root node");
    }
    c->doc = v;
    return 0;
  }
  frame_t *f = &c->stack[c->depth - 1];
  if (json_is_array(f->node)) {
    json_array_append_new(f->node, v);
    return 0;
  }
  if (!f->key_pending) {
    /* This value is a key. Only scalars make JSON keys. */
    if (json_is_object(v) || json_is_array(v)) {
      json_decref(v);
      return fail_at(c, ev, CK_EINVAL, "a mapping key must be a scalar");
    }
    f->key = key_text(v);
    json_decref(v);
    if (!f->key)
      return fail_at(c, ev, CK_ENOMEM, "out of memory");
    f->key_pending = true;
    return 0;
  }
  if (!c->o->allow_dup_keys && json_object_get(f->node, f->key)) {
    json_decref(v);
    int rc = fail_at(c, ev, CK_EINVAL, "duplicate key \"%s\"", f->key);
    return rc;
  }
  json_object_set_new(f->node, f->key, v);
  free(f->key);
  f->key = NULL;
  f->key_pending = false;
  return 0;
}

static int count_node(conv_t *c, struct fy_event *ev, size_t n) {
  if (n > c->max_nodes || c->count > c->max_nodes - n) {
    return fail_at(c, ev, CK_ETOOBIG, "document exceeds %zu nodes (alias expansion included)",
                   c->max_nodes);
  }
  c->count += n;
  return 0;
}

static char *anchor_name(struct fy_token *t) {
  if (!t)
    return NULL;
  size_t len = 0;
  const char *s = fy_token_get_text(t, &len);
  if (!s)
    return NULL;
  /* The text is not NUL-terminated: copy exactly len bytes. */
  char *o = malloc(len + 1);
  if (o) {
    memcpy(o, s, len);
    o[len] = '\0';
  }
  return o;
}

static int add_anchor(conv_t *c, struct fy_event *ev, char *name, json_t *v, size_t count) {
  if (c->nanchors == c->capanchors) {
    if (c->capanchors >= 65536) {
      free(name);
      return fail_at(c, ev, CK_ETOOBIG, "too many anchors");
    }
    size_t cap = c->capanchors ? c->capanchors * 2 : 8;
    anchor_t *a = realloc(c->anchors, cap * sizeof *a);
    if (!a) {
      free(name);
      return fail_at(c, ev, CK_ENOMEM, "out of memory");
    }
    c->anchors = a;
    c->capanchors = cap;
  }
  c->anchors[c->nanchors++] = (anchor_t){name, json_incref(v), count};
  return 0;
}

static int on_event(conv_t *c, struct fy_event *ev) {
  switch (ev->type) {
  case FYET_NONE:
  case FYET_STREAM_START:
  case FYET_STREAM_END:
    return 0;
  case FYET_DOCUMENT_START:
    c->doc = NULL;
    /* Anchors do not reach into later documents. */
    for (size_t i = 0; i < c->nanchors; i++) {
      free(c->anchors[i].name);
      json_decref(c->anchors[i].value);
    }
    c->nanchors = 0;
    return 0;
  case FYET_DOCUMENT_END: {
    json_t *d = c->doc ? c->doc : json_null();
    c->doc = NULL;
    if (!c->o->multi_doc && json_array_size(c->docs) > 0) {
      json_decref(d);
      return fail_at(c, ev, CK_EINVAL, "expected one YAML document, found more");
    }
    json_array_append_new(c->docs, d);
    return 0;
  }
  case FYET_SCALAR: {
    int rc = count_node(c, ev, 1);
    if (rc)
      return rc;
    json_t *v = scalar_value(c, ev);
    if (ev->scalar.anchor && v) {
      rc = add_anchor(c, ev, anchor_name(ev->scalar.anchor), v, 1);
      if (rc) {
        json_decref(v);
        return rc;
      }
    }
    return attach(c, ev, v);
  }
  case FYET_ALIAS: {
    char *name = anchor_name(ev->alias.anchor);
    if (!name)
      return fail_at(c, ev, CK_ENOMEM, "out of memory");
    for (size_t i = c->nanchors; i-- > 0;) {
      if (strcmp(c->anchors[i].name, name) == 0) {
        free(name);
        int rc = count_node(c, ev, c->anchors[i].count);
        return rc ? rc : attach(c, ev, json_incref(c->anchors[i].value));
      }
    }
    int rc = fail_at(c, ev, CK_EINVAL, "unknown or recursive alias \"*%s\"", name);
    free(name);
    return rc;
  }
  case FYET_MAPPING_START:
  case FYET_SEQUENCE_START: {
    if (c->depth >= c->max_depth)
      return fail_at(c, ev, CK_ETOOBIG, "nesting deeper than the limit");
    int rc = count_node(c, ev, 1);
    if (rc)
      return rc;
    bool map = ev->type == FYET_MAPPING_START;
    json_t *v = map ? json_object() : json_array();
    struct fy_token *anchor = map ? ev->mapping_start.anchor : ev->sequence_start.anchor;
    if (!v)
      return fail_at(c, ev, CK_ENOMEM, "out of memory");
    json_incref(v); /* the frame keeps a reference until the end event */
    rc = attach(c, ev, v);
    if (rc) {
      json_decref(v);
      return rc;
    }
    c->stack[c->depth++] = (frame_t){v, NULL, false, anchor_name(anchor), c->count - 1};
    return 0;
  }
  case FYET_MAPPING_END:
  case FYET_SEQUENCE_END: {
    frame_t *f = &c->stack[--c->depth];
    int rc = 0;
    if (f->anchor) {
      rc = add_anchor(c, ev, f->anchor, f->node, c->count - f->start_count);
      f->anchor = NULL;
    }
    free(f->key);
    json_decref(f->node);
    *f = (frame_t){0};
    return rc;
  }
  }
  return 0;
}

/* Length of the well-formed UTF-8 sequence at s (n bytes left), 0 if none:
 * no overlong forms, surrogates or code points past U+10FFFF. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  uint32_t cp;
  return ck_utf8_decode(s, n, &cp);
}

/* Reject what libfyaml 0.7 is known to mishandle, before it sees it: NUL
 * bytes (not allowed in a YAML stream anyway), malformed UTF-8, and
 * directive lines other than a well-formed "%YAML 1.x" (a malformed
 * directive can make its scanner loop forever). None of crdkit's inputs
 * needs a %TAG directive. */
static int prescan(const char *data, size_t len, ck_error_t *err) {
  int line = 1;
  for (size_t i = 0; i < len; i++) {
    if (data[i] == '\0')
      return ck_error_set(err, CK_EINVAL, "line %d: NUL byte (offset %zu) is not allowed", line, i);
    if ((unsigned char)data[i] >= 0x80) {
      /* libfyaml 0.7 silently drops some malformed bytes (and what follows
       * them) instead of failing. */
      size_t n = utf8_len((const unsigned char *)data + i, len - i);
      if (n == 0)
        return ck_error_set(err, CK_EINVAL, "line %d: invalid UTF-8 (offset %zu)", line, i);
      i += n - 1;
      continue;
    }
    if (data[i] == '\n') {
      line++;
      continue;
    }
    if (data[i] == '%' && (i == 0 || data[i - 1] == '\n')) {
      size_t rest = len - i;
      bool ok = rest >= 9 && memcmp(data + i, "%YAML 1.", 8) == 0 &&
                (data[i + 8] == '1' || data[i + 8] == '2') &&
                (rest == 9 || data[i + 9] == '\n' || data[i + 9] == '\r' || data[i + 9] == ' ');
      if (!ok)
        return ck_error_set(err, CK_EINVAL,
                            "line %d: unsupported directive (only \"%%YAML 1.1\" or \"%%YAML 1.2\")",
                            line);
    }
  }
  return 0;
}

int ck_yaml_to_json(const char *data, size_t len, const ck_yaml_opts_t *opts, json_t **out,
                    ck_error_t *err) {
  static const ck_yaml_opts_t defaults = {0};
  *out = NULL;
  int prc = prescan(data ? data : "", data ? len : 0, err);
  if (prc)
    return prc;
  conv_t c = {.o = opts ? opts : &defaults, .err = err};
  c.max_nodes = c.o->max_nodes ? c.o->max_nodes : 1000000;
  c.max_depth = c.o->max_depth ? c.o->max_depth : 100;
  c.stack = calloc((size_t)c.max_depth + 1, sizeof *c.stack);
  c.docs = json_array();
  *out = NULL;
  if (!c.stack || !c.docs) {
    free(c.stack);
    json_decref(c.docs);
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  }

  struct fy_diag_cfg dcfg;
  fy_diag_cfg_default(&dcfg);
  dcfg.fp = NULL;
  dcfg.output_fn = diag_out;
  dcfg.user = &c;
  dcfg.level = FYET_ERROR;
  dcfg.colorize = false;
  dcfg.show_source = false;
  dcfg.show_position = true;
  dcfg.show_type = false;
  dcfg.show_module = false;
  struct fy_diag *diag = fy_diag_create(&dcfg);
  struct fy_parse_cfg pcfg = {
      .flags = FYPCF_QUIET | FYPCF_DEFAULT_VERSION_1_2 | FYPCF_ALLOW_DUPLICATE_KEYS |
               FYPCF_DISABLE_MMAP_OPT,
      .diag = diag,
  };
  struct fy_parser *fyp = diag ? fy_parser_create(&pcfg) : NULL;
  if (!fyp || fy_parser_set_string(fyp, data ? data : "", data ? len : 0) != 0) {
    if (fyp)
      fy_parser_destroy(fyp);
    if (diag)
      fy_diag_unref(diag);
    free(c.stack);
    json_decref(c.docs);
    return ck_error_set(err, CK_ENOMEM, "cannot create YAML parser");
  }

  struct fy_event *ev;
  while (c.rc == 0 && (ev = fy_parser_parse(fyp)) != NULL) {
    on_event(&c, ev);
    fy_parser_event_free(fyp, ev);
  }
  if (c.rc == 0 && fy_parser_get_stream_error(fyp)) {
    c.rc = CK_EINVAL;
    ck_error_set(err, CK_EINVAL, "%s", c.diag[0] ? c.diag : "YAML syntax error");
  }
  fy_parser_destroy(fyp);
  fy_diag_unref(diag);

  while (c.depth > 0) {
    frame_t *f = &c.stack[--c.depth];
    free(f->key);
    free(f->anchor);
    json_decref(f->node);
  }
  json_decref(c.doc);
  for (size_t i = 0; i < c.nanchors; i++) {
    free(c.anchors[i].name);
    json_decref(c.anchors[i].value);
  }
  free(c.anchors);
  free(c.stack);
  if (c.rc) {
    json_decref(c.docs);
    return c.rc;
  }
  if (c.o->multi_doc) {
    *out = c.docs;
  } else {
    *out = json_array_size(c.docs) ? json_incref(json_array_get(c.docs, 0)) : json_null();
    json_decref(c.docs);
  }
  return 0;
}
