/* CRD tables without a server: generation (JSON and YAML), checking of
 * malformed tables, local defaulting and validation. */
#include "cktest.h"

#include "crdkit/crd.h"
#include "util/yaml.h"

#include <stdlib.h>
#include <string.h>

static const ck_crd_field_t part_fields[] = {
    {.name = "name", .type = CK_CRD_STRING, .description = "Part name.", .required = true,
     .pattern = "^[a-z][a-z0-9-]*$", .max_length = CK_CRD_INT(20)},
    {.name = "count", .type = CK_CRD_INTEGER, .description = "How many.", .default_json = "1",
     .minimum = CK_CRD_NUM(1), .maximum = CK_CRD_NUM(100)},
    {0},
};

static const ck_crd_field_t spec_fields[] = {
    {.name = "size", .type = CK_CRD_INTEGER, .description = "Number of parts.", .required = true,
     .minimum = CK_CRD_NUM(1), .maximum = CK_CRD_NUM(10)},
    {.name = "color", .type = CK_CRD_STRING, .description = "Paint.", .default_json = "\"red\"",
     .enum_values = CK_CRD_LIST("red", "blue")},
    {.name = "ratio", .type = CK_CRD_NUMBER, .description = "A ratio.",
     .minimum = CK_CRD_NUM(0), .maximum = CK_CRD_NUM(1.5), .exclusive_maximum = true},
    {.name = "id", .type = CK_CRD_STRING, .description = "Identifier.", .pattern = "^\\d{3}-\\w+$",
     .min_length = CK_CRD_INT(5)},
    {.name = "tags", .type = CK_CRD_ARRAY, .description = "Tags.", .list_type = CK_CRD_LIST_SET,
     .max_items = CK_CRD_INT(3),
     .items = &(const ck_crd_field_t){.type = CK_CRD_STRING, .description = "A tag."}},
    {.name = "parts", .description = "Parts, by name.", .list_type = CK_CRD_LIST_MAP,
     .list_map_keys = CK_CRD_LIST("name"), .min_items = CK_CRD_INT(1),
     .items = &(const ck_crd_field_t){.description = "A part.", .fields = part_fields}},
    {.name = "labels", .type = CK_CRD_MAP, .description = "Free labels.",
     .items = &(const ck_crd_field_t){.type = CK_CRD_STRING, .description = "A value."}},
    {.name = "port", .type = CK_CRD_INT_OR_STRING, .description = "Port number or name."},
    {.name = "note", .type = CK_CRD_STRING, .description = "Nullable note.", .nullable = true},
    {.name = "options", .description = "Options.", .default_json = "{}",
     .fields = (const ck_crd_field_t[]){
         {.name = "verbose", .type = CK_CRD_BOOLEAN, .description = "Talk.",
          .default_json = "false"},
         {0}}},
    {.name = "extra", .type = CK_CRD_OBJECT, .description = "Anything.",
     .preserve_unknown_fields = true},
    {0},
};

static const ck_crd_t gadget = {
    .group = "unit.crdkit.io",
    .kind = "Gadget",
    .plural = "gadgets",
    .short_names = CK_CRD_LIST("gd"),
    .categories = CK_CRD_LIST("all"),
    .versions = (const ck_crd_version_t[]){
        {.name = "v1",
         .served = true,
         .storage = true,
         .description = "A gadget.",
         .spec = &(const ck_crd_field_t){.description = "Desired state.", .required = true,
                                         .fields = spec_fields,
                                         .rules = (const ck_crd_rule_t[]){
                                             {.rule = "self.size >= 2 || !has(self.tags)",
                                              .message = "tags need size >= 2",
                                              .field_path = ".tags"},
                                             {0}}},
         .status = &(const ck_crd_field_t){
             .description = "Observed state.",
             .fields = (const ck_crd_field_t[]){
                 {.name = "ready", .type = CK_CRD_BOOLEAN, .description = "Ready."}, {0}}},
         .columns = (const ck_crd_column_t[]){
             {.name = "Size", .type = "integer", .json_path = ".spec.size",
              .description = "Parts."},
             {.name = "Ready", .type = "boolean", .json_path = ".status.ready", .priority = 1},
             {0}},
         .status_subresource = true},
        {.name = "v1beta1", .served = true, .deprecated = true,
         .spec = &(const ck_crd_field_t){.description = "Old spec.",
                                         .preserve_unknown_fields = true}},
        {0}},
};

