/* CRD tables against the real apiserver: the generated CRDs are accepted
 * and stored as sent (JSON and YAML via kubectl apply), defaults and
 * schema validation match the local ones, CEL rules are enforced by the
 * server, printer columns and descriptions reach kubectl, the status
 * subresource works, updates and name conflicts are handled by install. */
#include "cktest.h"

#include "crdkit/crd.h"
#include "crdkit/objects.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const ck_crd_field_t part_fields[] = {
    {.name = "name", .type = CK_CRD_STRING, .description = "Part name.", .required = true,
     .pattern = "^[a-z][a-z0-9-]*$", .max_length = CK_CRD_INT(20)},
    {.name = "count", .type = CK_CRD_INTEGER, .description = "How many of this part.",
     .default_json = "1", .minimum = CK_CRD_NUM(1), .maximum = CK_CRD_NUM(100)},
    {0},
};

static const ck_crd_field_t spec_fields[] = {
    {.name = "size", .type = CK_CRD_INTEGER, .description = "Number of parts in the widget.",
     .required = true, .minimum = CK_CRD_NUM(1), .maximum = CK_CRD_NUM(10)},
    {.name = "color", .type = CK_CRD_STRING, .description = "Paint color.",
     .default_json = "\"red\"", .enum_values = CK_CRD_LIST("red", "blue")},
    {.name = "tags", .type = CK_CRD_ARRAY, .description = "Free tags.",
     .list_type = CK_CRD_LIST_SET, .max_items = CK_CRD_INT(3),
     .items = &(const ck_crd_field_t){.type = CK_CRD_STRING, .description = "A tag."}},
    {.name = "parts", .description = "Parts, by name.", .list_type = CK_CRD_LIST_MAP,
     .list_map_keys = CK_CRD_LIST("name"),
     .items = &(const ck_crd_field_t){.description = "A part.", .fields = part_fields}},
    {.name = "labels", .type = CK_CRD_MAP, .description = "Labels: name to value.",
     .items = &(const ck_crd_field_t){.type = CK_CRD_STRING, .description = "A value.",
                                      .max_length = CK_CRD_INT(8)}},
    {.name = "options", .description = "Options.", .default_json = "{}",
     .fields = (const ck_crd_field_t[]){
         {.name = "verbose", .type = CK_CRD_BOOLEAN, .description = "Talk more.",
          .default_json = "false"},
         {0}}},
    {.name = "port", .type = CK_CRD_INT_OR_STRING, .description = "Port number or name."},
    {.name = "extra", .type = CK_CRD_OBJECT, .description = "Kept as given.",
     .preserve_unknown_fields = true},
    {0},
};

static const ck_crd_field_t status_fields[] = {
    {.name = "ready", .type = CK_CRD_BOOLEAN, .description = "All parts are there."},
    {.name = "phase", .type = CK_CRD_STRING, .description = "Lifecycle phase."},
    {0},
};

static const ck_crd_version_t widget_versions[] = {
    {.name = "v1",
     .served = true,
     .storage = true,
     .description = "A widget made of parts.",
     .spec = &(const ck_crd_field_t){
         .description = "Desired state of the widget.", .required = true, .fields = spec_fields,
         .rules = (const ck_crd_rule_t[]){{.rule = "self.size >= 2 || !has(self.tags)",
                                           .message = "tags need size >= 2",
                                           .field_path = ".tags"},
                                          {0}}},
     .status = &(const ck_crd_field_t){.description = "Observed state.", .fields = status_fields},
     .columns = (const ck_crd_column_t[]){
         {.name = "Size", .type = "integer", .json_path = ".spec.size", .description = "Parts."},
         {.name = "Color", .type = "string", .json_path = ".spec.color"},
         {.name = "Ready", .type = "boolean", .json_path = ".status.ready", .priority = 1},
         {0}},
     .status_subresource = true},
    {0},
};

static const char *const widget_short[] = {"wdg", NULL};
static const char *const widget_categories[] = {"crdkit", NULL};
static const char *const part_of_label[] = {"app.kubernetes.io/part-of", "crdkit", NULL};

/* A widget table in a fresh group ("t<random>.crdkit.io"): CRDs are
 * cluster-wide, so every test gets its own. */
static ck_crd_t widget_crd(char *group, size_t n) {
  snprintf(group, n, "t%08x.crdkit.io", cktest_rand32());
  return (ck_crd_t){.group = group,
                    .kind = "Widget",
                    .plural = "widgets",
                    .short_names = widget_short,
                    .categories = widget_categories,
                    .versions = widget_versions};
}

