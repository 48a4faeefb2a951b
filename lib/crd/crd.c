/* CRD tables: checking them, and generating the apiextensions.k8s.io/v1
 * object as JSON and as YAML. */
#include "crd_internal.h"

#include "crdkit/crd.h"
#include "util/buf.h"
#include "util/yaml.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- shared helpers ------------------------------------------------------ */

ck_crd_type_t ck_crd_field_type(const ck_crd_field_t *f) {
  if (f->type != CK_CRD_AUTO)
    return f->type;
  if (f->fields)
    return CK_CRD_OBJECT;
  if (f->items)
    return CK_CRD_ARRAY;
  return CK_CRD_AUTO;
}

/* spec and status are objects unless the table says otherwise, so that
 * `.spec = &(const ck_crd_field_t){.preserve_unknown_fields = true}` works. */
static ck_crd_type_t top_type(const ck_crd_field_t *f) {
  ck_crd_type_t t = ck_crd_field_type(f);
  return t == CK_CRD_AUTO ? CK_CRD_OBJECT : t;
}

const ck_crd_version_t *ck_crd_find_version(const ck_crd_t *crd, const char *name) {
  for (const ck_crd_version_t *v = crd->versions; v && v->name; v++)
    if (name ? strcmp(v->name, name) == 0 : v->storage)
      return v;
  return NULL;
}

int ck_crd_regcomp(regex_t *re, const char *pattern) {
  /* RE2 (what the apiserver uses) knows the Perl classes; POSIX ERE does
   * not, so rewrite them. Inside a bracket expression the class is
   * spliced in without its own brackets. */
  ck_buf_t b = {0};
  bool in_bracket = false;
  for (const char *p = pattern; *p; p++) {
    if (*p == '\\' && p[1]) {
      const char *in = NULL, *out = NULL;
      switch (p[1]) {
      case 'd': in = "0-9"; out = "[0-9]"; break;
      case 'D': out = "[^0-9]"; break;
      case 's': in = "[:space:]"; out = "[[:space:]]"; break;
      case 'S': out = "[^[:space:]]"; break;
      case 'w': in = "A-Za-z0-9_"; out = "[A-Za-z0-9_]"; break;
      case 'W': out = "[^A-Za-z0-9_]"; break;
      default: break;
      }
      if (out && (!in_bracket || in)) {
        ck_buf_puts(&b, in_bracket ? in : out);
        p++;
        continue;
      }
      if (out) { /* a negated class inside brackets has no ERE spelling */
        ck_buf_free(&b);
        return REG_BADPAT;
      }
      if (in_bracket) { /* ERE has no escapes in brackets: keep the char */
        ck_buf_putc(&b, p[1]);
        p++;
        continue;
      }
      ck_buf_putc(&b, *p++);
      ck_buf_putc(&b, *p);
      continue;
    }
    if (!in_bracket && *p == '[') {
      in_bracket = true;
      ck_buf_putc(&b, *p);
      /* "[]" and "[^]" start with a literal ']' */
      if (p[1] == '^')
        ck_buf_putc(&b, *++p);
      if (p[1] == ']')
        ck_buf_putc(&b, *++p);
      continue;
    }
    if (in_bracket && *p == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
      const char *end = strstr(p + 2, (char[]){p[1], ']', 0});
      if (end) {
        ck_buf_append(&b, p, (size_t)(end + 2 - p));
        p = end + 1;
        continue;
      }
    }
    if (in_bracket && *p == ']')
      in_bracket = false;
    ck_buf_putc(&b, *p);
  }
  if (b.oom) {
    ck_buf_free(&b);
    return REG_ESPACE;
  }
  int rc = regcomp(re, b.data ? b.data : "", REG_EXTENDED | REG_NOSUB);
  ck_buf_free(&b);
  return rc;
}

/* ---- checking tables ----------------------------------------------------- */

typedef struct check {
  const ck_crd_t *crd;
  const char *version;
  ck_buf_t path;
  ck_error_t *err;
} check_t;