static bool json_eq_text(const json_t *v, const char *text) {
  json_t *want = cktest_json(text);
  bool eq = json_equal(v, want);
  json_decref(want);
  return eq;
}

static json_t *schema_of(json_t *crd, size_t version) {
  return cktest_jpath(json_array_get(cktest_jpath(crd, "spec.versions"), version),
                      "schema.openAPIV3Schema");
}

CK_TEST(crd, generates_json) {
  json_t *o = NULL;
  ck_error_t err = {0};
  cr_assert_eq(ck_crd_to_json(&gadget, &o, &err), 0, "%s", err.message);
  cr_assert_str_eq(cktest_jstr(o, "metadata.name"), "gadgets.unit.crdkit.io");
  cr_assert_str_eq(cktest_jstr(o, "spec.names.singular"), "gadget");
  cr_assert_str_eq(cktest_jstr(o, "spec.names.listKind"), "GadgetList");
  cr_assert_str_eq(cktest_jstr(o, "spec.scope"), "Namespaced");
  cr_assert_str_eq(cktest_jstr(o, "spec.conversion.strategy"), "None");
  cr_assert_eq(json_array_size(cktest_jpath(o, "spec.versions")), 2);
  json_t *root = schema_of(o, 0);
  cr_assert_str_eq(cktest_jstr(root, "description"), "A gadget.");
  cr_assert(json_eq_text(cktest_jpath(root, "required"), "[\"spec\"]"));
  json_t *spec = cktest_jpath(root, "properties.spec");
  json_t *size = cktest_jpath(spec, "properties.size");
  /* Integral bounds go out as JSON integers, as the server stores them. */
  cr_assert(json_is_integer(json_object_get(size, "minimum")));
  cr_assert_eq(json_integer_value(json_object_get(size, "maximum")), 10);
  cr_assert(json_is_real(cktest_jpath(spec, "properties.ratio.maximum")));
  cr_assert(json_is_true(cktest_jpath(spec, "properties.ratio.exclusiveMaximum")));
  cr_assert_str_eq(cktest_jstr(spec, "properties.color.default"), "red");
  cr_assert_str_eq(json_string_value(json_array_get(cktest_jpath(spec, "properties.color.enum"), 1)),
                   "blue");
  cr_assert_str_eq(cktest_jstr(spec, "properties.tags.x-kubernetes-list-type"), "set");
  cr_assert_str_eq(cktest_jstr(spec, "properties.parts.type"), "array");
  cr_assert_str_eq(cktest_jstr(spec, "properties.parts.items.type"), "object");
  cr_assert_str_eq(cktest_jstr(spec, "properties.parts.x-kubernetes-list-type"), "map");
  cr_assert_str_eq(cktest_jstr(spec, "properties.labels.type"), "object");
  cr_assert_str_eq(cktest_jstr(spec, "properties.labels.additionalProperties.type"), "string");
  cr_assert(json_is_true(cktest_jpath(spec, "properties.port.x-kubernetes-int-or-string")));
  cr_assert_null(cktest_jpath(spec, "properties.port.type"));
  cr_assert(json_is_true(cktest_jpath(spec, "properties.note.nullable")));
  cr_assert(json_is_true(cktest_jpath(spec, "properties.extra.x-kubernetes-preserve-unknown-fields")));
  json_t *rule = json_array_get(cktest_jpath(spec, "x-kubernetes-validations"), 0);
  cr_assert_str_eq(cktest_jstr(rule, "message"), "tags need size >= 2");
  cr_assert_str_eq(cktest_jstr(rule, "fieldPath"), ".tags");
  cr_assert(json_eq_text(cktest_jpath(spec, "required"), "[\"size\"]"));
  json_t *v0 = json_array_get(cktest_jpath(o, "spec.versions"), 0);
  cr_assert(json_is_object(cktest_jpath(v0, "subresources.status")));
  json_t *cols = cktest_jpath(v0, "additionalPrinterColumns");
  cr_assert_eq(json_array_size(cols), 2);
  cr_assert_null(json_object_get(json_array_get(cols, 0), "priority"));
  cr_assert_eq(json_integer_value(json_object_get(json_array_get(cols, 1), "priority")), 1);
  json_t *v1 = json_array_get(cktest_jpath(o, "spec.versions"), 1);
  cr_assert(json_is_false(json_object_get(v1, "storage")));
  cr_assert(json_is_true(json_object_get(v1, "deprecated")));
  json_decref(o);
}

