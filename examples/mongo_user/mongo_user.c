/* mongo-user: MongoDB users from MongoUserResource objects (seed 002).
 *
 * The schema is the seed's (username, password, roles default []) with one
 * change: the password may come from a Secret instead (passwordSecretRef),
 * because a password in a spec is readable by everyone who can read the
 * object. Exactly one of the two is required (a CEL rule), so every object
 * written for the seed's CRD is still valid; a plain password gets a
 * Warning Event. The user is created or updated on create, update and at
 * start-up, re-checked every --recheck-seconds (a rotated Secret, a user
 * dropped by hand), renamed users are dropped under their old name, and a
 * deleted object drops its user (a finalizer: also when the delete happened
 * while the operator was down).
 *
 *   example-mongo-user --mongo-uri mongodb://admin:...@host/?authSource=admin
 */
#include "mongo.h"

#include <crdkit/objects.h>
#include <crdkit/operator.h>
#include <stdio.h>
#include <string.h>

static const ck_crd_field_t secret_ref_fields[] = {
    {.name = "name", .type = CK_CRD_STRING, .required = true,
     .description = "Secret in the object's namespace.", .max_length = CK_CRD_INT(253)},
    {.name = "key", .type = CK_CRD_STRING, .description = "Key in the Secret's data.",
     .default_json = "\"password\"", .max_length = CK_CRD_INT(253)},
    {0},
};
static const ck_crd_field_t spec_fields[] = {
    {.name = "username", .type = CK_CRD_STRING, .required = true, .description = "The user.",
     .min_length = CK_CRD_INT(1), .max_length = CK_CRD_INT(128)},
    {.name = "password", .type = CK_CRD_STRING, .max_length = CK_CRD_INT(1024),
     .description = "The password, readable by whoever can read this object: prefer "
                    "passwordSecretRef."},
    {.name = "passwordSecretRef", .type = CK_CRD_OBJECT, .fields = secret_ref_fields,
     .description = "Where the password is: a Secret and its key."},
    {.name = "roles", .type = CK_CRD_ARRAY, .description = "List of User roles",
     .default_json = "[]", .max_items = CK_CRD_INT(64),
     .items = &(const ck_crd_field_t){.type = CK_CRD_STRING, .max_length = CK_CRD_INT(128),
                                      .description = "ROLE, or ROLE@DATABASE."}},
    {0},
};
static const ck_crd_field_t status_fields[] = {
    CK_HANDLER_STATUS_FIELDS,
    {.name = "user", .type = CK_CRD_STRING, .description = "The user as DATABASE.USERNAME."},
    {0},
};
static const ck_crd_t crd = {
    .group = "examples.crdkit.io",
    .kind = "MongoUserResource",
    .plural = "mongouserresources",
    .versions = (const ck_crd_version_t[]){
        {.name = "v1", .served = true, .storage = true, .status_subresource = true,
         .description = "A MongoDB user.",
         .spec = &(const ck_crd_field_t){
             .description = "The user.", .required = true, .fields = spec_fields,
             .rules = (const ck_crd_rule_t[]){
                 {.rule = "has(self.password) != has(self.passwordSecretRef)",
                  .message = "set exactly one of password and passwordSecretRef"},
                 {0}}},
         .status = &(const ck_crd_field_t){.description = "Observed.", .fields = status_fields},
         .columns = (const ck_crd_column_t[]){
             {.name = "User", .type = "string", .json_path = ".status.user"},
             {.name = "Ready", .type = "string",
              .json_path = ".status.conditions[?(@.type==\"Ready\")].status"},
             {0}}},
        {0}},
};

static const char *uri_of(ck_handler_t *h) { return ck_args_string(ck_handler_args(h), "mongo-uri"); }
static const char *db_of(ck_handler_t *h) { return ck_args_string(ck_handler_args(h), "database"); }

/* The password (malloc'd), from the spec or the Secret; NULL after
 * setting *why. */
static char *password_of(ck_handler_t *h, const json_t *spec, char *why, size_t len) {
  const char *plain = ck_field_string(spec, "password", NULL);
  if (plain)
    return strdup(plain);
  char *pw = NULL;
  ck_error_t err = {0};
  if (ck_secret_text(ck_handler_client(h), ck_obj_namespace(ck_handler_object(h)),
                     ck_field_string(spec, "passwordSecretRef.name", ""),
                     ck_field_string(spec, "passwordSecretRef.key", "password"), &pw, &err) != 0)
    snprintf(why, len, "%s", err.message);
  return pw;
}