static void crd_delete(ck_client_t *c, const ck_crd_t *crd) {
  char *name = ck_crd_name(crd);
  ck_error_t err = {0};
  int rc = ck_object_delete(c, &ck_res_crds, NULL, name, NULL, NULL, &err);
  cr_assert(rc == 0 || ck_error_is_not_found(&err), "delete CRD %s: %s", name, err.message);
  free(name);
}

static json_t *crd_get(ck_client_t *c, const ck_crd_t *crd) {
  char *name = ck_crd_name(crd);
  json_t *out = NULL;
  ck_error_t err = {0};
  cr_assert_eq(ck_object_get(c, &ck_res_crds, NULL, name, NULL, &out, &err), 0, "get %s: %s",
               name, err.message);
  free(name);
  return out;
}

/* The stored spec equals the generated one: nothing was dropped or
 * defaulted differently by the server. */
static void assert_stored_as_sent(ck_client_t *c, const ck_crd_t *crd) {
  json_t *want = NULL;
  ck_error_t err = {0};
  cr_assert_eq(ck_crd_to_json(crd, &want, &err), 0, "%s", err.message);
  json_t *got = crd_get(c, crd);
  json_t *ws = json_object_get(want, "spec"), *gs = json_object_get(got, "spec");
  if (!json_equal(ws, gs)) {
    char *a = json_dumps(ws, JSON_SORT_KEYS | JSON_INDENT(1));
    char *b = json_dumps(gs, JSON_SORT_KEYS | JSON_INDENT(1));
    cr_assert_fail("stored spec differs\nsent:\n%s\nstored:\n%s", a, b);
  }
  json_decref(want);
  json_decref(got);
}

static json_t *widget(const ck_crd_t *crd, const char *name, const char *spec_json) {
  char *text = cktest_asprintf("{\"apiVersion\":\"%s/v1\",\"kind\":\"Widget\",\"metadata\":"
                               "{\"name\":\"%s\"},\"spec\":%s}",
                               crd->group, name, spec_json);
  json_t *o = cktest_json(text);
  free(text);
  return o;
}

/* Create; right after Established the storage may lag a moment (404). */
static int create_widget(ck_client_t *c, const ck_resource_t *res, const char *ns, json_t *obj,
                         json_t **out, ck_error_t *err) {
  double deadline = cktest_now_s() + 10;
  for (;;) {
    int rc = ck_object_create(c, res, ns, obj, NULL, out, err);
    if (!(rc == CK_EAPI && ck_error_is_not_found(err)) || cktest_now_s() > deadline)
      return rc;
    cktest_sleep_ms(100);
  }
}

static bool has_cause(const ck_error_t *err, const char *field, const char *msg_part) {
  for (int i = 0; i < err->ncauses; i++)
    if (strcmp(err->causes[i].field, field) == 0 && strstr(err->causes[i].message, msg_part))
      return true;
  return false;
}

static char *causes_text(const ck_error_t *err) {
  char *s = cktest_asprintf("%s", err->message);
  for (int i = 0; i < err->ncauses; i++) {
    char *t = cktest_asprintf("%s\n  %s: %s", s, err->causes[i].field, err->causes[i].message);
    free(s);
    s = t;
  }
  return s;
}