/* Parse YAML with both schemas kubectl-side readers may use. */
static json_t *yaml_back(const char *y, ck_yaml_schema_t schema) {
  ck_yaml_opts_t opts = {.schema = schema};
  json_t *back = NULL;
  ck_error_t err = {0};
  cr_assert_eq(ck_yaml_to_json(y, strlen(y), &opts, &back, &err), 0, "%s\n%s", err.message, y);
  return back;
}

CK_TEST(crd, yaml_round_trips) {
  json_t *o = NULL;
  char *y = NULL, *y2 = NULL;
  ck_error_t err = {0};
  cr_assert_eq(ck_crd_to_json(&gadget, &o, &err), 0, "%s", err.message);
  cr_assert_eq(ck_crd_to_yaml(&gadget, &y, &err), 0, "%s", err.message);
  cr_assert_eq(ck_crd_to_yaml(&gadget, &y2, &err), 0, "%s", err.message);
  cr_assert_str_eq(y, y2, "the output is deterministic");
  const char *head = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n";
  cr_assert(strncmp(y, head, strlen(head)) == 0, "%s", y);
  for (int s = 0; s < 2; s++) {
    json_t *back = yaml_back(y, s ? CK_YAML_11 : CK_YAML_CORE);
    cr_assert(json_equal(back, o), "YAML differs from JSON:\n%s", y);
    json_decref(back);
  }
  free(y);
  free(y2);
  json_decref(o);
}

CK_TEST(crd, yaml_quotes_what_needs_it) {
  json_t *v = cktest_json(
      "{\"a\":\"yes\",\"b\":\"null\",\"c\":\"1.5\",\"d\":\"x: y\",\"e\":\"\",\"f\":\" lead\","
      "\"g\":\"two\\nlines\",\"h\":\"#c\",\"i\":\"y\",\"j\":\"- x\",\"k\":\"0x1F\",\"l\":\"~\","
      "\"m\":\"tab\\there\",\"n\":\"quote\\\"s\",\"o\":\"caf\\u00e9\",\"p\":\"On\",\"q\":\"1_000\","
      "\"r\":\"*alias\",\"s\":\"!tag\",\"t\":\"a #b\",\"u\":\"plain text, ok.\",\"yes\":1,"
      "\"1\":[],\"x\":{},\"z\":[[1,2],{\"k\":[{}]}],\"real\":1.0,\"neg\":-2,\"f2\":false,"
      "\"nul\":null,\"del\":\"\\u007f\"}");
  char *y = ck_crd_json_to_yaml(v);
  cr_assert_not_null(y);
  cr_assert_not_null(strstr(y, "u: plain text, ok.\n"), "safe text stays plain:\n%s", y);
  cr_assert_not_null(strstr(y, "a: \"yes\"\n"), "%s", y);
  cr_assert_not_null(strstr(y, "\"yes\": 1\n"), "keys are quoted too:\n%s", y);
  for (int s = 0; s < 2; s++) {
    json_t *back = yaml_back(y, s ? CK_YAML_11 : CK_YAML_CORE);
    cr_assert(json_equal(back, v), "schema %d:\n%s", s, y);
    json_decref(back);
  }
  free(y);
  json_decref(v);
}

