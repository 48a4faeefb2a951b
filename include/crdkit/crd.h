/* crdkit/crd.h: CustomResourceDefinitions declared as static C tables.
 *
 * A ck_crd_t describes one CRD: names, versions, and per version an
 * OpenAPI schema built from nested ck_crd_field_t tables. From it crdkit
 * generates the apiextensions.k8s.io/v1 object (JSON or YAML), installs it
 * (create or update, then wait until Established), gives the
 * ck_resource_t controllers use, and defaults/validates objects locally.
 *
 * Tables are plain data meant for designated initializers; every array is
 * terminated by a zeroed entry (name/rule NULL) or, for strings, by NULL.
 * All strings and nested tables are borrowed: the library never frees or
 * keeps them past a call, except ck_crd_resource (see there). A table in
 * static storage (file-scope compound literals included) is typical.
 *
 *   static const ck_crd_field_t gadget_spec[] = {
 *     {.name = "size", .type = CK_CRD_INTEGER, .description = "Number of parts.",
 *      .required = true, .minimum = CK_CRD_NUM(1), .maximum = CK_CRD_NUM(10)},
 *     {.name = "color", .type = CK_CRD_STRING, .description = "Paint.",
 *      .default_json = "\"red\"", .enum_values = CK_CRD_LIST("red", "blue")},
 *     {0},
 *   };
 *   static const ck_crd_t gadget_crd = {
 *     .group = "example.crdkit.io", .kind = "Gadget", .plural = "gadgets",
 *     .versions = (const ck_crd_version_t[]){
 *       {.name = "v1", .served = true, .storage = true,
 *        .spec = &(const ck_crd_field_t){.type = CK_CRD_OBJECT,
 *                                         .description = "Desired state.",
 *                                         .fields = gadget_spec},
 *        .status_subresource = true},
 *       {0}},
 *   };
 *
 * Thread-safety: all functions are thread-safe (tables are only read).
 */
#ifndef CRDKIT_CRD_H
#define CRDKIT_CRD_H

