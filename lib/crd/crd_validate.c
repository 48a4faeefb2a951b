/* Local defaulting and validation of objects against a CRD table, the
 * way the apiserver's structural schema does it, minus CEL and formats
 * (see crd.h). Messages follow the apiserver's wording so a local error
 * reads like the one the server would give. */
#include "crd_internal.h"

#include "crdkit/crd.h"
#include "util/buf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors -------------------------------------------------------------- */

void ck_crd_errors_free(ck_crd_errors_t *errs) {
  if (!errs)
    return;
  for (size_t i = 0; i < errs->count; i++) {
    free(errs->items[i].field);
    free(errs->items[i].message);
  }
  free(errs->items);
  *errs = (ck_crd_errors_t){0};
}

static int add_err(ck_crd_errors_t *errs, const ck_buf_t *path, const char *type,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int add_err(ck_crd_errors_t *errs, const ck_buf_t *path, const char *type,
                   const char *fmt, ...) {
  ck_buf_t msg = {0};
  va_list ap;
  va_start(ap, fmt);
  ck_buf_vprintf(&msg, fmt, ap);
  va_end(ap);
  ck_crd_field_error_t *items = realloc(errs->items, (errs->count + 1) * sizeof *items);
  char *field = strdup(path->data ? path->data : "");
  if (!items || !field || msg.oom || !msg.data) {
    if (items)
      errs->items = items;
    free(field);
    ck_buf_free(&msg);
    return CK_ENOMEM;
  }
  errs->items = items;
  ck_crd_field_error_t *e = &items[errs->count++];
  e->field = field; /* owned by errs from here */
  e->type = type;
  e->message = ck_buf_steal(&msg);
  return 0;
}

/* The value as the messages show it: compact JSON, cut short. */
static void show(const json_t *v, char *out, size_t n) {
  char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
  snprintf(out, n, "%s", s ? s : "?");
  if (s && strlen(s) >= n && n > 4)
    memcpy(out + n - 4, "...", 4);
  free(s);
}

/* ---- path helpers ---------------------------------------------------------- */

static void path_key(ck_buf_t *p, const char *key) {
  if (p->len)
    ck_buf_putc(p, '.');
  ck_buf_puts(p, key);
}

static void path_restore(ck_buf_t *p, size_t len) {
  p->len = len;
  if (p->data)
    p->data[len] = '\0';
}

/* ---- validation ------------------------------------------------------------ */

static const char *type_word(ck_crd_type_t t) {
  if (t == CK_CRD_INT_OR_STRING)
    return "integer or string";
  const char *n = ck_crd_type_name(t);
  return n ? n : "?";
}

static bool type_ok(ck_crd_type_t t, const json_t *v) {
  switch (t) {
  case CK_CRD_STRING: return json_is_string(v);
  /* The apiserver decodes 2.0 as a float that passes as an integer. */
  case CK_CRD_INTEGER:
    return json_is_integer(v) ||
           (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)));
  case CK_CRD_NUMBER: return json_is_number(v);
  case CK_CRD_BOOLEAN: return json_is_boolean(v);
  case CK_CRD_ARRAY: return json_is_array(v);
  case CK_CRD_OBJECT:
  case CK_CRD_MAP: return json_is_object(v);
  case CK_CRD_INT_OR_STRING: return json_is_integer(v) || json_is_string(v);
  case CK_CRD_AUTO: break;
  }
  return false;
}

/* Characters, as the apiserver counts maxLength (runes, not bytes). */
static size_t utf8_len(const char *s) {
  size_t n = 0;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    n += (*p & 0xC0) != 0x80;
  return n;
}

static bool enum_has(ck_crd_type_t t, const char *const *vals, const json_t *v) {
  for (const char *const *e = vals; *e; e++) {
    if (json_is_string(v) && (t == CK_CRD_STRING || t == CK_CRD_INT_OR_STRING) &&
        strcmp(json_string_value(v), *e) == 0)
      return true;
    if (json_is_number(v)) {
      char *end = NULL;
      double d = strtod(*e, &end);
      if (end != *e && !*end && d == json_number_value(v))
        return true;
    }
  }
  return false;
}

static int check_enum(const ck_crd_field_t *f, ck_crd_type_t t, const json_t *v, ck_buf_t *path,
                      ck_crd_errors_t *errs) {
  if (!f->enum_values || enum_has(t, f->enum_values, v))
    return 0;
  ck_buf_t list = {0};
  for (const char *const *e = f->enum_values; *e; e++) {
    if (e != f->enum_values)
      ck_buf_puts(&list, ", ");
    if (t == CK_CRD_STRING)
      ck_buf_json_string(&list, *e);
    else
      ck_buf_puts(&list, *e);
  }
  char shown[96];
  show(v, shown, sizeof shown);
  int rc = add_err(errs, path, "FieldValueNotSupported", "Unsupported value: %s: supported "
                   "values: %s", shown, list.data ? list.data : "");
  ck_buf_free(&list);
  return rc;
}

