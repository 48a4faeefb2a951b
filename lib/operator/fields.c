/* Reading fields of objects by dotted path (crdkit/operator.h). */
#include "crdkit/operator.h"

#include <string.h>

const json_t *ck_field(const json_t *obj, const char *path) {
  if (!obj || !path)
    return NULL;
  const json_t *cur = obj;
  const char *p = path;
  while (cur && *p) {
    const char *dot = strchr(p, '.');
    size_t len = dot ? (size_t)(dot - p) : strlen(p);
    if (!json_is_object(cur) || len == 0)
      return NULL;
    cur = json_object_getn(cur, p, len);
    p += len + (dot ? 1 : 0);
    if (dot && !*p)
      return NULL; /* "spec." */
  }
  return cur;
}

const char *ck_field_string(const json_t *obj, const char *path, const char *def) {
  const json_t *v = ck_field(obj, path);
  return json_is_string(v) ? json_string_value(v) : def;
}

int64_t ck_field_int(const json_t *obj, const char *path, int64_t def) {
  const json_t *v = ck_field(obj, path);
  return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

bool ck_field_bool(const json_t *obj, const char *path, bool def) {
  const json_t *v = ck_field(obj, path);
  return json_is_boolean(v) ? json_is_true(v) : def;
}