/* Multi-line strings (a ConfigMap's data) go out as literal blocks when
 * they read back exactly, and quoted otherwise; both schemas agree. */
CK_TEST(crd, yaml_literal_blocks) {
  json_t *v = cktest_json(
      "{\"data\":{\"mapRoles\":\"- rolearn: a\\n  groups:\\n  - x\\n\",\"none\":\"a\\nb\","
      "\"two\":\"a\\n\\n\",\"inner\":\"a\\n\\n  b\\tc\\n\",\"lead\":\" a\\nb\","
      "\"blank\":\"a\\n  \\nb\",\"crlf\":\"a\\r\\nb\",\"nel\":\"a\\u0085\\nb\","
      "\"first\":\"\\nb\",\"hash\":\"#x\\n: y\\n- z\\n\"},\"list\":[\"p\\nq\\n\",\"r\"]}");
  char *y = ck_crd_json_to_yaml(v);
  cr_assert_not_null(y);
  cr_assert_not_null(strstr(y, "  mapRoles: |\n    - rolearn: a\n      groups:\n      - x\n"), "%s", y);
  cr_assert_not_null(strstr(y, "  none: |-\n    a\n    b\n"), "%s", y);
  cr_assert_not_null(strstr(y, "  two: |+\n    a\n\n"), "%s", y);
  cr_assert_not_null(strstr(y, "  hash: |\n    #x\n    : y\n"), "%s", y);
  cr_assert_not_null(strstr(y, "- |\n  p\n  q\n"), "%s", y);
  cr_assert_not_null(strstr(y, "  lead: \" a\\nb\"\n"), "leading blank: quoted\n%s", y);
  cr_assert_not_null(strstr(y, "  blank: \"a"), "a blank-only line: quoted\n%s", y);
  cr_assert_not_null(strstr(y, "  crlf: \"a"), "%s", y);
  cr_assert_not_null(strstr(y, "  nel: \"a"), "%s", y);
  cr_assert_not_null(strstr(y, "  first: \""), "%s", y);
  for (int s = 0; s < 2; s++) {
    json_t *back = yaml_back(y, s ? CK_YAML_11 : CK_YAML_CORE);
    cr_assert(json_equal(back, v), "schema %d:\n%s", s, y);
    json_decref(back);
  }
  free(y);
  json_decref(v);
}

CK_TEST(crd, resource_and_name) {
  ck_resource_t r;
  ck_error_t err = {0};
  cr_assert_eq(ck_crd_resource(&gadget, NULL, &r, &err), 0, "%s", err.message);
  cr_assert_str_eq(r.group, "unit.crdkit.io");
  cr_assert_str_eq(r.version, "v1");
  cr_assert_str_eq(r.resource, "gadgets");
  cr_assert_str_eq(r.kind, "Gadget");
  cr_assert(r.namespaced);
  cr_assert_eq(ck_crd_resource(&gadget, "v1beta1", &r, &err), 0);
  cr_assert_str_eq(r.version, "v1beta1");
  cr_assert_eq(ck_crd_resource(&gadget, "v9", &r, &err), CK_EINVAL);
  cr_assert_not_null(strstr(err.message, "v9"), "%s", err.message);
  char *name = ck_crd_name(&gadget);
  cr_assert_str_eq(name, "gadgets.unit.crdkit.io");
  free(name);
}

/* ---- malformed tables ------------------------------------------------------ */

static void expect_bad(const ck_crd_t *crd, const char *needle) {
  ck_error_t err = {0};
  json_t *o = NULL;
  int rc = ck_crd_to_json(crd, &o, &err);
  cr_assert_eq(rc, CK_EINVAL, "table should be refused (%s)", needle);
  cr_assert_null(o);
  cr_assert_not_null(strstr(err.message, needle), "message \"%s\" lacks \"%s\"", err.message,
                     needle);
  cr_assert_eq(ck_crd_check(crd, &err), CK_EINVAL);
}