static int check_number(const ck_crd_field_t *f, const json_t *v, ck_buf_t *path,
                        ck_crd_errors_t *errs) {
  double d = json_number_value(v);
  char shown[64];
  show(v, shown, sizeof shown);
  if (f->minimum && (f->exclusive_minimum ? d <= *f->minimum : d < *f->minimum))
    return add_err(errs, path, "FieldValueInvalid", "Invalid value: %s: should be greater than %s%g",
                   shown, f->exclusive_minimum ? "" : "or equal to ", *f->minimum);
  if (f->maximum && (f->exclusive_maximum ? d >= *f->maximum : d > *f->maximum))
    return add_err(errs, path, "FieldValueInvalid", "Invalid value: %s: should be less than %s%g",
                   shown, f->exclusive_maximum ? "" : "or equal to ", *f->maximum);
  return 0;
}

static int check_string(const ck_crd_field_t *f, const json_t *v, ck_buf_t *path,
                        ck_crd_errors_t *errs) {
  const char *s = json_string_value(v);
  size_t n = utf8_len(s);
  char shown[96];
  show(v, shown, sizeof shown);
  int rc = 0;
  if (f->max_length && (int64_t)n > *f->max_length)
    rc = add_err(errs, path, "FieldValueTooLong", "Too long: may not be longer than %lld",
                 (long long)*f->max_length);
  if (!rc && f->min_length && (int64_t)n < *f->min_length)
    rc = add_err(errs, path, "FieldValueInvalid", "Invalid value: %s: should be at least %lld "
                 "chars long", shown, (long long)*f->min_length);
  if (!rc && f->pattern) {
    regex_t re;
    /* ck_crd_check compiled it already; failing now means no memory. */
    if (ck_crd_regcomp(&re, f->pattern) != 0)
      return CK_ENOMEM;
    /* A NUL inside the string would cut regexec's view short; JSON
     * strings may hold one, the apiserver matches the whole value. */
    bool match = strlen(s) == json_string_length(v) && regexec(&re, s, 0, NULL, 0) == 0;
    regfree(&re);
    if (!match)
      rc = add_err(errs, path, "FieldValueInvalid", "Invalid value: %s: should match '%s'", shown,
                   f->pattern);
  }
  return rc;
}

/* The key of a list-map item, as compact JSON of its key fields. */
static char *map_key(const ck_crd_field_t *f, const json_t *item) {
  json_t *k = json_array();
  for (const char *const *key = f->list_map_keys; k && *key; key++) {
    json_t *kv = json_object_get(item, *key);
    json_array_append(k, kv ? kv : json_null());
  }
  char *s = k ? json_dumps(k, JSON_COMPACT) : NULL;
  json_decref(k);
  return s;
}

static int check_array(const ck_crd_field_t *f, const json_t *v, ck_buf_t *path,
                       ck_crd_errors_t *errs) {
  size_t n = json_array_size(v);
  int rc = 0;
  if (f->max_items && (int64_t)n > *f->max_items)
    rc = add_err(errs, path, "FieldValueTooMany", "Too many: %zu: must have at most %lld items", n,
                 (long long)*f->max_items);
  if (!rc && f->min_items && (int64_t)n < *f->min_items)
    rc = add_err(errs, path, "FieldValueInvalid", "Invalid value: %zu: should have at least %lld "
                 "items", n, (long long)*f->min_items);
  size_t base = path->len;
  for (size_t i = 0; !rc && i < n; i++) {
    const json_t *item = json_array_get(v, i);
    ck_buf_printf(path, "[%zu]", i);
    rc = ck_crd_validate_value(f->items, item, path, errs);
    /* Uniqueness: the apiserver reports the later duplicate. */
    for (size_t j = 0; !rc && f->list_type == CK_CRD_LIST_SET && j < i; j++)
      if (json_equal(json_array_get(v, j), item)) {
        char shown[96];
        show(item, shown, sizeof shown);
        rc = add_err(errs, path, "FieldValueDuplicate", "Duplicate value: %s", shown);
        break;
      }
    if (!rc && f->list_type == CK_CRD_LIST_MAP && json_is_object(item)) {
      char *ki = map_key(f, item);
      if (!ki)
        rc = CK_ENOMEM;
      for (size_t j = 0; !rc && j < i; j++) {
        char *kj = map_key(f, json_array_get(v, j));
        if (!kj) {
          rc = CK_ENOMEM;
          break;
        }
        bool dup = strcmp(ki, kj) == 0;
        free(kj);
        if (dup) {
          rc = add_err(errs, path, "FieldValueDuplicate", "Duplicate value: %s", ki);
          break;
        }
      }
      free(ki);
    }
    path_restore(path, base);
  }
  return rc;
}

