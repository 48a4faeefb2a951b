/* The harness end to end: the C client creates, reads and deletes a
 * ConfigMap on the real apiserver over TLS with the admin client
 * certificate, and the ordinary user is refused with 403. */
#include "cktest.h"

CK_TEST(smoke, configmap_roundtrip_and_forbidden) {
  ck_client_t *admin = cktest_client("admin");
  ck_client_t *user = cktest_client("user");
  char *ns = cktest_ns_create(admin, "smoke");
  ck_error_t err = {0};

  json_t *cm = cktest_configmap("smoke", "greeting", "hello");
  json_t *created = NULL;
  int rc = ck_object_create(admin, &ck_res_configmaps, ns, cm, NULL, &created, &err);
  cr_assert_eq(rc, 0, "create: %s", err.message);
  cr_assert_str_eq(json_string_value(json_object_get(json_object_get(created, "metadata"), "name")),
                   "smoke");
  json_decref(created);

  json_t *got = NULL;
  rc = ck_object_get(admin, &ck_res_configmaps, ns, "smoke", NULL, &got, &err);
  cr_assert_eq(rc, 0, "get: %s", err.message);
  cr_assert_str_eq(json_string_value(json_object_get(json_object_get(got, "data"), "greeting")),
                   "hello");
  json_decref(got);

  /* The user without rights: 403 Forbidden, decoded. */
  rc = ck_object_get(user, &ck_res_configmaps, ns, "smoke", NULL, &got, &err);
  cr_assert_eq(rc, CK_EAPI);
  cr_assert_eq(err.http_status, 403);
  cr_assert(ck_error_is_forbidden(&err), "reason %s", ck_reason_name(err.reason));
  cr_assert(strstr(err.message, "crdkit-user") != NULL, "message names the user: %s", err.message);
  rc = ck_object_create(user, &ck_res_configmaps, ns, cm, NULL, NULL, &err);
  cr_assert(ck_error_is_forbidden(&err));

  rc = ck_object_delete(admin, &ck_res_configmaps, ns, "smoke", NULL, NULL, &err);
  cr_assert_eq(rc, 0, "delete: %s", err.message);
  rc = ck_object_get(admin, &ck_res_configmaps, ns, "smoke", NULL, &got, &err);
  cr_assert(ck_error_is_not_found(&err), "after delete: rc %d %s", rc, err.message);
  cr_assert_eq(err.http_status, 404);

  json_decref(cm);
  cktest_ns_delete(admin, ns);
  ck_client_free(user);
  ck_client_free(admin);
}