/* One version whose spec has the given fields. */
#define ONE_VERSION(fieldtab)                                                                      \
  (const ck_crd_version_t[]) {                                                                     \
    {.name = "v1", .served = true, .storage = true,                                                \
     .spec = &(const ck_crd_field_t){.description = "S.", .fields = (fieldtab)}},                  \
        {0}                                                                                        \
  }
#define TABLE(fieldtab)                                                                            \
  (&(const ck_crd_t){.group = "bad.crdkit.io", .kind = "Bad", .plural = "bads",                   \
                     .versions = ONE_VERSION(fieldtab)})
#define FIELDS(...) ((const ck_crd_field_t[]){__VA_ARGS__, {0}})

CK_TEST(crd, malformed_tables) {
  expect_bad(&(const ck_crd_t){.group = "bad.crdkit.io", .plural = "bads",
                               .versions = ONE_VERSION(NULL)},
             "kind missing");
  expect_bad(&(const ck_crd_t){.group = "nodot", .kind = "Bad", .plural = "bads",
                               .versions = ONE_VERSION(NULL)},
             "group");
  expect_bad(&(const ck_crd_t){.group = "bad.crdkit.io", .kind = "Bad", .plural = "Bads",
                               .versions = ONE_VERSION(NULL)},
             "plural");
  expect_bad(&(const ck_crd_t){.group = "bad.crdkit.io", .kind = "Bad", .plural = "bads"},
             "at least one version");
  expect_bad(&(const ck_crd_t){.group = "bad.crdkit.io", .kind = "Bad", .plural = "bads",
                               .versions = (const ck_crd_version_t[]){
                                   {.name = "v1", .served = true, .storage = true},
                                   {.name = "v2", .served = true, .storage = true},
                                   {0}}},
             "exactly one version must be the storage version (found 2)");
  expect_bad(&(const ck_crd_t){.group = "bad.crdkit.io", .kind = "Bad", .plural = "bads",
                               .versions = (const ck_crd_version_t[]){
                                   {.name = "v1", .served = true}, {0}}},
             "(found 0)");
  expect_bad(&(const ck_crd_t){.group = "bad.crdkit.io", .kind = "Bad", .plural = "bads",
                               .versions = (const ck_crd_version_t[]){
                                   {.name = "v1", .storage = true}, {.name = "v1"}, {0}}},
             "version \"v1\" declared twice");
  expect_bad(TABLE(FIELDS({.name = "a", .type = CK_CRD_STRING, .description = "x"},
                          {.name = "a", .type = CK_CRD_INTEGER, .description = "y"})),
             "Bad v1 spec.a: duplicate field name");
  expect_bad(TABLE(FIELDS({.name = "n", .type = CK_CRD_INTEGER, .description = "x",
                           .default_json = "\"five\""})),
             "Bad v1 spec.n: default \"five\"");
  expect_bad(TABLE(FIELDS({.name = "n", .type = CK_CRD_INTEGER, .description = "x",
                           .default_json = "{oops"})),
             "spec.n: default is not JSON");
  expect_bad(TABLE(FIELDS({.name = "c", .type = CK_CRD_STRING, .description = "x",
                           .enum_values = CK_CRD_LIST("a"), .default_json = "\"b\""})),
             "spec.c: default \"b\": Unsupported value");
  expect_bad(TABLE(FIELDS({.name = "n", .type = CK_CRD_INTEGER, .description = "x",
                           .minimum = CK_CRD_NUM(5), .maximum = CK_CRD_NUM(1)})),
             "spec.n: minimum 5 > maximum 1");
  expect_bad(TABLE(FIELDS({.name = "s", .type = CK_CRD_STRING, .description = "x",
                           .min_length = CK_CRD_INT(3), .max_length = CK_CRD_INT(2)})),
             "spec.s: minLength 3 > maxLength 2");
  expect_bad(TABLE(FIELDS({.name = "l", .description = "x", .min_items = CK_CRD_INT(3),
                           .max_items = CK_CRD_INT(2),
                           .items = &(const ck_crd_field_t){.type = CK_CRD_STRING,
                                                            .description = "i"}})),
             "spec.l: minItems 3 > maxItems 2");
  expect_bad(TABLE(FIELDS({.name = "s", .type = CK_CRD_STRING, .description = "x",
                           .maximum = CK_CRD_NUM(3)})),
             "spec.s: minimum/maximum need an integer or number field");
  expect_bad(TABLE(FIELDS({.name = "s", .type = CK_CRD_STRING, .description = "x",
                           .pattern = "a(b"})),
             "spec.s: pattern 'a(b' cannot be compiled");
  expect_bad(TABLE(FIELDS({.name = "n", .type = CK_CRD_INTEGER, .description = "x",
                           .enum_values = CK_CRD_LIST("1", "two")})),
             "spec.n: enum value \"two\" is not of type integer");
  expect_bad(TABLE(FIELDS({.name = "t", .description = "no type"})), "spec.t: type missing");
  expect_bad(TABLE(FIELDS({.name = "t", .type = CK_CRD_STRING})), "spec.t: description missing");
  expect_bad(TABLE(FIELDS({.name = "m", .type = CK_CRD_MAP, .description = "x"})),
             "spec.m: map needs .items");
  expect_bad(TABLE(FIELDS({.name = "l", .description = "x", .list_type = CK_CRD_LIST_MAP,
                           .list_map_keys = CK_CRD_LIST("id"),
                           .items = &(const ck_crd_field_t){
                               .description = "i",
                               .fields = FIELDS({.name = "name", .type = CK_CRD_STRING,
                                                 .description = "n", .required = true})}})),
             "spec.l: list map key \"id\" is not a field of the items");
  expect_bad(TABLE(FIELDS({.name = "l", .description = "x", .list_type = CK_CRD_LIST_MAP,
                           .list_map_keys = CK_CRD_LIST("name"),
                           .items = &(const ck_crd_field_t){
                               .description = "i",
                               .fields = FIELDS({.name = "name", .type = CK_CRD_STRING,
                                                 .description = "n"})}})),
             "must be required or have a default");
  expect_bad(TABLE(FIELDS({.name = "l", .description = "x", .list_type = CK_CRD_LIST_SET,
                           .items = &(const ck_crd_field_t){
                               .description = "i",
                               .fields = FIELDS({.name = "a", .type = CK_CRD_STRING,
                                                 .description = "n"})}})),
             "spec.l: a set needs scalar items");
  /* Deep paths are named in full. */
  expect_bad(TABLE(FIELDS({.name = "outer", .description = "x",
                           .items = &(const ck_crd_field_t){
                               .description = "i",
                               .fields = FIELDS({.name = "deep", .type = CK_CRD_INTEGER,
                                                 .description = "d",
                                                 .default_json = "true"})}})),
             "Bad v1 spec.outer[].deep: default true");
  expect_bad(TABLE(FIELDS({.name = "o", .description = "x",
                           .fields = FIELDS({.name = "a", .type = CK_CRD_STRING,
                                             .description = "a"}),
                           .rules = (const ck_crd_rule_t[]){{.rule = "true", .reason = "Nope"},
                                                            {0}}})),
             "reason \"Nope\"");
  expect_bad(&(const ck_crd_t){.group = "bad.crdkit.io", .kind = "Bad", .plural = "bads",
                               .versions = (const ck_crd_version_t[]){
                                   {.name = "v1", .served = true, .storage = true,
                                    .columns = (const ck_crd_column_t[]){
                                        {.name = "X", .type = "text", .json_path = ".spec.x"},
                                        {0}}},
                                   {0}}},
             "printer column \"X\": type");
  expect_bad(&(const ck_crd_t){.group = "bad.crdkit.io", .kind = "Bad", .plural = "bads",
                               .versions = (const ck_crd_version_t[]){
                                   {.name = "v1", .served = true, .storage = true,
                                    .scale = &(const ck_crd_scale_t){
                                        .spec_replicas_path = "spec.replicas",
                                        .status_replicas_path = ".status.replicas"}},
                                   {0}}},
             "specReplicasPath");
  ck_error_t err = {0};
  cr_assert_eq(ck_crd_check(&gadget, &err), 0, "%s", err.message);
}