static int check_object(const ck_crd_field_t *f, ck_crd_type_t t, const json_t *v, ck_buf_t *path,
                        ck_crd_errors_t *errs) {
  size_t n = json_object_size(v);
  int rc = 0;
  if (f->max_properties && (int64_t)n > *f->max_properties)
    rc = add_err(errs, path, "FieldValueTooMany", "Too many: %zu: must have at most %lld "
                 "properties", n, (long long)*f->max_properties);
  if (!rc && f->min_properties && (int64_t)n < *f->min_properties)
    rc = add_err(errs, path, "FieldValueInvalid", "Invalid value: %zu: should have at least %lld "
                 "properties", n, (long long)*f->min_properties);
  size_t base = path->len;
  if (t == CK_CRD_MAP) {
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)v, key, val) {
      if (rc)
        break;
      path_key(path, key);
      rc = ck_crd_validate_value(f->items, val, path, errs);
      path_restore(path, base);
    }
    return rc;
  }
  for (const ck_crd_field_t *c = f->fields; !rc && c && c->name; c++) {
    const json_t *val = json_object_get(v, c->name);
    path_key(path, c->name);
    if (!val && c->required)
      rc = add_err(errs, path, "FieldValueRequired", "Required value");
    else if (val)
      rc = ck_crd_validate_value(c, val, path, errs);
    path_restore(path, base);
  }
  return rc;
}

int ck_crd_validate_value(const ck_crd_field_t *f, const json_t *v, ck_buf_t *path,
                          ck_crd_errors_t *errs) {
  ck_crd_type_t t = ck_crd_field_type(f);
  if (t == CK_CRD_AUTO) /* spec/status with neither fields nor items */
    t = CK_CRD_OBJECT;
  if (json_is_null(v) && f->nullable)
    return 0;
  if (!type_ok(t, v)) {
    char shown[96];
    show(v, shown, sizeof shown);
    return add_err(errs, path, "FieldValueTypeInvalid", "Invalid value: %s: must be of type %s",
                   shown, type_word(t));
  }
  int rc = check_enum(f, t, v, path, errs);
  if (rc)
    return rc;
  if (json_is_number(v))
    return check_number(f, v, path, errs);
  if (json_is_string(v) && t == CK_CRD_STRING)
    return check_string(f, v, path, errs);
  if (json_is_array(v))
    return check_array(f, v, path, errs);
  if (json_is_object(v))
    return check_object(f, t, v, path, errs);
  return 0;
}

/* The version's root as one object field, so the same walk covers it. */
static void root_fields(const ck_crd_version_t *v, ck_crd_field_t *spec, ck_crd_field_t *status) {
  if (v->spec) {
    *spec = *v->spec;
    spec->name = "spec";
    if (spec->type == CK_CRD_AUTO && !spec->items)
      spec->type = CK_CRD_OBJECT;
  }
  if (v->status) {
    *status = *v->status;
    status->name = "status";
    if (status->type == CK_CRD_AUTO && !status->items)
      status->type = CK_CRD_OBJECT;
  }
}

/* Calls fn(field, value-or-NULL, ctx) for spec, status and the other
 * top-level fields. */
typedef int (*top_fn)(const ck_crd_field_t *f, json_t *obj, void *ctx);
static int each_top(const ck_crd_version_t *v, json_t *obj, top_fn fn, void *ctx) {
  ck_crd_field_t spec = {0}, status = {0};
  root_fields(v, &spec, &status);
  int rc = 0;
  if (v->spec)
    rc = fn(&spec, obj, ctx);
  if (!rc && v->status)
    rc = fn(&status, obj, ctx);
  for (const ck_crd_field_t *f = v->fields; !rc && f && f->name; f++)
    rc = fn(f, obj, ctx);
  return rc;
}

typedef struct vctx {
  ck_buf_t path;
  ck_crd_errors_t *errs;
} vctx_t;