static int bad(check_t *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(check_t *k, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  const char *kind = k->crd && k->crd->kind ? k->crd->kind : "CRD";
  if (k->version && k->path.len)
    return ck_error_set(k->err, CK_EINVAL, "%s %s %s: %s", kind, k->version, k->path.data, msg);
  if (k->version)
    return ck_error_set(k->err, CK_EINVAL, "%s %s: %s", kind, k->version, msg);
  return ck_error_set(k->err, CK_EINVAL, "%s: %s", kind, msg);
}

const char *ck_crd_type_name(ck_crd_type_t t) {
  switch (t) {
  case CK_CRD_STRING: return "string";
  case CK_CRD_INTEGER: return "integer";
  case CK_CRD_NUMBER: return "number";
  case CK_CRD_BOOLEAN: return "boolean";
  case CK_CRD_ARRAY: return "array";
  case CK_CRD_OBJECT:
  case CK_CRD_MAP: return "object";
  case CK_CRD_INT_OR_STRING: return "int-or-string";
  case CK_CRD_AUTO: break;
  }
  return NULL;
}

static bool is_scalar(ck_crd_type_t t) {
  return t == CK_CRD_STRING || t == CK_CRD_INTEGER || t == CK_CRD_NUMBER ||
         t == CK_CRD_BOOLEAN || t == CK_CRD_INT_OR_STRING;
}

/* The JSON value of an enum entry, by the field's type; NULL when the
 * text does not fit the type. */
static json_t *enum_value(ck_crd_type_t t, const char *text) {
  if (t == CK_CRD_STRING)
    return json_string(text);
  if (t != CK_CRD_INTEGER && t != CK_CRD_NUMBER && t != CK_CRD_INT_OR_STRING)
    return NULL;
  json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
  if (t == CK_CRD_INT_OR_STRING && !json_is_integer(v)) {
    json_decref(v);
    return json_string(text);
  }
  if (!(t == CK_CRD_INTEGER ? json_is_integer(v) : json_is_number(v))) {
    json_decref(v);
    return NULL;
  }
  return v;
}

static int check_rules(check_t *k, const ck_crd_rule_t *rules) {
  static const char *const reasons[] = {"FieldValueInvalid", "FieldValueForbidden",
                                        "FieldValueRequired", "FieldValueDuplicate", NULL};
  for (const ck_crd_rule_t *r = rules; r && r->rule; r++) {
    if (!*r->rule)
      return bad(k, "rule %d is empty", (int)(r - rules));
    if (r->reason) {
      bool ok = false;
      for (const char *const *s = reasons; *s; s++)
        ok = ok || strcmp(*s, r->reason) == 0;
      if (!ok)
        return bad(k, "rule \"%s\": reason \"%s\" is not one of FieldValueInvalid, "
                      "FieldValueForbidden, FieldValueRequired, FieldValueDuplicate",
                   r->rule, r->reason);
    }
    if (r->field_path && r->field_path[0] != '.')
      return bad(k, "rule \"%s\": fieldPath \"%s\" must start with '.'", r->rule, r->field_path);
  }
  return 0;
}

static int check_field(check_t *k, const ck_crd_field_t *f, ck_crd_type_t t);

static int check_fields(check_t *k, const ck_crd_field_t *fields) {
  size_t base = k->path.len;
  for (const ck_crd_field_t *f = fields; f->name; f++) {
    for (const ck_crd_field_t *g = fields; g < f; g++)
      if (strcmp(g->name, f->name) == 0) {
        ck_buf_printf(&k->path, "%s%s", base ? "." : "", f->name);
        return bad(k, "duplicate field name");
      }
    if (!*f->name)
      return bad(k, "field %d has an empty name", (int)(f - fields));
    ck_buf_printf(&k->path, "%s%s", base ? "." : "", f->name);
    int rc = check_field(k, f, ck_crd_field_type(f));
    if (rc)
      return rc;
    k->path.len = base;
    if (k->path.data)
      k->path.data[base] = '\0';
  }
  return 0;
}

static int check_field(check_t *k, const ck_crd_field_t *f, ck_crd_type_t t) {
  if (!ck_crd_type_name(t))
    return bad(k, "type missing (set .type, or .fields/.items)");
  if (!f->description || !*f->description)
    return bad(k, "description missing (kubectl explain shows it)");
  bool numeric = t == CK_CRD_INTEGER || t == CK_CRD_NUMBER;
  if ((f->minimum || f->maximum) && !numeric)
    return bad(k, "minimum/maximum need an integer or number field, not %s", ck_crd_type_name(t));
  if (f->minimum && f->maximum &&
      (*f->minimum > *f->maximum ||
       (*f->minimum == *f->maximum && (f->exclusive_minimum || f->exclusive_maximum))))
    return bad(k, "minimum %g > maximum %g", *f->minimum, *f->maximum);
  if ((f->exclusive_minimum && !f->minimum) || (f->exclusive_maximum && !f->maximum))
    return bad(k, "exclusive minimum/maximum without the bound");
  if ((f->min_length || f->max_length || f->pattern) && t != CK_CRD_STRING)
    return bad(k, "minLength/maxLength/pattern need a string field, not %s", ck_crd_type_name(t));
  if ((f->min_length && *f->min_length < 0) || (f->max_length && *f->max_length < 0))
    return bad(k, "negative minLength/maxLength");
  if (f->min_length && f->max_length && *f->min_length > *f->max_length)
    return bad(k, "minLength %lld > maxLength %lld", (long long)*f->min_length,
               (long long)*f->max_length);
  if ((f->min_items || f->max_items) && t != CK_CRD_ARRAY)
    return bad(k, "minItems/maxItems need an array field, not %s", ck_crd_type_name(t));
  if ((f->min_items && *f->min_items < 0) || (f->max_items && *f->max_items < 0))
    return bad(k, "negative minItems/maxItems");
  if (f->min_items && f->max_items && *f->min_items > *f->max_items)
    return bad(k, "minItems %lld > maxItems %lld", (long long)*f->min_items,
               (long long)*f->max_items);
  if ((f->min_properties || f->max_properties) && t != CK_CRD_OBJECT && t != CK_CRD_MAP)
    return bad(k, "minProperties/maxProperties need an object or map field");
  if (f->min_properties && f->max_properties && *f->min_properties > *f->max_properties)
    return bad(k, "minProperties > maxProperties");
  if (f->pattern) {
    regex_t re;
    int rc = ck_crd_regcomp(&re, f->pattern);
    if (rc) {
      char why[128];
      regerror(rc, NULL, why, sizeof why);
      return bad(k, "pattern '%s' cannot be compiled locally as POSIX ERE (%s)", f->pattern, why);
    }
    regfree(&re);
  }
  if (f->enum_values) {
    if (!is_scalar(t) || t == CK_CRD_BOOLEAN)
      return bad(k, "enum needs a string, integer or number field, not %s", ck_crd_type_name(t));
    for (const char *const *e = f->enum_values; *e; e++) {
      json_t *v = enum_value(t, *e);
      if (!v)
        return bad(k, "enum value \"%s\" is not of type %s", *e, ck_crd_type_name(t));
      json_decref(v);
    }
  }
  if (f->fields && t != CK_CRD_OBJECT)
    return bad(k, ".fields needs an object field, not %s", ck_crd_type_name(t));
  if ((t == CK_CRD_ARRAY || t == CK_CRD_MAP) && !f->items)
    return bad(k, "%s needs .items (the %s schema)", t == CK_CRD_ARRAY ? "array" : "map",
               t == CK_CRD_ARRAY ? "element" : "value");
  if (f->items && t != CK_CRD_ARRAY && t != CK_CRD_MAP)
    return bad(k, ".items needs an array or map field, not %s", ck_crd_type_name(t));
  if (f->list_type != CK_CRD_LIST_NONE && t != CK_CRD_ARRAY)
    return bad(k, "list type needs an array field");
  if (f->list_map_keys && f->list_type != CK_CRD_LIST_MAP)
    return bad(k, "list map keys need list_type CK_CRD_LIST_MAP");
  if (f->list_type == CK_CRD_LIST_SET && !is_scalar(ck_crd_field_type(f->items)))
    return bad(k, "a set needs scalar items");
  if (f->list_type == CK_CRD_LIST_MAP) {
    if (ck_crd_field_type(f->items) != CK_CRD_OBJECT || !f->items->fields)
      return bad(k, "a list map needs object items with fields");
    if (!f->list_map_keys || !f->list_map_keys[0])
      return bad(k, "a list map needs list_map_keys");
    for (const char *const *key = f->list_map_keys; *key; key++) {
      const ck_crd_field_t *kf = f->items->fields;
      while (kf->name && strcmp(kf->name, *key) != 0)
        kf++;
      if (!kf->name)
        return bad(k, "list map key \"%s\" is not a field of the items", *key);
      if (!is_scalar(ck_crd_field_type(kf)))
        return bad(k, "list map key \"%s\" must be a scalar", *key);
      if (!kf->required && !kf->default_json)
        return bad(k, "list map key \"%s\" must be required or have a default", *key);
    }
  }
  if (f->preserve_unknown_fields && t != CK_CRD_OBJECT && t != CK_CRD_MAP &&
      t != CK_CRD_ARRAY)
    return bad(k, "preserve_unknown_fields needs an object, map or array field");
  int rc = check_rules(k, f->rules);
  if (rc)
    return rc;
  if (f->items) {
    size_t base = k->path.len;
    ck_buf_puts(&k->path, t == CK_CRD_ARRAY ? "[]" : "[*]");
    rc = check_field(k, f->items, ck_crd_field_type(f->items));
    if (rc)
      return rc;
    k->path.len = base;
    k->path.data[base] = '\0';
  }
  if (f->fields) {
    rc = check_fields(k, f->fields);
    if (rc)
      return rc;
  }
  /* Last, so the schema below is known good: the default must pass it. */
  if (f->default_json) {
    json_error_t jerr;
    json_t *d = json_loads(f->default_json, JSON_DECODE_ANY, &jerr);
    if (!d)
      return bad(k, "default is not JSON (%s): %s", jerr.text, f->default_json);
    ck_crd_errors_t errs = {0};
    ck_buf_t p = {0};
    rc = ck_crd_validate_value(f, d, &p, &errs);
    json_decref(d);
    ck_buf_free(&p);
    if (rc) {
      ck_crd_errors_free(&errs);
      return ck_error_set(k->err, rc, "out of memory");
    }
    if (errs.count) {
      rc = bad(k, "default %s: %s%s%s", f->default_json, errs.items[0].field,
               errs.items[0].field[0] ? ": " : "", errs.items[0].message);
      ck_crd_errors_free(&errs);
      return rc;
    }
  }
  return 0;
}

static bool dns_label(const char *s) {
  if (!s || !*s || strlen(s) > 63)
    return false;
  for (const char *p = s; *p; p++)
    if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-'))
      return false;
  return s[0] != '-' && s[strlen(s) - 1] != '-';
}

static int check_top(check_t *k, const char *name, const ck_crd_field_t *f) {
  if (!f)
    return 0;
  ck_buf_reset(&k->path);
  ck_buf_puts(&k->path, name);
  return check_field(k, f, top_type(f));
}

static int check_version(check_t *k, const ck_crd_version_t *v) {
  k->version = v->name;
  ck_buf_reset(&k->path);
  if (!dns_label(v->name))
    return bad(k, "version name must be a lowercase DNS label (\"v1alpha1\")");
  int rc = check_top(k, "spec", v->spec);
  if (!rc)
    rc = check_top(k, "status", v->status);
  if (rc)
    return rc;
  ck_buf_reset(&k->path);
  if (v->fields) {
    for (const ck_crd_field_t *f = v->fields; f->name; f++)
      if (strcmp(f->name, "spec") == 0 || strcmp(f->name, "status") == 0 ||
          strcmp(f->name, "metadata") == 0 || strcmp(f->name, "apiVersion") == 0 ||
          strcmp(f->name, "kind") == 0) {
        ck_buf_puts(&k->path, f->name);
        return bad(k, "duplicate field name (use .spec/.status; metadata, apiVersion and "
                      "kind are implicit)");
      }
    if ((rc = check_fields(k, v->fields)))
      return rc;
  }
  ck_buf_reset(&k->path);
  if ((rc = check_rules(k, v->rules)))
    return rc;
  static const char *const col_types[] = {"string", "integer", "number", "boolean", "date", NULL};
  for (const ck_crd_column_t *c = v->columns; c && c->name; c++) {
    bool ok = false;
    for (const char *const *s = col_types; c->type && *s; s++)
      ok = ok || strcmp(*s, c->type) == 0;
    if (!ok)
      return bad(k, "printer column \"%s\": type must be string, integer, number, boolean or "
                    "date", c->name);
    if (!c->json_path || c->json_path[0] != '.')
      return bad(k, "printer column \"%s\": jsonPath must start with '.'", c->name);
    if (c->priority < 0)
      return bad(k, "printer column \"%s\": negative priority", c->name);
    for (const ck_crd_column_t *d = v->columns; d < c; d++)
      if (strcmp(d->name, c->name) == 0)
        return bad(k, "printer column \"%s\": duplicate name", c->name);
  }
  if (v->scale) {
    if (!v->scale->spec_replicas_path || strncmp(v->scale->spec_replicas_path, ".spec.", 6) != 0)
      return bad(k, "scale: specReplicasPath must start with .spec.");
    if (!v->scale->status_replicas_path ||
        strncmp(v->scale->status_replicas_path, ".status.", 8) != 0)
      return bad(k, "scale: statusReplicasPath must start with .status.");
    if (v->scale->label_selector_path &&
        strncmp(v->scale->label_selector_path, ".status.", 8) != 0 &&
        strncmp(v->scale->label_selector_path, ".spec.", 6) != 0)
      return bad(k, "scale: labelSelectorPath must start with .spec. or .status.");
  }
  return 0;
}

static int check_crd(check_t *k) {
  const ck_crd_t *crd = k->crd;
  if (!crd)
    return ck_error_set(k->err, CK_EINVAL, "CRD: NULL table");
  if (!crd->kind || !*crd->kind)
    return bad(k, "kind missing");
  if (!isupper((unsigned char)crd->kind[0]))
    return bad(k, "kind \"%s\" must start with an uppercase letter", crd->kind);
  if (!crd->group || !strchr(crd->group, '.'))
    return bad(k, "group must be a domain with a dot (\"crdkit.io\"), got \"%s\"",
               crd->group ? crd->group : "(null)");
  if (!dns_label(crd->plural))
    return bad(k, "plural must be a lowercase DNS label, got \"%s\"",
               crd->plural ? crd->plural : "(null)");
  if (crd->singular && !dns_label(crd->singular))
    return bad(k, "singular must be a lowercase DNS label, got \"%s\"", crd->singular);
  for (const char *const *s = crd->short_names; s && *s; s++)
    if (!dns_label(*s))
      return bad(k, "short name \"%s\" must be a lowercase DNS label", *s);
  for (const char *const *s = crd->categories; s && *s; s++)
    if (!dns_label(*s))
      return bad(k, "category \"%s\" must be a lowercase DNS label", *s);
  if (crd->scope != CK_CRD_NAMESPACED && crd->scope != CK_CRD_CLUSTER)
    return bad(k, "scope must be CK_CRD_NAMESPACED or CK_CRD_CLUSTER");
  if (crd->labels) {
    size_t n = 0;
    while (crd->labels[n])
      n++;
    if (n % 2)
      return bad(k, "labels must be key, value pairs");
  }
  if (!crd->versions || !crd->versions[0].name)
    return bad(k, "at least one version is needed");
  int storage = 0;
  for (const ck_crd_version_t *v = crd->versions; v->name; v++) {
    for (const ck_crd_version_t *w = crd->versions; w < v; w++)
      if (strcmp(w->name, v->name) == 0)
        return bad(k, "version \"%s\" declared twice", v->name);
    storage += v->storage;
    int rc = check_version(k, v);
    if (rc)
      return rc;
  }
  k->version = NULL;
  if (storage != 1)
    return bad(k, "exactly one version must be the storage version (found %d)", storage);
  return 0;
}

int ck_crd_check(const ck_crd_t *crd, ck_error_t *err) {
  check_t k = {.crd = crd, .err = err};
  int rc = check_crd(&k);
  if (!rc && k.path.oom)
    rc = ck_error_set(err, CK_ENOMEM, "out of memory");
  ck_buf_free(&k.path);
  return rc;
}

char *ck_crd_name(const ck_crd_t *crd) {
  if (!crd || !crd->plural || !crd->group)
    return NULL;
  size_t n = strlen(crd->plural) + strlen(crd->group) + 2;
  char *s = malloc(n);
  if (s)
    snprintf(s, n, "%s.%s", crd->plural, crd->group);
  return s;
}

int ck_crd_resource(const ck_crd_t *crd, const char *version, ck_resource_t *out,
                    ck_error_t *err) {
  int rc = ck_crd_check(crd, err);
  if (rc)
    return rc;
  const ck_crd_version_t *v = ck_crd_find_version(crd, version);
  if (!v)
    return ck_error_set(err, CK_EINVAL, "%s: no version \"%s\"", crd->kind, version);
  *out = (ck_resource_t){.group = crd->group,
                         .version = v->name,
                         .resource = crd->plural,
                         .kind = crd->kind,
                         .namespaced = crd->scope == CK_CRD_NAMESPACED};
  return 0;
}

/* ---- JSON generation ----------------------------------------------------- */

/* Numbers the way the apiserver (Go float64) gives them back: integral
 * values as JSON integers, so a stored CRD compares equal. */
static json_t *num(double d) {
  if (d == floor(d) && fabs(d) < 9007199254740992.0)
    return json_integer((json_int_t)d);
  return json_real(d);
}

static json_t *strlist(const char *const *v) {
  json_t *a = json_array();
  for (; a && v && *v; v++)
    json_array_append_new(a, json_string(*v));
  return a;
}

static json_t *rules_json(const ck_crd_rule_t *rules) {
  json_t *a = json_array();
  for (const ck_crd_rule_t *r = rules; a && r->rule; r++) {
    json_t *o = json_object();
    json_object_set_new(o, "rule", json_string(r->rule));
    if (r->message)
      json_object_set_new(o, "message", json_string(r->message));
    if (r->message_expression)
      json_object_set_new(o, "messageExpression", json_string(r->message_expression));
    if (r->reason)
      json_object_set_new(o, "reason", json_string(r->reason));
    if (r->field_path)
      json_object_set_new(o, "fieldPath", json_string(r->field_path));
    json_array_append_new(a, o);
  }
  return a;
}

static json_t *field_schema(const ck_crd_field_t *f, ck_crd_type_t t);

static json_t *fields_schema(json_t *o, const ck_crd_field_t *fields) {
  json_t *props = json_object(), *req = json_array();
  for (const ck_crd_field_t *f = fields; f && f->name; f++) {
    json_object_set_new(props, f->name, field_schema(f, ck_crd_field_type(f)));
    if (f->required)
      json_array_append_new(req, json_string(f->name));
  }
  json_object_set_new(o, "properties", props);
  if (json_array_size(req))
    json_object_set_new(o, "required", req);
  else
    json_decref(req);
  return o;
}

static json_t *field_schema(const ck_crd_field_t *f, ck_crd_type_t t) {
  json_t *o = json_object();
  if (!o)
    return NULL;
  if (t == CK_CRD_INT_OR_STRING)
    json_object_set_new(o, "x-kubernetes-int-or-string", json_true());
  else
    json_object_set_new(o, "type", json_string(ck_crd_type_name(t)));
  if (f->description)
    json_object_set_new(o, "description", json_string(f->description));
  if (f->format)
    json_object_set_new(o, "format", json_string(f->format));
  if (f->nullable)
    json_object_set_new(o, "nullable", json_true());
  if (f->default_json)
    json_object_set_new(o, "default", json_loads(f->default_json, JSON_DECODE_ANY, NULL));
  if (f->enum_values) {
    json_t *e = json_array();
    for (const char *const *s = f->enum_values; *s; s++)
      json_array_append_new(e, enum_value(t, *s));
    json_object_set_new(o, "enum", e);
  }
  if (f->minimum)
    json_object_set_new(o, "minimum", num(*f->minimum));
  if (f->exclusive_minimum)
    json_object_set_new(o, "exclusiveMinimum", json_true());
  if (f->maximum)
    json_object_set_new(o, "maximum", num(*f->maximum));
  if (f->exclusive_maximum)
    json_object_set_new(o, "exclusiveMaximum", json_true());
  if (f->min_length)
    json_object_set_new(o, "minLength", json_integer(*f->min_length));
  if (f->max_length)
    json_object_set_new(o, "maxLength", json_integer(*f->max_length));
  if (f->pattern)
    json_object_set_new(o, "pattern", json_string(f->pattern));
  if (f->min_items)
    json_object_set_new(o, "minItems", json_integer(*f->min_items));
  if (f->max_items)
    json_object_set_new(o, "maxItems", json_integer(*f->max_items));
  if (t == CK_CRD_ARRAY)
    json_object_set_new(o, "items", field_schema(f->items, ck_crd_field_type(f->items)));
  static const char *const list_types[] = {NULL, "atomic", "set", "map"};
  if (f->list_type > CK_CRD_LIST_NONE && f->list_type <= CK_CRD_LIST_MAP)
    json_object_set_new(o, "x-kubernetes-list-type", json_string(list_types[f->list_type]));
  if (f->list_map_keys)
    json_object_set_new(o, "x-kubernetes-list-map-keys", strlist(f->list_map_keys));
  if (f->min_properties)
    json_object_set_new(o, "minProperties", json_integer(*f->min_properties));
  if (f->max_properties)
    json_object_set_new(o, "maxProperties", json_integer(*f->max_properties));
  if (t == CK_CRD_OBJECT && f->fields)
    fields_schema(o, f->fields);
  if (t == CK_CRD_MAP)
    json_object_set_new(o, "additionalProperties",
                        field_schema(f->items, ck_crd_field_type(f->items)));
  if (f->preserve_unknown_fields)
    json_object_set_new(o, "x-kubernetes-preserve-unknown-fields", json_true());
  if (f->rules && f->rules->rule)
    json_object_set_new(o, "x-kubernetes-validations", rules_json(f->rules));
  return o;
}

static json_t *root_schema(const ck_crd_version_t *v) {
  json_t *o = json_object(), *props = json_object(), *req = json_array();
  json_object_set_new(o, "type", json_string("object"));
  if (v->description)
    json_object_set_new(o, "description", json_string(v->description));
  /* The same wording as the built-in types, so kubectl explain reads
   * alike. */
  json_object_set_new(props, "apiVersion",
                      json_pack("{s:s,s:s}", "type", "string", "description",
                                "APIVersion defines the versioned schema of this representation "
                                "of an object."));
  json_object_set_new(props, "kind",
                      json_pack("{s:s,s:s}", "type", "string", "description",
                                "Kind is a string value representing the REST resource this "
                                "object represents."));
  json_object_set_new(props, "metadata", json_pack("{s:s}", "type", "object"));
  if (v->spec) {
    json_object_set_new(props, "spec", field_schema(v->spec, top_type(v->spec)));
    if (v->spec->required)
      json_array_append_new(req, json_string("spec"));
  }
  if (v->status) {
    json_object_set_new(props, "status", field_schema(v->status, top_type(v->status)));
    if (v->status->required)
      json_array_append_new(req, json_string("status"));
  }
  for (const ck_crd_field_t *f = v->fields; f && f->name; f++) {
    json_object_set_new(props, f->name, field_schema(f, ck_crd_field_type(f)));
    if (f->required)
      json_array_append_new(req, json_string(f->name));
  }
  json_object_set_new(o, "properties", props);
  if (json_array_size(req))
    json_object_set_new(o, "required", req);
  else
    json_decref(req);
  if (v->rules && v->rules->rule)
    json_object_set_new(o, "x-kubernetes-validations", rules_json(v->rules));
  return o;
}

static json_t *version_json(const ck_crd_version_t *v) {
  json_t *o = json_object();
  json_object_set_new(o, "name", json_string(v->name));
  json_object_set_new(o, "served", json_boolean(v->served));
  json_object_set_new(o, "storage", json_boolean(v->storage));
  if (v->deprecated)
    json_object_set_new(o, "deprecated", json_true());
  if (v->deprecation_warning)
    json_object_set_new(o, "deprecationWarning", json_string(v->deprecation_warning));
  json_object_set_new(o, "schema", json_pack("{s:o}", "openAPIV3Schema", root_schema(v)));
  if (v->status_subresource || v->scale) {
    json_t *sub = json_object();
    if (v->status_subresource)
      json_object_set_new(sub, "status", json_object());
    if (v->scale) {
      json_t *sc = json_pack("{s:s,s:s}", "specReplicasPath", v->scale->spec_replicas_path,
                             "statusReplicasPath", v->scale->status_replicas_path);
      if (v->scale->label_selector_path)
        json_object_set_new(sc, "labelSelectorPath", json_string(v->scale->label_selector_path));
      json_object_set_new(sub, "scale", sc);
    }
    json_object_set_new(o, "subresources", sub);
  }
  if (v->columns && v->columns->name) {
    json_t *cols = json_array();
    for (const ck_crd_column_t *c = v->columns; c->name; c++) {
      json_t *col = json_pack("{s:s,s:s}", "name", c->name, "type", c->type);
      if (c->format)
        json_object_set_new(col, "format", json_string(c->format));
      if (c->description)
        json_object_set_new(col, "description", json_string(c->description));
      if (c->priority)
        json_object_set_new(col, "priority", json_integer(c->priority));
      json_object_set_new(col, "jsonPath", json_string(c->json_path));
      json_array_append_new(cols, col);
    }
    json_object_set_new(o, "additionalPrinterColumns", cols);
  }
  return o;
}

/* jansson's setters drop a NULL value silently, so an allocation that
 * failed deep in the tree would lose a key. Checking every setter would
 * double this code; the skeleton is checked here, and a schema that lost
 * a piece underneath (a "type", say) is refused by the apiserver. */
static bool tree_complete(const json_t *spec, const ck_crd_t *crd) {
  size_t n = 0;
  for (const ck_crd_version_t *v = crd->versions; v->name; v++)
    n++;
  const json_t *vs = json_object_get(spec, "versions");
  if (json_array_size(vs) != n)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!json_object_get(json_array_get(vs, i), "schema"))
      return false;
  return json_object_get(spec, "names") && json_object_get(spec, "conversion");
}