CK_TEST_OPTS(crd, install_default_validate, .timeout = 180) {
  ck_client_t *admin = cktest_client("admin");
  char group[64];
  ck_crd_t crd = widget_crd(group, sizeof group);
  ck_error_t err = {0};
  double t0 = cktest_now_s();
  int rc = ck_crd_install(admin, &crd, 60000, &err);
  cr_assert_eq(rc, 0, "install: %s", err.message);
  cr_log_info("install + Established: %.0f ms", (cktest_now_s() - t0) * 1000);
  json_t *got = crd_get(admin, &crd);
  cr_assert(ck_condition_is_true(json_object_get(got, "status"), "Established"));
  cr_assert(ck_condition_is_true(json_object_get(got, "status"), "NamesAccepted"));
  json_decref(got);
  assert_stored_as_sent(admin, &crd);

  ck_resource_t res;
  cr_assert_eq(ck_crd_resource(&crd, NULL, &res, &err), 0, "%s", err.message);
  char *ns = cktest_ns_create(admin, "crd");

  /* Defaults: the server's result equals the local defaulting. */
  json_t *w = widget(&crd, "w1", "{\"size\":3,\"parts\":[{\"name\":\"p\"}],\"extra\":{\"k\":[1]}}");
  json_t *local = json_deep_copy(w);
  cr_assert_eq(ck_crd_default(&crd, NULL, local, &err), 0, "%s", err.message);
  cr_assert_eq(ck_crd_validate(&crd, NULL, local, NULL, &err), 0, "%s", err.message);
  json_t *created = NULL;
  rc = create_widget(admin, &res, ns, w, &created, &err);
  cr_assert_eq(rc, 0, "create: %s", err.message);
  cr_assert(json_equal(json_object_get(created, "spec"), json_object_get(local, "spec")),
            "server %s\nlocal %s", json_dumps(json_object_get(created, "spec"), JSON_COMPACT),
            json_dumps(json_object_get(local, "spec"), JSON_COMPACT));
  cr_assert_str_eq(cktest_jstr(created, "spec.color"), "red");
  json_decref(w);
  json_decref(local);

  /* Schema validation: the same fields fail locally and on the server,
   * with the schema's bounds in the server's message. */
  w = widget(&crd, "w2",
             "{\"size\":11,\"color\":\"green\",\"parts\":[{\"name\":\"Bad\"}],"
             "\"labels\":{\"a\":\"waytoolong\"}}");
  ck_crd_errors_t errs = {0};
  cr_assert_eq(ck_crd_validate(&crd, NULL, w, &errs, &err), CK_EINVAL);
  cr_assert_eq(errs.count, 4, "%s", err.message);
  rc = ck_object_create(admin, &res, ns, w, NULL, NULL, &err);
  cr_assert_eq(rc, CK_EAPI);
  cr_assert(ck_error_is_invalid(&err), "%s", err.message);
  char *all = causes_text(&err);
  cr_assert(has_cause(&err, "spec.size", "should be less than or equal to 10"), "%s", all);
  cr_assert(has_cause(&err, "spec.color", "supported values: \"red\", \"blue\""), "%s", all);
  cr_assert(has_cause(&err, "spec.parts[0].name", "should match '^[a-z][a-z0-9-]*$'"), "%s", all);
  for (size_t i = 0; i < errs.count; i++)
    cr_assert(has_cause(&err, errs.items[i].field, ""), "local %s not among server causes:\n%s",
              errs.items[i].field, all);
  free(all);
  ck_crd_errors_free(&errs);
  json_decref(w);

  /* CEL: only the server evaluates it; the rule's message and fieldPath. */
  w = widget(&crd, "w3", "{\"size\":1,\"tags\":[\"a\"]}");
  cr_assert_eq(ck_crd_validate(&crd, NULL, w, NULL, &err), 0, "CEL is not checked locally");
  rc = ck_object_create(admin, &res, ns, w, NULL, NULL, &err);
  cr_assert_eq(rc, CK_EAPI);
  all = causes_text(&err);
  cr_assert(has_cause(&err, "spec.tags", "tags need size >= 2"), "%s", all);
  free(all);
  json_decref(w);

  /* Status subresource: a status write goes through /status; status sent
   * with the main resource was dropped at create. */
  cr_assert_null(json_object_get(created, "status"));
  json_t *status = cktest_json("{\"ready\":true,\"phase\":\"Up\"}");
  json_t *after = NULL;
  rc = ck_status_update(admin, &res, created, status, &after, &err);
  cr_assert_eq(rc, 0, "status: %s", err.message);
  cr_assert(json_is_true(cktest_jpath(after, "status.ready")));
  cr_assert_eq(ck_obj_generation(after), ck_obj_generation(created),
               "a status write does not bump generation");
  json_decref(status);
  json_decref(after);
  json_decref(created);

  /* Printer columns and descriptions, as a user sees them. */
  const char *kubectl = cktest_env("CRDKIT_TEST_KUBECTL");
  const char *kc = cktest_env("KUBECONFIG");
  char *out = cktest_sh_ok("KUBECONFIG=%s %s get widgets.%s -n %s", kc, kubectl, group, ns);
  cr_assert(strstr(out, "SIZE") && strstr(out, "COLOR") && !strstr(out, "READY"), "%s", out);
  cr_assert(strstr(out, "w1") && strstr(out, "3") && strstr(out, "red"), "%s", out);
  free(out);
  out = cktest_sh_ok("KUBECONFIG=%s %s get widgets.%s -n %s -o wide", kc, kubectl, group, ns);
  cr_assert(strstr(out, "READY") && strstr(out, "true"), "priority 1 shows with -o wide: %s",
            out);
  free(out);
  out = cktest_sh_ok("KUBECONFIG=%s %s explain widgets.spec.parts --api-version=%s/v1", kc,
                     kubectl, group);
  cr_assert(strstr(out, "Parts, by name.") && strstr(out, "How many of this part."), "%s", out);
  free(out);
  out = cktest_sh_ok("KUBECONFIG=%s %s explain widgets --api-version=%s/v1", kc, kubectl, group);
  cr_assert(strstr(out, "A widget made of parts.") && strstr(out, "Desired state of the widget."),
            "%s", out);
  free(out);

  cktest_ns_delete(admin, ns);
  crd_delete(admin, &crd);
  ck_client_free(admin);
}