static int validate_top(const ck_crd_field_t *f, json_t *obj, void *ctx) {
  vctx_t *c = ctx;
  json_t *val = json_object_get(obj, f->name);
  ck_buf_reset(&c->path);
  ck_buf_puts(&c->path, f->name);
  if (!val)
    return f->required ? add_err(c->errs, &c->path, "FieldValueRequired", "Required value") : 0;
  return ck_crd_validate_value(f, val, &c->path, c->errs);
}

static int lookup(const ck_crd_t *crd, const char *version, const ck_crd_version_t **out,
                  ck_error_t *err) {
  int rc = ck_crd_check(crd, err);
  if (rc)
    return rc;
  *out = ck_crd_find_version(crd, version);
  if (!*out)
    return ck_error_set(err, CK_EINVAL, "%s: no version \"%s\"", crd->kind, version);
  return 0;
}

int ck_crd_validate(const ck_crd_t *crd, const char *version, const json_t *obj,
                    ck_crd_errors_t *errs, ck_error_t *err) {
  const ck_crd_version_t *v;
  int rc = lookup(crd, version, &v, err);
  if (rc)
    return rc;
  if (!json_is_object(obj))
    return ck_error_set(err, CK_EINVAL, "%s %s: the object is not a JSON object", crd->kind,
                        v->name);
  ck_crd_errors_t mine = {0};
  vctx_t c = {.errs = &mine};
  rc = each_top(v, (json_t *)obj, validate_top, &c);
  ck_buf_free(&c.path);
  if (rc) {
    ck_crd_errors_free(&mine);
    return ck_error_set(err, rc, "%s %s: out of memory", crd->kind, v->name);
  }
  if (!mine.count)
    return 0;
  ck_error_set(err, CK_EINVAL, "%s %s: %s: %s%s", crd->kind, v->name, mine.items[0].field,
               mine.items[0].message, mine.count > 1 ? " (and more)" : "");
  if (!errs) {
    ck_crd_errors_free(&mine);
    return CK_EINVAL;
  }
  /* Append to what the caller already holds. */
  ck_crd_field_error_t *items =
      realloc(errs->items, (errs->count + mine.count) * sizeof *items);
  if (!items) {
    ck_crd_errors_free(&mine);
    return ck_error_set(err, CK_ENOMEM, "%s %s: out of memory", crd->kind, v->name);
  }
  memcpy(items + errs->count, mine.items, mine.count * sizeof *items);
  errs->items = items;
  errs->count += mine.count;
  free(mine.items);
  return CK_EINVAL;
}

/* ---- defaulting ------------------------------------------------------------ */

static int default_value(const ck_crd_field_t *f, json_t *v);

/* Null for a field that does not allow it counts as absent, as in the
 * apiserver (nulls of non-nullable fields are pruned before defaulting). */
static int default_prop(const ck_crd_field_t *f, json_t *parent) {
  json_t *cur = json_object_get(parent, f->name);
  if (f->default_json && (!cur || (json_is_null(cur) && !f->nullable))) {
    json_t *d = json_loads(f->default_json, JSON_DECODE_ANY, NULL);
    if (!d || json_object_set_new(parent, f->name, d) != 0)
      return CK_ENOMEM;
    cur = d;
  }
  return cur ? default_value(f, cur) : 0;
}

static int default_value(const ck_crd_field_t *f, json_t *v) {
  ck_crd_type_t t = ck_crd_field_type(f);
  int rc = 0;
  if (json_is_object(v) && f->fields) {
    for (const ck_crd_field_t *c = f->fields; !rc && c->name; c++)
      rc = default_prop(c, v);
  } else if (json_is_object(v) && t == CK_CRD_MAP) {
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) {
      if ((rc = default_value(f->items, val)))
        break;
    }
  } else if (json_is_array(v) && t == CK_CRD_ARRAY) {
    size_t i;
    json_t *val;
    json_array_foreach(v, i, val) {
      if ((rc = default_value(f->items, val)))
        break;
    }
  }
  return rc;
}

static int default_top(const ck_crd_field_t *f, json_t *obj, void *ctx) {
  (void)ctx;
  return default_prop(f, obj);
}

int ck_crd_default(const ck_crd_t *crd, const char *version, json_t *obj, ck_error_t *err) {
  const ck_crd_version_t *v;
  int rc = lookup(crd, version, &v, err);
  if (rc)
    return rc;
  if (!json_is_object(obj))
    return ck_error_set(err, CK_EINVAL, "%s %s: the object is not a JSON object", crd->kind,
                        v->name);
  rc = each_top(v, obj, default_top, NULL);
  if (rc)
    return ck_error_set(err, rc, "%s %s: out of memory", crd->kind, v->name);
  return 0;
}