int ck_crd_to_json(const ck_crd_t *crd, json_t **out, ck_error_t *err) {
  int rc = ck_crd_check(crd, err);
  if (rc)
    return rc;
  char *name = ck_crd_name(crd);
  char *lower = strdup(crd->kind);
  size_t kl = strlen(crd->kind);
  char *list_kind = malloc(kl + 5);
  json_t *o = NULL;
  if (name && lower && list_kind) {
    for (char *p = lower; *p; p++)
      *p = (char)tolower((unsigned char)*p);
    snprintf(list_kind, kl + 5, "%sList", crd->kind);
    json_t *names = json_pack("{s:s,s:s,s:s,s:s}", "plural", crd->plural, "singular",
                              crd->singular ? crd->singular : lower, "kind", crd->kind,
                              "listKind", crd->list_kind ? crd->list_kind : list_kind);
    if (names && crd->short_names && crd->short_names[0])
      json_object_set_new(names, "shortNames", strlist(crd->short_names));
    if (names && crd->categories && crd->categories[0])
      json_object_set_new(names, "categories", strlist(crd->categories));
    json_t *versions = json_array();
    for (const ck_crd_version_t *v = crd->versions; versions && v->name; v++)
      json_array_append_new(versions, version_json(v));
    json_t *spec = json_pack("{s:s,s:o*,s:s,s:o*,s:{s:s}}", "group", crd->group, "names", names,
                             "scope", crd->scope == CK_CRD_CLUSTER ? "Cluster" : "Namespaced",
                             "versions", versions, "conversion", "strategy", "None");
    json_t *meta = json_pack("{s:s}", "name", name);
    if (meta && crd->labels && crd->labels[0]) {
      json_t *labels = json_object();
      for (const char *const *l = crd->labels; l[0] && l[1]; l += 2)
        json_object_set_new(labels, l[0], json_string(l[1]));
      json_object_set_new(meta, "labels", labels);
    }
    o = json_pack("{s:s,s:s,s:o*,s:o*}", "apiVersion", "apiextensions.k8s.io/v1", "kind",
                  "CustomResourceDefinition", "metadata", meta, "spec", spec);
    if (o && (!meta || !spec || !tree_complete(spec, crd))) {
      json_decref(o);
      o = NULL;
    }
  }
  free(name);
  free(lower);
  free(list_kind);
  if (!o)
    return ck_error_set(err, CK_ENOMEM, "%s: out of memory", crd->kind);
  *out = o;
  return 0;
}