static ck_outcome_t ensure(ck_handler_t *h, void *ctx) {
  (void)ctx;
  const json_t *spec = ck_handler_spec(h);
  const char *user = ck_field_string(spec, "username", "");
  const char *db = db_of(h);
  char why[600] = "", msg[1024] = "";
  char *pw = password_of(h, spec, why, sizeof why);
  if (!pw)
    return ck_retry(h, "%s", why); /* the Secret may come later */
  const json_t *roles_json = ck_field(spec, "roles");
  size_t nroles = json_array_size(roles_json), i;
  const char **roles = calloc(nroles + 1, sizeof *roles);
  json_t *r;
  json_array_foreach(roles_json, i, r) {
    if (roles)
      roles[i] = json_string_value(r);
  }
  int rc = roles ? mu_user_ensure(uri_of(h), db, user, pw, roles, nroles, msg, sizeof msg) : -1;
  free(roles);
  free(pw);
  if (rc != 0)
    return ck_retry(h, "%s", msg[0] ? msg : "out of memory");
  /* A renamed user: the old one goes. */
  const char *old = ck_field_string(ck_handler_old_spec(h), "username", NULL);
  if (old && strcmp(old, user) != 0 && mu_user_drop(uri_of(h), db, old, msg, sizeof msg) != 0)
    return ck_retry(h, "dropping the old user %s: %s", old, msg);
  const char *reason = ck_handler_reason(h);
  if (ck_field(spec, "password") && (!strcmp(reason, "create") || !strcmp(reason, "update")))
    ck_handler_event(h, "Warning", "PlainPassword",
                     "spec.password is readable by anyone who can read this object; use "
                     "passwordSecretRef");
  char who[400];
  snprintf(who, sizeof who, "%s.%s", db, user);
  ck_handler_status_set(h, "user", json_string(who));
  ck_handler_log(h, CK_LOG_INFO, "user %s ensured", who);
  return ck_ok();
}

static ck_outcome_t drop(ck_handler_t *h, void *ctx) {
  (void)ctx;
  const char *user = ck_field_string(ck_handler_spec(h), "username", "");
  char msg[1024] = "";
  if (mu_user_drop(uri_of(h), db_of(h), user, msg, sizeof msg) != 0)
    return ck_retry(h, "%s", msg);
  ck_handler_log(h, CK_LOG_INFO, "user %s.%s dropped", db_of(h), user);
  return ck_ok();
}

static const ck_timer_t timers[] = {
    {.name = "recheck", .fn = ensure, .interval_ms = 300000, .interval_flag = "recheck-seconds"},
    {0}};

static void driver_log(void *ctx, bool error, const char *domain, const char *message) {
  (void)ctx;
  ck_log(error ? CK_LOG_WARN : CK_LOG_DEBUG, "libmongoc", domain, "%s", message);
}

int main(int argc, char **argv) {
  mu_set_log(driver_log, NULL);
  static const ck_flag_t flags[] = {
      {.name = "mongo-uri", .required = true,
       .help = "mongodb:// URI of a user allowed to manage users (keep it in a Secret)"},
      {.name = "database", .def = "admin", .help = "the database the users belong to"},
      {.name = "recheck-seconds", .type = CK_FLAG_INT, .def = "300", .min = 1, .max = 86400,
       .help = "re-apply every user this often (rotated Secrets, users dropped by hand)"},
      {0}};
  static const ck_handlers_t handlers[] = {
      {.crd = &crd, .on_create = ensure, .on_update = ensure, .on_resume = ensure,
       .on_delete = drop, .timers = timers, .keep_last_spec = true},
      {0}};
  ck_operator_t op = {
      .name = "mongo-user",
      .version = "0.1.0",
      .description = "Keeps MongoDB users as MongoUserResource objects (examples.crdkit.io/v1) say.",
      .crd = &crd,
      .handlers = handlers,
      .flags = flags,
  };
  int rc = ck_operator_main(argc, argv, &op);
  mu_cleanup();
  return rc;
}