/* ---- defaulting and validation --------------------------------------------- */

CK_TEST(crd, defaults_like_the_apiserver) {
  json_t *obj = cktest_json("{\"spec\":{\"size\":3,\"color\":null,"
                            "\"parts\":[{\"name\":\"a\"},{\"name\":\"b\",\"count\":7}]}}");
  ck_error_t err = {0};
  cr_assert_eq(ck_crd_default(&gadget, NULL, obj, &err), 0, "%s", err.message);
  /* null of a non-nullable field is replaced; an object default gets its
   * own defaults; array items are defaulted one by one. */
  cr_assert(json_eq_text(json_object_get(obj, "spec"),
                         "{\"size\":3,\"color\":\"red\",\"parts\":[{\"name\":\"a\",\"count\":1},"
                         "{\"name\":\"b\",\"count\":7}],\"options\":{\"verbose\":false}}"),
            "%s", json_dumps(obj, JSON_COMPACT));
  /* No spec at all: nothing to default into (spec has no default). */
  json_t *empty = cktest_json("{}");
  cr_assert_eq(ck_crd_default(&gadget, NULL, empty, &err), 0);
  cr_assert_eq(json_object_size(empty), 0);
  json_decref(empty);
  json_decref(obj);
}

static bool has_error(const ck_crd_errors_t *e, const char *field, const char *type,
                      const char *msg_part) {
  for (size_t i = 0; i < e->count; i++)
    if (strcmp(e->items[i].field, field) == 0 && strcmp(e->items[i].type, type) == 0 &&
        strstr(e->items[i].message, msg_part))
      return true;
  return false;
}