/* ---- YAML ---------------------------------------------------------------- */

/* A string may go out plain when it is made of a few safe characters,
 * starts with a letter, '_' or '/', and both YAML schemas read it back as
 * the same string (so "yes", "null", "y" get quotes). Everything else is
 * double-quoted with JSON escapes, which YAML's double-quoted style
 * accepts. */
static bool plain_ok(const char *s) {
  size_t n = strlen(s);
  if (!n || n > 512)
    return false;
  if (!(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == '/'))
    return false;
  if (s[n - 1] == ' ')
    return false;
  for (const char *p = s; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (isalnum(c) || c == ' ' || c == '_' || c == '.' || c == '/' || c == '-' || c == '(' ||
        c == ')' || c == ',' || c == '\'' || c == ';' || c == '=' || c == '+' || c == '<' ||
        c == '>')
      continue;
    return false;
  }
  for (int schema = 0; schema < 2; schema++) {
    json_t *v = ck_yaml_resolve_plain(s, n, schema ? CK_YAML_11 : CK_YAML_CORE);
    bool same = json_is_string(v) && strcmp(json_string_value(v), s) == 0;
    json_decref(v);
    if (!same)
      return false;
  }
  return true;
}

static void y_string(ck_buf_t *b, const char *s) {
  if (plain_ok(s)) {
    ck_buf_puts(b, s);
    return;
  }
  /* JSON escapes, plus DEL, which YAML does not count as printable. */
  ck_buf_putc(b, '"');
  for (const char *p = s; *p; p++) {
    char one[2] = {*p, 0};
    if (*p == 0x7f) {
      ck_buf_puts(b, "\\x7f");
      continue;
    }
    ck_buf_t tmp = {0};
    ck_buf_json_string(&tmp, one);
    if (tmp.data)
      ck_buf_append(b, tmp.data + 1, tmp.len - 2);
    else
      b->oom = true;
    ck_buf_free(&tmp);
  }
  ck_buf_putc(b, '"');
}

