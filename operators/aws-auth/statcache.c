/* What the AWSAuth cache keeps of each object's status: see statcache.h. */
#include "statcache.h"

#include "awsauth.h"

#include "crdkit/error.h"
#include "util/buf.h"

#include <stdbool.h>
#include <string.h>

const char *const aa_cond_types[AA_NCONDS] = {"Invalid", "Conflicted", "Suspended", "Degraded",
                                              "Ready"};

/* ---- the digest: tagged, length-prefixed fields, so no two different
 * statuses encode alike ---------------------------------------------------- */

static void put_u64(ck_buf_t *b, uint64_t v) {
  unsigned char x[8];
  for (int i = 0; i < 8; i++)
    x[i] = (unsigned char)(v >> (56 - 8 * i));
  ck_buf_append(b, x, sizeof x);
}

static void put_int(ck_buf_t *b, bool present, int64_t v) {
  if (!present) {
    ck_buf_putc(b, '-');
    return;
  }
  ck_buf_putc(b, 'i');
  put_u64(b, (uint64_t)v);
}

static void put_mem(ck_buf_t *b, const char *s, size_t n) {
  ck_buf_putc(b, 's');
  put_u64(b, n);
  ck_buf_append(b, s, n);
}

/* A C string; NULL: "absent or not a string". */
static void put_str(ck_buf_t *b, const char *s) {
  if (!s)
    ck_buf_putc(b, 'n');
  else
    put_mem(b, s, strlen(s));
}

/* A JSON value that must be a string. */
static void put_jstr(ck_buf_t *b, const json_t *v) {
  if (!json_is_string(v))
    ck_buf_putc(b, 'n');
  else
    put_mem(b, json_string_value(v), json_string_length(v));
}

/* An array of strings; NULL counts as empty when null_is_empty (what the
 * operator wants), as "absent" otherwise (what a status holds). */
static void put_arr(ck_buf_t *b, const json_t *a, bool null_is_empty) {
  if (!json_is_array(a)) {
    if (!a && null_is_empty) {
      ck_buf_putc(b, 'A');
      put_u64(b, 0);
    } else {
      ck_buf_putc(b, 'N');
    }
    return;
  }
  ck_buf_putc(b, 'A');
  put_u64(b, json_array_size(a));
  size_t i;
  const json_t *v;
  json_array_foreach(a, i, v) {
    put_jstr(b, v);
  }
}

static int finish(ck_buf_t *b, char out[33]) {
  out[0] = '\0';
  unsigned char d[32];
  if (b->oom) {
    ck_buf_free(b);
    return CK_ENOMEM;
  }
  bool ok = aa_sha256(b->data, b->len, d);
  ck_buf_free(b);
  if (!ok)
    return CK_EIO;
  aa_hex(d, 16, out);
  return 0;
}

int aa_status_want_digest(const aa_status_want_t *w, char out[33]) {
  out[0] = '\0';
  for (int i = 0; i < AA_NCONDS; i++)
    if (!w->c[i].type || strcmp(w->c[i].type, aa_cond_types[i]) != 0)
      return CK_EINVAL;
  ck_buf_t b = {0};
  ck_buf_putc(&b, 'S');
  put_int(&b, true, w->generation);
  put_str(&b, w->type);
  put_int(&b, true, w->entries);
  put_arr(&b, w->arns, true);
  put_arr(&b, w->warnings, true);
  for (int i = 0; i < AA_NCONDS; i++) {
    ck_buf_putc(&b, 'C');
    put_str(&b, w->c[i].status);
    put_str(&b, w->c[i].reason);
    put_str(&b, w->c[i].message ? w->c[i].message : "");
    put_int(&b, true, w->c[i].observed_generation);
  }
  return finish(&b, out);
}

int aa_status_digest(const json_t *s, char out[33]) {
  ck_buf_t b = {0};
  if (!json_is_object(s)) {
    ck_buf_putc(&b, 'X');
    return finish(&b, out);
  }
  ck_buf_putc(&b, 'S');
  const json_t *og = json_object_get(s, "observedGeneration");
  put_int(&b, json_is_integer(og), json_integer_value(og));
  put_jstr(&b, json_object_get(s, "type"));
  const json_t *n = json_object_get(s, "entries");
  put_int(&b, json_is_integer(n), json_integer_value(n));
  put_arr(&b, json_object_get(s, "arns"), false);
  put_arr(&b, json_object_get(s, "warnings"), false);
  for (int i = 0; i < AA_NCONDS; i++) {
    const json_t *c = ck_condition_find(s, aa_cond_types[i]);
    if (!c) {
      ck_buf_putc(&b, 'c');
      continue;
    }
    ck_buf_putc(&b, 'C');
    put_jstr(&b, json_object_get(c, "status"));
    put_jstr(&b, json_object_get(c, "reason"));
    put_jstr(&b, json_object_get(c, "message"));
    /* An absent observedGeneration reads as 0, which is how the
     * condition helpers write a 0. */
    put_int(&b, true, json_integer_value(json_object_get(c, "observedGeneration")));
  }
  return finish(&b, out);
}