CK_TEST_OPTS(crd, yaml_via_kubectl_apply, .timeout = 120) {
  ck_client_t *admin = cktest_client("admin");
  char group[64];
  ck_crd_t crd = widget_crd(group, sizeof group);
  crd.scope = CK_CRD_CLUSTER;
  crd.labels = part_of_label;
  ck_error_t err = {0};
  char *yaml = NULL;
  cr_assert_eq(ck_crd_to_yaml(&crd, &yaml, &err), 0, "%s", err.message);
  char *path = cktest_tmpfile(yaml);
  char *out = cktest_sh_ok("KUBECONFIG=%s %s apply -f %s", cktest_env("KUBECONFIG"),
                           cktest_env("CRDKIT_TEST_KUBECTL"), path);
  cr_assert(strstr(out, "created"), "%s", out);
  free(out);
  char *name = ck_crd_name(&crd);
  cr_assert_eq(ck_crd_wait_established(admin, name, 30000, &err), 0, "%s", err.message);
  assert_stored_as_sent(admin, &crd);
  json_t *got = crd_get(admin, &crd);
  cr_assert_str_eq(cktest_jstr(got, "spec.scope"), "Cluster");
  cr_assert_str_eq(json_string_value(json_object_get(cktest_jpath(got, "metadata.labels"),
                                                     "app.kubernetes.io/part-of")),
                   "crdkit");

  /* Installing the same table again writes nothing. */
  cr_assert_eq(ck_crd_install(admin, &crd, 30000, &err), 0, "%s", err.message);
  json_t *again = crd_get(admin, &crd);
  cr_assert_str_eq(ck_obj_resource_version(again), ck_obj_resource_version(got));
  json_decref(again);
  json_decref(got);

  crd_delete(admin, &crd);
  unlink(path);
  free(path);
  free(name);
  free(yaml);
  ck_client_free(admin);
}

CK_TEST_OPTS(crd, update_adds_field, .timeout = 120) {
  ck_client_t *admin = cktest_client("admin");
  char group[64];
  snprintf(group, sizeof group, "t%08x.crdkit.io", cktest_rand32());
  const ck_crd_field_t v1_fields[] = {
      {.name = "size", .type = CK_CRD_INTEGER, .description = "Size."}, {0}};
  const ck_crd_field_t v2_fields[] = {
      {.name = "size", .type = CK_CRD_INTEGER, .description = "Size."},
      {.name = "shape", .type = CK_CRD_STRING, .description = "Shape.", .default_json = "\"box\""},
      {0}};
  const ck_crd_version_t vs1[] = {
      {.name = "v1", .served = true, .storage = true,
       .spec = &(const ck_crd_field_t){.description = "S.", .fields = v1_fields}},
      {0}};
  const ck_crd_version_t vs2[] = {
      {.name = "v1", .served = true, .storage = true,
       .spec = &(const ck_crd_field_t){.description = "S.", .fields = v2_fields}},
      {0}};
  ck_crd_t crd = {.group = group, .kind = "Thing", .plural = "things", .versions = vs1};
  ck_error_t err = {0};
  cr_assert_eq(ck_crd_install(admin, &crd, 60000, &err), 0, "%s", err.message);
  json_t *before = crd_get(admin, &crd);
  ck_resource_t res;
  cr_assert_eq(ck_crd_resource(&crd, NULL, &res, &err), 0);
  char *ns = cktest_ns_create(admin, "crd-upd");
  char *text = cktest_asprintf("{\"apiVersion\":\"%s/v1\",\"kind\":\"Thing\",\"metadata\":"
                               "{\"name\":\"a\"},\"spec\":{\"size\":1,\"shape\":\"ball\"}}",
                               group);
  json_t *obj = cktest_json(text);
  free(text);
  json_t *out = NULL;
  cr_assert_eq(create_widget(admin, &res, ns, obj, &out, &err), 0, "%s", err.message);
  cr_assert_null(cktest_jpath(out, "spec.shape"), "unknown field pruned before the update");
  json_decref(out);

  crd.versions = vs2;
  cr_assert_eq(ck_crd_install(admin, &crd, 60000, &err), 0, "update: %s", err.message);
  json_t *after = crd_get(admin, &crd);
  cr_assert_str_neq(ck_obj_resource_version(after), ck_obj_resource_version(before));
  cr_assert_str_eq(cktest_jstr(after, "metadata.uid"), cktest_jstr(before, "metadata.uid"),
                   "updated in place, not recreated");
  cr_assert(ck_condition_is_true(json_object_get(after, "status"), "Established"));
  assert_stored_as_sent(admin, &crd);

  /* The new field is kept and defaulted. The apiserver reloads the
   * schema asynchronously after the update: allow it a few seconds. */
  json_object_set_new(json_object_get(obj, "metadata"), "name", json_string("b"));
  double t0 = cktest_now_s();
  bool kept = false;
  for (int i = 0; !kept && cktest_now_s() - t0 < 10; i++) {
    char nm[16];
    snprintf(nm, sizeof nm, "b%d", i);
    json_object_set_new(json_object_get(obj, "metadata"), "name", json_string(nm));
    cr_assert_eq(ck_object_create(admin, &res, ns, obj, NULL, &out, &err), 0, "%s", err.message);
    kept = cktest_jpath(out, "spec.shape") != NULL;
    if (kept)
      cr_assert_str_eq(cktest_jstr(out, "spec.shape"), "ball");
    json_decref(out);
    if (!kept)
      cktest_sleep_ms(100);
  }
  cr_assert(kept, "new field still pruned 10 s after the update");
  cr_log_info("new schema served %.0f ms after install returned", (cktest_now_s() - t0) * 1000);
  /* Defaults of the new field apply to the old object on read. */
  cr_assert_eq(ck_object_get(admin, &res, ns, "a", NULL, &out, &err), 0, "%s", err.message);
  cr_assert_str_eq(cktest_jstr(out, "spec.shape"), "box");
  json_decref(out);

  json_decref(obj);
  json_decref(before);
  json_decref(after);
  cktest_ns_delete(admin, ns);
  crd_delete(admin, &crd);
  ck_client_free(admin);
}