static char *dump_errors(const ck_crd_errors_t *e) {
  size_t n = 1;
  for (size_t i = 0; i < e->count; i++)
    n += strlen(e->items[i].field) + strlen(e->items[i].message) + 8;
  char *s = calloc(1, n);
  for (size_t i = 0; i < e->count; i++) {
    strcat(s, e->items[i].field);
    strcat(s, ": ");
    strcat(s, e->items[i].message);
    strcat(s, "\n");
  }
  return s;
}

CK_TEST(crd, validates_locally) {
  ck_error_t err = {0};
  ck_crd_errors_t errs = {0};
  json_t *ok = cktest_json("{\"spec\":{\"size\":3,\"id\":\"123-abc\",\"tags\":[\"a\",\"b\"],"
                           "\"parts\":[{\"name\":\"a-1\"}],\"labels\":{\"x\":\"y\"},\"port\":"
                           "\"http\",\"note\":null,\"ratio\":1.25,\"extra\":{\"any\":[1]}}}");
  cr_assert_eq(ck_crd_validate(&gadget, NULL, ok, &errs, &err), 0, "%s", err.message);
  cr_assert_eq(errs.count, 0);
  json_decref(ok);

  json_t *bad = cktest_json(
      "{\"spec\":{\"size\":11,\"color\":\"green\",\"ratio\":1.5,\"id\":\"12-x\","
      "\"tags\":[\"a\",\"b\",\"a\",\"c\"],\"parts\":[{\"name\":\"Bad\",\"count\":0},"
      "{\"count\":2},{\"name\":\"Bad\"}],\"labels\":{\"x\":3},\"port\":1.5,"
      "\"options\":{\"verbose\":\"yes\"}},\"status\":{\"ready\":1}}");
  int rc = ck_crd_validate(&gadget, NULL, bad, &errs, &err);
  cr_assert_eq(rc, CK_EINVAL);
  char *all = dump_errors(&errs);
  cr_assert(has_error(&errs, "spec.size", "FieldValueInvalid",
                      "should be less than or equal to 10"), "%s", all);
  cr_assert(has_error(&errs, "spec.color", "FieldValueNotSupported",
                      "supported values: \"red\", \"blue\""), "%s", all);
  cr_assert(has_error(&errs, "spec.ratio", "FieldValueInvalid", "should be less than 1.5"), "%s",
            all);
  cr_assert(has_error(&errs, "spec.id", "FieldValueInvalid", "should match"), "%s", all);
  cr_assert(has_error(&errs, "spec.tags", "FieldValueTooMany", "must have at most 3 items"),
            "%s", all);
  cr_assert(has_error(&errs, "spec.tags[2]", "FieldValueDuplicate", "\"a\""), "%s", all);
  cr_assert(has_error(&errs, "spec.parts[0].name", "FieldValueInvalid", "should match"), "%s",
            all);
  cr_assert(has_error(&errs, "spec.parts[0].count", "FieldValueInvalid",
                      "should be greater than or equal to 1"), "%s", all);
  cr_assert(has_error(&errs, "spec.parts[1].name", "FieldValueRequired", "Required value"), "%s",
            all);
  cr_assert(has_error(&errs, "spec.parts[2]", "FieldValueDuplicate", "[\"Bad\"]"), "%s", all);
  cr_assert(has_error(&errs, "spec.labels.x", "FieldValueTypeInvalid", "must be of type string"),
            "%s", all);
  cr_assert(has_error(&errs, "spec.port", "FieldValueTypeInvalid", "integer or string"), "%s",
            all);
  cr_assert(has_error(&errs, "spec.options.verbose", "FieldValueTypeInvalid", "boolean"), "%s",
            all);
  cr_assert(has_error(&errs, "status.ready", "FieldValueTypeInvalid", "boolean"), "%s", all);
  cr_assert_not_null(strstr(err.message, "Gadget v1: spec.size: Invalid value: 11"), "%s", err.message);
  free(all);
  ck_crd_errors_free(&errs);
  cr_assert_eq(errs.count, 0);
  json_decref(bad);

  /* spec is required at the root; errs may be NULL for a yes/no answer. */
  json_t *nospec = cktest_json("{\"status\":{}}");
  cr_assert_eq(ck_crd_validate(&gadget, NULL, nospec, NULL, &err), CK_EINVAL);
  cr_assert_not_null(strstr(err.message, "spec: Required value"), "%s", err.message);
  json_decref(nospec);

  /* Lengths count characters, as the apiserver does, not bytes. */
  const ck_crd_t lenc = {
      .group = "len.crdkit.io", .kind = "Len", .plural = "lens",
      .versions = ONE_VERSION(FIELDS({.name = "s", .type = CK_CRD_STRING, .description = "s",
                                      .max_length = CK_CRD_INT(4)}))};
  json_t *cafe = cktest_json("{\"spec\":{\"s\":\"caf\\u00e9\"}}");
  cr_assert_eq(ck_crd_validate(&lenc, NULL, cafe, NULL, &err), 0, "%s", err.message);
  json_decref(cafe);
  json_t *cafes = cktest_json("{\"spec\":{\"s\":\"caf\\u00e9s\"}}");
  cr_assert_eq(ck_crd_validate(&lenc, NULL, cafes, NULL, &err), CK_EINVAL);
  cr_assert_not_null(strstr(err.message, "spec.s: Too long"), "%s", err.message);
  json_decref(cafes);
}

CK_TEST(crd, pattern_classes) {
  /* \d and \w are rewritten for POSIX ERE, also inside brackets. */
  const ck_crd_t pat = {
      .group = "pat.crdkit.io", .kind = "Pat", .plural = "pats",
      .versions = ONE_VERSION(FIELDS({.name = "s", .type = CK_CRD_STRING, .description = "s",
                                      .pattern = "^[\\d.]+\\s\\w+$"}))};
  ck_error_t err = {0};
  json_t *good = cktest_json("{\"spec\":{\"s\":\"1.2 ab_c\"}}");
  cr_assert_eq(ck_crd_validate(&pat, NULL, good, NULL, &err), 0, "%s", err.message);
  json_decref(good);
  json_t *badv = cktest_json("{\"spec\":{\"s\":\"1a.2 ab\"}}");
  cr_assert_eq(ck_crd_validate(&pat, NULL, badv, NULL, &err), CK_EINVAL);
  json_decref(badv);
}