static const char *cached_digest(const json_t *s) {
  const json_t *d = json_object_get(s, AA_STATUS_DIGEST_KEY);
  return json_is_string(d) && json_string_length(d) == 32 ? json_string_value(d) : NULL;
}

int aa_obj_status_digest(const json_t *obj, char out[33]) {
  const json_t *s = json_object_get(obj, "status");
  const char *d = json_is_object(s) ? cached_digest(s) : NULL;
  if (d) {
    memcpy(out, d, 33);
    return 0;
  }
  return aa_status_digest(s, out);
}

/* ---- the transform -------------------------------------------------------- */

static int known_type(const char *t) {
  for (int i = 0; t && i < AA_NCONDS; i++)
    if (strcmp(t, aa_cond_types[i]) == 0)
      return i;
  return -1;
}

/* Fit for the "t" list: no separator inside. */
static bool plain(const char *s) {
  return s && *s && !strpbrk(s, ",=@");
}

json_t *aa_status_transform(void *ctx, json_t *obj) {
  (void)ctx;
  json_t *s = json_object_get(obj, "status");
  if (!s || (json_is_object(s) && cached_digest(s)))
    return obj; /* nothing to reduce, or reduced already (our own copy seen again) */
  char d[33];
  /* Without a digest the whole status stays: slower, never wrong. */
  if (aa_status_digest(s, d) != 0)
    return obj;
  ck_buf_t t = {0};
  json_t *x = json_array(), *ns = json_object();
  bool oom = !x || !ns;
  json_t *conds = json_is_object(s) ? json_object_get(s, "conditions") : NULL;
  const char *prev_lt = NULL;
  size_t i;
  json_t *c;
  json_array_foreach(conds, i, c) {
    const char *type = json_string_value(json_object_get(c, "type"));
    int k = known_type(type);
    if (k < 0) {
      oom |= json_array_append(x, c) != 0;
      continue;
    }
    if (ck_condition_find(s, type) != c)
      continue; /* a repeated type: the first one counts, as everywhere */
    const char *st = json_string_value(json_object_get(c, "status"));
    const char *lt = json_string_value(json_object_get(c, "lastTransitionTime"));
    if (!plain(st) || !plain(lt))
      continue; /* treated as new: it gets a transition time now */
    /* Conditions set together share their time: written once. */
    if (prev_lt && strcmp(prev_lt, lt) == 0)
      ck_buf_printf(&t, ",%s=%s", type, st);
    else
      ck_buf_printf(&t, "%s%s=%s@%s", t.len ? "," : "", type, st, lt);
    prev_lt = lt;
  }
  oom |= t.oom || json_object_set_new(ns, AA_STATUS_DIGEST_KEY, json_string(d)) != 0;
  if (t.len)
    oom |= json_object_set_new(ns, "t", json_string(t.data)) != 0;
  if (json_array_size(x))
    oom |= json_object_set(ns, "x", x) != 0;
  ck_buf_free(&t);
  json_decref(x);
  if (oom) {
    json_decref(ns);
    return obj;
  }
  json_object_set_new(obj, "status", ns);
  return obj;
}

json_t *aa_status_base(const json_t *s) {
  if (!json_is_object(s))
    return json_object();
  if (!cached_digest(s))
    return json_deep_copy(s);
  json_t *base = json_object(), *conds = json_array();
  if (!base || !conds || json_object_set(base, "conditions", conds)) {
    json_decref(base);
    json_decref(conds);
    return NULL;
  }
  bool oom = false;
  const char *t = json_string_value(json_object_get(s, "t"));
  const char *lt = NULL; /* the last time given: "Type=Status" alone has it */
  size_t ltlen = 0;
  for (const char *p = t; p && *p && !oom;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    const char *eq = memchr(p, '=', len), *at = eq ? memchr(eq, '@', len - (size_t)(eq - p)) : NULL;
    if (at && at + 1 < p + len) {
      lt = at + 1;
      ltlen = (size_t)(p + len - at - 1);
    }
    const char *st_end = at ? at : p + len;
    if (eq && eq > p && st_end > eq + 1 && lt && (!at || at + 1 < p + len)) {
      json_t *c = json_pack("{s:s%,s:s%,s:s%}", "type", p, (size_t)(eq - p), "status", eq + 1,
                            (size_t)(st_end - eq - 1), "lastTransitionTime", lt, ltlen);
      oom = !c || json_array_append_new(conds, c) != 0;
    }
    p = end ? end + 1 : p + len;
  }
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(s, "x"), i, c) {
    json_t *copy = json_deep_copy(c);
    oom |= !copy || json_array_append_new(conds, copy) != 0;
  }
  json_decref(conds);
  if (oom) {
    json_decref(base);
    return NULL;
  }
  return base;
}