CK_TEST_OPTS(crd, failures_name_the_crd, .timeout = 120) {
  ck_client_t *admin = cktest_client("admin");
  char group[64];
  ck_crd_t a = widget_crd(group, sizeof group);
  ck_error_t err = {0};
  cr_assert_eq(ck_crd_install(admin, &a, 60000, &err), 0, "%s", err.message);

  /* Same kind under another plural in the group: names refused, at once. */
  ck_crd_t b = a;
  b.plural = "widgetz";
  b.short_names = NULL;
  double t0 = cktest_now_s();
  int rc = ck_crd_install(admin, &b, 30000, &err);
  cr_assert_eq(rc, CK_EINVAL, "%s", err.message);
  char *bname = ck_crd_name(&b);
  char *prefix = cktest_asprintf("CRD %s: NamesAccepted=False", bname);
  cr_assert(strncmp(err.message, prefix, strlen(prefix)) == 0, "%s", err.message);
  cr_assert_lt(cktest_now_s() - t0, 20, "a name conflict is reported without the full wait");
  free(prefix);
  crd_delete(admin, &b);

  /* A CEL rule that does not compile: the server's Invalid, named. */
  const ck_crd_version_t bad_versions[] = {
      {.name = "v1", .served = true, .storage = true,
       .spec = &(const ck_crd_field_t){
           .description = "S.",
           .fields = (const ck_crd_field_t[]){
               {.name = "n", .type = CK_CRD_INTEGER, .description = "N."}, {0}},
           .rules = (const ck_crd_rule_t[]){{.rule = "self.n >", .message = "m"}, {0}}}},
      {0}};
  ck_crd_t c = {.group = group, .kind = "Broken", .plural = "brokens", .versions = bad_versions};
  rc = ck_crd_install(admin, &c, 30000, &err);
  cr_assert_eq(rc, CK_EAPI, "%s", err.message);
  cr_assert(ck_error_is_invalid(&err), "%s", err.message);
  char *cname = ck_crd_name(&c);
  char *cprefix = cktest_asprintf("CRD %s: ", cname);
  cr_assert(strncmp(err.message, cprefix, strlen(cprefix)) == 0, "%s", err.message);
  cr_assert(strstr(err.message, "x-kubernetes-validations"), "%s", err.message);
  free(cprefix);
  free(cname);
  free(bname);

  /* A table the library refuses never reaches the server. */
  ck_crd_t nokind = a;
  nokind.kind = NULL;
  cr_assert_eq(ck_crd_install(admin, &nokind, 1000, &err), CK_EINVAL);
  cr_assert(strstr(err.message, "kind missing"), "%s", err.message);

  crd_delete(admin, &a);
  ck_client_free(admin);
}