static void y_indent(ck_buf_t *b, int n);

/* A multi-line string goes out as a literal block ("|") when it reads
 * back exactly: printable ASCII, tabs and line breaks only (YAML 1.1
 * counts some Unicode characters as line breaks), no leading blank or
 * break (that would need an indentation indicator) and no line of only
 * blanks. The chomping indicator keeps the trailing breaks as they are. */
static bool literal_ok(const char *s) {
  if (!strchr(s, '\n') || s[0] == ' ' || s[0] == '\t' || s[0] == '\n')
    return false;
  bool blank_line = true; /* the current line has only blanks so far */
  size_t blanks = 0;
  for (const char *p = s; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (c == '\n') {
      if (blank_line && blanks)
        return false;
      blank_line = true, blanks = 0;
    } else if (c == ' ' || c == '\t') {
      blanks++;
    } else if (c >= 0x20 && c < 0x7f) {
      blank_line = false;
    } else {
      return false;
    }
  }
  return !(blank_line && blanks);
}

static void y_literal(ck_buf_t *b, const char *s, int indent) {
  size_t n = strlen(s), breaks = 0;
  while (breaks < n && s[n - 1 - breaks] == '\n')
    breaks++;
  ck_buf_puts(b, breaks == 0 ? "|-\n" : breaks == 1 ? "|\n" : "|+\n");
  /* Every line ends with a break; the last one's is implied when the
   * string has none ("|-" strips it again). */
  const char *p = s, *end = s + n;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
    if (len)
      y_indent(b, indent);
    ck_buf_append(b, p, len);
    ck_buf_putc(b, '\n');
    p += len + 1;
  }
}

