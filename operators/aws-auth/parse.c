/* Live aws-auth data -> entries, read the way aws-iam-authenticator reads
 * it: YAML 1.1 to JSON (sigs.k8s.io/yaml), then encoding/json into structs.
 * Agreeing with it matters more than being "right": an entry we believe
 * inactive but the authenticator honours (or the reverse) would make every
 * later decision wrong. */
#include "awsauth.h"

#include "util/yaml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *aa_kind_key(aa_kind_t k) { return k == AA_ROLES ? "mapRoles" : "mapUsers"; }

/* encoding/json matches field names with Unicode simple folding; for our
 * ASCII field names that means ASCII case plus U+017F (long s) as 's' and
 * U+212A (Kelvin sign) as 'k'. */
static bool name_matches(const char *key, const char *field) {
  const unsigned char *k = (const unsigned char *)key;
  for (const char *f = field; *f; f++) {
    char want = *f; /* field names are lower-case ASCII */
    if (k[0] == 0xc5 && k[1] == 0xbf && want == 's') {
      k += 2;
      continue;
    }
    if (k[0] == 0xe2 && k[1] == 0x84 && k[2] == 0xaa && want == 'k') {
      k += 3;
      continue;
    }
    char c = (char)((*k >= 'A' && *k <= 'Z') ? *k + 32 : *k);
    if (c != want)
      return false;
    k++;
  }
  return *k == '\0';
}

int aa_cmp_strp(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The object keys matching `field`, in the order encoding/json applies
 * them: sigs.k8s.io/yaml marshals maps with sorted keys, and for repeated
 * matches the last one decoded wins. Returns a malloc'd array (NULL when
 * none), count in *n. */
static const char **matching_keys(json_t *obj, const char *field, size_t *n) {
  *n = 0;
  const char **v = NULL;
  const char *k;
  json_t *val;
  size_t cap = 0;
  json_object_foreach(obj, k, val) {
    if (!name_matches(k, field))
      continue;
    if (*n == cap) {
      cap = cap ? cap * 2 : 4;
      const char **nv = realloc(v, cap * sizeof *v);
      if (!nv) {
        free(v);
        *n = 0;
        return NULL;
      }
      v = nv;
    }
    v[(*n)++] = k;
  }
  if (*n > 1)
    qsort(v, *n, sizeof *v, aa_cmp_strp);
  return v;
}

/* A string field as encoding/json leaves it: a string sets it, null and
 * wrong types leave the previous value. Borrowed from obj, or NULL. */
static const char *str_field(json_t *obj, const char *field) {
  size_t n;
  const char **keys = matching_keys(obj, field, &n);
  const char *val = NULL;
  for (size_t i = 0; i < n; i++) {
    json_t *v = json_object_get(obj, keys[i]);
    if (json_is_string(v))
      val = json_string_value(v);
  }
  free(keys);
  return val;
}

/* Whether the effective groups contain "system:nodes": null resets the
 * slice, an array replaces it, other types are ignored. */
static bool groups_have_nodes(json_t *obj) {
  size_t n;
  const char **keys = matching_keys(obj, "groups", &n);
  json_t *eff = NULL;
  for (size_t i = 0; i < n; i++) {
    json_t *v = json_object_get(obj, keys[i]);
    if (json_is_null(v))
      eff = NULL;
    else if (json_is_array(v))
      eff = v;
  }
  free(keys);
  size_t i;
  json_t *g;
  json_array_foreach(eff, i, g) {
    if (json_is_string(g) && strcmp(json_string_value(g), "system:nodes") == 0)
      return true;
  }
  return false;
}

static char *lower_dup(const char *s) {
  char *d = strdup(s);
  if (d)
    for (char *p = d; *p; p++)
      if (*p >= 'A' && *p <= 'Z')
        *p = (char)(*p + 32);
  return d;
}

static void entries_free(aa_list_t *l) {
  for (size_t i = 0; i < l->n; i++) {
    json_decref(l->v[i].raw);
    free(l->v[i].arn);
    free(l->v[i].key);
    free(l->v[i].username);
  }
  free(l->v);
  l->v = NULL;
  l->n = 0;
}

/* The whole key is unusable: no entries, an empty doc, the reason. */
static int set_err(aa_list_t *l, int rc, const char *msg) {
  entries_free(l);
  l->rc = rc;
  snprintf(l->error, sizeof l->error, "%s: %s", aa_kind_key(l->kind), msg);
  json_decref(l->doc);
  l->doc = json_array();
  return rc;
}