#include "crdkit/client.h"
#include "crdkit/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Optional numbers in tables: `.minimum = CK_CRD_NUM(1)`, `.max_length =
 * CK_CRD_INT(63)`. NULL means "not set". These, CK_CRD_LIST and the
 * `(const ck_crd_field_t[]){...}` literals are compound literals: static
 * at file scope, but inside a function they die with the enclosing block,
 * so a function must not return a table built from them. */
#define CK_CRD_NUM(x) (&(const double){(x)})
#define CK_CRD_INT(x) (&(const int64_t){(x)})
/* A NULL-terminated string list: `.short_names = CK_CRD_LIST("gd")`. */
#define CK_CRD_LIST(...) ((const char *const[]){__VA_ARGS__, NULL})

typedef enum ck_crd_type {
  /* 0: inferred: OBJECT when .fields is set, ARRAY when only .items is
   * set, MAP never; otherwise the table is invalid. */
  CK_CRD_AUTO = 0,
  CK_CRD_STRING,
  CK_CRD_INTEGER,
  CK_CRD_NUMBER,
  CK_CRD_BOOLEAN,
  CK_CRD_ARRAY,  /* .items: the element schema */
  CK_CRD_OBJECT, /* .fields: the properties */
  CK_CRD_MAP,    /* object with additionalProperties = .items */
  CK_CRD_INT_OR_STRING, /* x-kubernetes-int-or-string */
} ck_crd_type_t;

typedef enum ck_crd_list_type {
  CK_CRD_LIST_NONE = 0, /* no x-kubernetes-list-type (atomic for the server) */
  CK_CRD_LIST_ATOMIC,
  CK_CRD_LIST_SET, /* scalar items, unique */
  CK_CRD_LIST_MAP, /* object items, unique by .list_map_keys */
} ck_crd_list_type_t;

/* One x-kubernetes-validations entry (CEL). Passed through to the
 * apiserver, never evaluated locally. */
typedef struct ck_crd_rule {
  const char *rule;               /* required: the CEL expression */
  const char *message;            /* may be NULL */
  const char *message_expression; /* may be NULL */
  const char *reason;     /* NULL, "FieldValueInvalid", "FieldValueForbidden",
                             "FieldValueRequired", "FieldValueDuplicate" */
  const char *field_path; /* NULL or a JSON path relative to the object, ".x" */
} ck_crd_rule_t;

typedef struct ck_crd_field ck_crd_field_t;
struct ck_crd_field {
  const char *name;        /* key in the parent object; ignored for .items,
                              spec and status */
  ck_crd_type_t type;
  const char *description; /* shown by `kubectl explain`; set it everywhere */
  bool required;           /* listed in the parent's "required" */
  bool nullable;
  const char *default_json; /* JSON text ("\"x\"", "3", "{}"), checked
                               against this field's own schema */
  const char *format;       /* passed through ("date-time"...), not checked
                               locally */
  /* Allowed values, as strings for STRING fields and as JSON number text
   * for INTEGER/NUMBER fields ("1", "2.5"). NULL-terminated. */
  const char *const *enum_values;
  const double *minimum, *maximum; /* CK_CRD_NUM(x) */
  bool exclusive_minimum, exclusive_maximum;
  const int64_t *min_length, *max_length; /* strings, in characters */
  const char *pattern; /* ECMA/RE2 subset; see ck_crd_validate for the local dialect */
  const int64_t *min_items, *max_items; /* arrays */
  const int64_t *min_properties, *max_properties; /* objects and maps */
  const ck_crd_field_t *items;  /* ARRAY element / MAP value schema */
  const ck_crd_field_t *fields; /* OBJECT properties, {0}-terminated */
  ck_crd_list_type_t list_type;
  const char *const *list_map_keys; /* LIST_MAP: key fields of the items */
  bool preserve_unknown_fields;     /* x-kubernetes-preserve-unknown-fields */
  const ck_crd_rule_t *rules;       /* CEL rules at this level, {0}-terminated */
};

/* One additionalPrinterColumn (kubectl get). */
typedef struct ck_crd_column {
  const char *name;      /* "Ready" */
  const char *type;      /* "string", "integer", "number", "boolean", "date" */
  const char *json_path; /* ".status.ready" */
  const char *description;
  const char *format;    /* may be NULL */
  int priority;          /* 0: shown by default; >0: only with -o wide */
} ck_crd_column_t;

/* The scale subresource. */
typedef struct ck_crd_scale {
  const char *spec_replicas_path;   /* ".spec.replicas" */
  const char *status_replicas_path; /* ".status.replicas" */
  const char *label_selector_path;  /* may be NULL */
} ck_crd_scale_t;

typedef struct ck_crd_version {
  const char *name; /* "v1alpha1" */
  bool served;
  bool storage;     /* exactly one version has it */
  bool deprecated;
  const char *deprecation_warning;
  const char *description; /* of the kind (root schema) */
  const ck_crd_field_t *spec;   /* may be NULL; name ignored */
  const ck_crd_field_t *status; /* may be NULL; name ignored */
  const ck_crd_field_t *fields; /* other top-level fields ("data"...), {0}-terminated */
  const ck_crd_rule_t *rules;   /* CEL rules on the whole object */
  const ck_crd_column_t *columns; /* {0}-terminated (name NULL) */
  bool status_subresource;
  const ck_crd_scale_t *scale;  /* NULL: no scale subresource */
} ck_crd_version_t;

typedef enum ck_crd_scope {
  CK_CRD_NAMESPACED = 0,
  CK_CRD_CLUSTER,
} ck_crd_scope_t;

typedef struct ck_crd {
  const char *group;     /* "crdkit.io" */
  const char *kind;      /* "AWSAuth" */
  const char *plural;    /* "awsauths" (lowercase) */
  const char *singular;  /* NULL: lowercase kind */
  const char *list_kind; /* NULL: kind + "List" */
  const char *const *short_names; /* NULL-terminated, may be NULL */
  const char *const *categories;  /* NULL-terminated, may be NULL */
  ck_crd_scope_t scope;
  const ck_crd_version_t *versions; /* at least one, {0}-terminated */
  const char *const *labels; /* "key", "value" pairs for metadata.labels,
                                NULL-terminated, may be NULL */
} ck_crd_t;

/* ---- tables ------------------------------------------------------------ */

/* Check a table: names, versions (at least one; exactly one storage;
 * unique names), field tables (types, unique names, defaults and enum
 * values that match the field, min <= max, patterns that compile, list
 * types, rules with text, columns complete). Returns 0 or CK_EINVAL with
 * err->message naming the version and field path ("Gadget v1
 * spec.parts[].size: minimum 5 > maximum 1"). Every other call checks too. */
int ck_crd_check(const ck_crd_t *crd, ck_error_t *err);

/* The CRD's metadata.name, "<plural>.<group>". malloc'd (caller frees);
 * NULL when plural or group is missing or memory ran out. */
char *ck_crd_name(const ck_crd_t *crd);

/* The ck_resource_t of `version` (NULL: the storage version). Its strings
 * point into the table, so the table must outlive *out (static tables
 * do). Returns 0, or CK_EINVAL when the table is invalid or has no such
 * version. */
int ck_crd_resource(const ck_crd_t *crd, const char *version, ck_resource_t *out,
                    ck_error_t *err);

/* ---- generation ------------------------------------------------------- */

/* The apiextensions.k8s.io/v1 CustomResourceDefinition. *out is a new
 * reference (caller json_decref's). Keys come in a fixed order (the
 * order of the tables); names.singular, names.listKind and
 * conversion.strategy are written out, so what the apiserver stores
 * equals what was sent. CK_EINVAL for an invalid table, CK_ENOMEM. */
int ck_crd_to_json(const ck_crd_t *crd, json_t **out, ck_error_t *err);

/* The same as one YAML document ("---" not included), written by crdkit's
 * own emitter: block style, keys in the JSON's order, strings plain only
 * when YAML 1.1 and 1.2 both read them back as the same string, else
 * double-quoted. *out is malloc'd (caller frees). */
int ck_crd_to_yaml(const ck_crd_t *crd, char **out, ck_error_t *err);

/* Write any JSON value as YAML by the same rules. malloc'd, or NULL when
 * memory ran out. */
char *ck_crd_json_to_yaml(const json_t *value);

/* ---- install ----------------------------------------------------------- */

/* Create the CRD, or update the existing one (its metadata, labels and
 * resourceVersion kept, spec replaced; retried on conflict), then wait
 * until its Established and NamesAccepted conditions are True. An update
 * of a CRD that already was Established returns once the server accepted
 * it and the conditions are True again; the apiserver picks the new
 * schema up asynchronously (normally within milliseconds).
 * timeout_ms <= 0: 60,000. Returns 0; CK_EINVAL (bad table); CK_EAPI
 * (the server refused it: err->causes name the fields); CK_ETIMEDOUT
 * (not Established in time: the message gives the condition's reason and
 * message); CK_EINVAL also when the names were refused (NamesAccepted=
 * False, e.g. a kind another CRD of the group uses) or the CRD is being
 * deleted, reported at once with the condition's reason and message;
 * other CK_E* codes from the client. Every message starts with
 * "CRD <name>: ". */
int ck_crd_install(ck_client_t *c, const ck_crd_t *crd, int64_t timeout_ms, ck_error_t *err);

/* Wait until the CRD named `name` ("gadgets.example.io") is Established
 * with NamesAccepted. Errors as ck_crd_install. */
int ck_crd_wait_established(ck_client_t *c, const char *name, int64_t timeout_ms,
                            ck_error_t *err);

/* ---- local defaulting and validation ------------------------------------ */

/* Apply the schema's defaults of `version` (NULL: storage) to `obj`
 * (modified in place), the way the apiserver does: a missing property (or
 * null one, unless nullable) gets a copy of its default, then defaults are
 * applied inside every object, array item and map value, including ones
 * just defaulted. Returns 0, CK_EINVAL (bad table or no such version),
 * CK_ENOMEM. */
int ck_crd_default(const ck_crd_t *crd, const char *version, json_t *obj, ck_error_t *err);

/* One field error of ck_crd_validate. */
typedef struct ck_crd_field_error {
  char *field;   /* "spec.parts[1].size" */
  const char *type; /* "FieldValueRequired", "FieldValueInvalid",
                       "FieldValueNotSupported", "FieldValueTypeInvalid",
                       "FieldValueTooLong", "FieldValueTooMany",
                       "FieldValueDuplicate" (static strings) */
  char *message; /* "should be less than or equal to 10" */
} ck_crd_field_error_t;

/* The list ck_crd_validate fills; zero it first; free with
 * ck_crd_errors_free. */
typedef struct ck_crd_errors {
  size_t count;
  ck_crd_field_error_t *items;
} ck_crd_errors_t;

/* Frees the entries and zeroes the list. NULL is a no-op. */
void ck_crd_errors_free(ck_crd_errors_t *errs);

/* Validate `obj` (borrowed, not modified; default it first for the
 * server's view) against the schema of `version` (NULL: storage): types,
 * required, nullable, enum, minimum/maximum (exclusive too), minLength/
 * maxLength (in UTF-8 characters), pattern, minItems/maxItems,
 * minProperties/maxProperties, set and list-map uniqueness.
 * NOT checked locally: CEL rules (x-kubernetes-validations; only the
 * apiserver evaluates them), format, metadata, unknown fields (the server
 * prunes them). `pattern` is compiled as a POSIX extended regex (bytes,
 * unanchored search like RE2's) after rewriting \d \D \s \S \w \W; RE2-only
 * syntax (non-greedy ?, (?i), \pL, lookarounds are not RE2 either) fails
 * ck_crd_check, and "." matches a byte rather than a character.
 * Returns 0 when valid; CK_EINVAL with the errors appended to *errs
 * (caller-owned, may be NULL to only get the verdict) and err->message
 * holding the first one ("spec.size: should be ..."); CK_EINVAL with no
 * entries for a bad table; CK_ENOMEM. */
int ck_crd_validate(const ck_crd_t *crd, const char *version, const json_t *obj,
                    ck_crd_errors_t *errs, ck_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