static void y_scalar(ck_buf_t *b, const json_t *v) {
  if (json_is_string(v)) {
    y_string(b, json_string_value(v));
  } else if (json_is_object(v)) {
    ck_buf_puts(b, "{}");
  } else if (json_is_array(v)) {
    ck_buf_puts(b, "[]");
  } else {
    /* numbers, booleans, null: JSON spelling is YAML's too ("1.0" keeps
     * a real a real). */
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
    if (s)
      ck_buf_puts(b, s);
    else
      b->oom = true;
    free(s);
  }
}

static bool is_block(const json_t *v) {
  return (json_is_object(v) && json_object_size(v)) || (json_is_array(v) && json_array_size(v));
}

static void y_indent(ck_buf_t *b, int n) {
  for (int i = 0; i < n; i++)
    ck_buf_putc(b, ' ');
}

static void y_node(ck_buf_t *b, const json_t *v, int indent, bool inline_first);

static void y_map(ck_buf_t *b, const json_t *o, int indent, bool inline_first) {
  const char *key;
  const json_t *val;
  bool first = true;
  json_object_foreach((json_t *)o, key, val) {
    if (!(first && inline_first))
      y_indent(b, indent);
    first = false;
    y_string(b, key);
    ck_buf_putc(b, ':');
    if (is_block(val)) {
      ck_buf_putc(b, '\n');
      y_node(b, val, json_is_array(val) ? indent : indent + 2, false);
    } else if (json_is_string(val) && literal_ok(json_string_value(val))) {
      ck_buf_putc(b, ' ');
      y_literal(b, json_string_value(val), indent + 2);
    } else {
      ck_buf_putc(b, ' ');
      y_scalar(b, val);
      ck_buf_putc(b, '\n');
    }
  }
}