static int list_entries(aa_list_t *out);

int aa_list_parse(aa_kind_t kind, const char *text, size_t len, aa_list_t *out) {
  memset(out, 0, sizeof *out);
  out->kind = kind;
  out->present = text != NULL;
  if (!text) {
    out->doc = json_array();
    return out->doc ? 0 : set_err(out, CK_ENOMEM, "out of memory");
  }
  if (len > AA_MAX_DATA_BYTES)
    return set_err(out, CK_ETOOBIG, "larger than 1 MiB");
  ck_yaml_opts_t o = {.schema = CK_YAML_11,
                      .max_nodes = AA_PARSE_MAX_NODES,
                      .max_depth = AA_PARSE_MAX_DEPTH,
                      .allow_dup_keys = true,
                      /* go-yaml decodes the first document and ignores the rest */
                      .multi_doc = true};
  ck_error_t err = {0};
  json_t *doc = NULL;
  int rc = ck_yaml_to_json(text, len, &o, &doc, &err);
  if (rc)
    return set_err(out, rc, err.message[0] ? err.message : ck_strerror(rc));
  json_t *first = json_incref(json_array_get(doc, 0));
  json_decref(doc);
  doc = first ? first : json_null();
  if (json_is_null(doc)) {
    /* An empty document decodes to no entries, as in the authenticator. */
    json_decref(doc);
    doc = json_array();
  }
  out->doc = doc;
  if (!json_is_array(doc))
    return set_err(out, CK_EINVAL, "not a YAML list of entries");
  return list_entries(out);
}

int aa_list_from_doc(aa_kind_t kind, json_t *doc, aa_list_t *out) {
  memset(out, 0, sizeof *out);
  out->kind = kind;
  out->present = true;
  out->doc = doc;
  if (!json_is_array(doc))
    return set_err(out, CK_EINVAL, "not a YAML list of entries");
  return list_entries(out);
}

/* Whether every key of obj is exactly one of the entry's field names, as
 * the operator writes them: then each field has at most one matching key,
 * itself, and a plain lookup reads what encoding/json would. */
static bool exact_fields(json_t *obj, const char *arn_field) {
  const char *k;
  json_t *v;
  json_object_foreach(obj, k, v) {
    if (strcmp(k, arn_field) != 0 && strcmp(k, "username") != 0 && strcmp(k, "groups") != 0)
      return false;
  }
  return true;
}

static const char *exact_str(json_t *obj, const char *field) {
  return json_string_value(json_object_get(obj, field)); /* NULL unless a string */
}

static bool exact_nodes(json_t *obj) {
  size_t i;
  json_t *g;
  json_array_foreach(json_object_get(obj, "groups"), i, g) {
    if (json_is_string(g) && strcmp(json_string_value(g), "system:nodes") == 0)
      return true;
  }
  return false;
}

/* out->v from out->doc (an array). */
static int list_entries(aa_list_t *out) {
  json_t *doc = out->doc;
  size_t n = json_array_size(doc);
  out->v = calloc(n ? n : 1, sizeof *out->v);
  if (!out->v)
    return set_err(out, CK_ENOMEM, "out of memory");
  const char *arn_field = out->kind == AA_ROLES ? "rolearn" : "userarn";
  for (size_t i = 0; i < n; i++) {
    aa_entry_t *e = &out->v[i];
    e->raw = json_incref(json_array_get(doc, i));
    out->n = i + 1;
    if (!json_is_object(e->raw))
      continue; /* the authenticator drops it; we keep it untouched */
    bool exact = exact_fields(e->raw, arn_field);
    const char *arn = exact ? exact_str(e->raw, arn_field) : str_field(e->raw, arn_field);
    const char *user = exact ? exact_str(e->raw, "username") : str_field(e->raw, "username");
    if (user && !(e->username = strdup(user)))
      return set_err(out, CK_ENOMEM, "out of memory");
    e->nodes = exact ? exact_nodes(e->raw) : groups_have_nodes(e->raw);
    if (!arn || !arn[0])
      continue; /* fails the authenticator's validation: dropped alone */
    e->arn = strdup(arn);
    e->key = lower_dup(arn);
    if (!e->arn || !e->key)
      return set_err(out, CK_ENOMEM, "out of memory");
  }
  return 0;
}

void aa_list_free(aa_list_t *l) {
  if (!l)
    return;
  entries_free(l);
  json_decref(l->doc);
  memset(l, 0, sizeof *l);
}