static void y_seq(ck_buf_t *b, const json_t *a, int indent, bool inline_first) {
  size_t i;
  const json_t *val;
  json_array_foreach(a, i, val) {
    if (!(i == 0 && inline_first))
      y_indent(b, indent);
    ck_buf_puts(b, "- ");
    if (is_block(val)) {
      y_node(b, val, indent + 2, true);
    } else if (json_is_string(val) && literal_ok(json_string_value(val))) {
      y_literal(b, json_string_value(val), indent + 2);
    } else {
      y_scalar(b, val);
      ck_buf_putc(b, '\n');
    }
  }
}

static void y_node(ck_buf_t *b, const json_t *v, int indent, bool inline_first) {
  if (json_is_object(v))
    y_map(b, v, indent, inline_first);
  else
    y_seq(b, v, indent, inline_first);
}

char *ck_crd_json_to_yaml(const json_t *value) {
  ck_buf_t b = {0};
  if (is_block(value)) {
    y_node(&b, value, 0, false);
  } else {
    y_scalar(&b, value);
    ck_buf_putc(&b, '\n');
  }
  if (b.oom) {
    ck_buf_free(&b);
    return NULL;
  }
  return ck_buf_steal(&b);
}

int ck_crd_to_yaml(const ck_crd_t *crd, char **out, ck_error_t *err) {
  json_t *o = NULL;
  int rc = ck_crd_to_json(crd, &o, err);
  if (rc)
    return rc;
  char *y = ck_crd_json_to_yaml(o);
  json_decref(o);
  if (!y)
    return ck_error_set(err, CK_ENOMEM, "%s: out of memory", crd->kind);
  *out = y;
  return 0;
}
