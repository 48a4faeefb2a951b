/* check-mongo: examples/mongo_user/mongo.c against a running MongoDB-wire
 * server (scripts/mongo-server up). Reads:
 *   CRDKIT_TEST_MONGO_URI    an admin URI (required: no server, no pass)
 *   CRDKIT_TEST_MONGO_ROLES  0 if the server does not implement roles; the
 *                            checks then expect roles to be refused clearly
 *                            and use users without roles
 * Prints one line per check and ends with "N passed, N failed"; exits 1 if
 * any failed. */
#include "mongo.h"

#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int passed, failed;
static const char *admin_uri;
static char admin_pw[256];

static void check(int ok, const char *what, const char *err) {
  if (ok)
    passed++;
  else
    failed++;
  printf("%s - %s", ok ? "ok" : "FAIL", what);
  if (err && *err)
    printf("\n    error: %s", err);
  printf("\n");
  fflush(stdout);
}

/* The message is clear and safe: it names what it must and shows no secret. */
static int clear_error(const char *err, const char *const *must, const char *const *secrets) {
  if (!err || !*err)
    return 0;
  for (; must && *must; must++)
    if (!strstr(err, *must))
      return 0;
  for (; secrets && *secrets; secrets++)
    if (**secrets && strstr(err, *secrets))
      return 0;
  return 1;
}

/* The user's roles are exactly `want` (in any order). */
static int roles_are(char **got, size_t ngot, const char *const *want, size_t nwant) {
  if (ngot != nwant || (ngot && !got) || (got && got[ngot]))
    return 0;
  for (size_t i = 0; i < nwant; i++) {
    int found = 0;
    for (size_t j = 0; j < ngot && !found; j++)
      found = strcmp(got[j], want[i]) == 0;
    if (!found)
      return 0;
  }
  return 1;
}

/* libmongoc's log: its warnings and errors shown as comments, its debug
 * chatter dropped, and every message searched for the secrets. */
static const char *log_secrets[5];
static int log_leaks;

static void log_handler(void *data, bool error, const char *domain, const char *message) {
  (void)data;
  for (size_t i = 0; i < sizeof log_secrets / sizeof *log_secrets; i++)
    if (log_secrets[i] && *log_secrets[i] && strstr(message, log_secrets[i]))
      log_leaks++;
  printf("# libmongoc %s %s: %s\n", error ? "error" : "message", domain, message);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void) {
  admin_uri = getenv("CRDKIT_TEST_MONGO_URI");
  if (!admin_uri || !*admin_uri) {
    fprintf(stderr, "check-mongo: CRDKIT_TEST_MONGO_URI is not set: start a server with "
                    "`eval \"$(scripts/mongo-server up)\"` (and export it)\n");
    printf("0 passed, 1 failed\n");
    return 1;
  }
  /* Ours, for mongoc_uri_new below; mu_ shares it, mu_cleanup() ends it. */
  mongoc_init();
  const char *rs = getenv("CRDKIT_TEST_MONGO_ROLES");
  int roles_ok = !(rs && strcmp(rs, "0") == 0);
  {
    mongoc_uri_t *u = mongoc_uri_new(admin_uri);
    if (u && mongoc_uri_get_password(u))
      snprintf(admin_pw, sizeof admin_pw, "%s", mongoc_uri_get_password(u));
    mongoc_uri_destroy(u);
  }
  printf("# server %s, roles %s\n", getenv("CRDKIT_TEST_MONGO_SERVER") ? getenv("CRDKIT_TEST_MONGO_SERVER") : "?",
         roles_ok ? "expected to work" : "expected to be refused (CRDKIT_TEST_MONGO_ROLES=0)");

  const char *db = "crdkit_check";
  char user[64], pw1[64], pw2[64];
  snprintf(user, sizeof user, "check-%ld-%d", (long)time(NULL), (int)getpid());
  snprintf(pw1, sizeof pw1, "first-%d-Secret", (int)getpid());
  snprintf(pw2, sizeof pw2, "second-%d-Secret", (int)getpid());
  const char *secrets[] = {pw1, pw2, admin_pw, NULL};
  log_secrets[0] = pw1;
  log_secrets[1] = pw2;
  log_secrets[2] = admin_pw;
  log_secrets[3] = "Hidden-Pw-";
  log_secrets[4] = "Wrong-Admin-Pw";
  mu_set_log(log_handler, NULL); /* mongo.c routes libmongoc's log here */
  const char *names[] = {user, db, "127.0.0.1", NULL};
  char err[1024];
  bool exists = true;
  char **roles = NULL;
  size_t nroles = 99;
  int r;

  r = mu_user_get(admin_uri, db, user, &exists, &roles, &nroles, err, sizeof err);
  check(r == 0 && !exists && !roles && nroles == 0, "a new user name does not exist yet", err);

  const char *want1_full[] = {"readWrite", "read@crdkit_check_other"};
  const char *want2_full[] = {"read"};
  const char *const *want1 = roles_ok ? want1_full : NULL;
  size_t nwant1 = roles_ok ? 2 : 0;
  const char *const *want2 = roles_ok ? want2_full : NULL;
  size_t nwant2 = roles_ok ? 1 : 0;

  if (!roles_ok) {
    r = mu_user_ensure(admin_uri, db, user, pw1, want1_full, 2, err, sizeof err);
    const char *must[] = {user, db, "127.0.0.1", "createUser", "roles", NULL};
    check(r == -1 && clear_error(err, must, secrets),
          "roles are refused with a clear error naming server, database and user", err);
    r = mu_user_get(admin_uri, db, user, &exists, NULL, NULL, err, sizeof err);
    check(r == 0 && !exists, "a refused createUser leaves no user behind", err);
  }

  r = mu_user_ensure(admin_uri, db, user, pw1, want1, nwant1, err, sizeof err);
  check(r == 0, "ensure creates the user", err);
  r = mu_user_get(admin_uri, db, user, &exists, &roles, &nroles, err, sizeof err);
  check(r == 0 && exists && roles_are(roles, nroles, want1, nwant1),
        "the user exists with the roles asked for", err);
  mu_roles_free(roles);
  roles = NULL;

  r = mu_user_ensure(admin_uri, db, user, pw1, want1, nwant1, err, sizeof err);
  check(r == 0, "ensure again with the same arguments succeeds (idempotent)", err);
  r = mu_user_get(admin_uri, db, user, &exists, &roles, &nroles, err, sizeof err);
  check(r == 0 && exists && roles_are(roles, nroles, want1, nwant1),
        "and leaves the same roles", err);
  mu_roles_free(roles);
  roles = NULL;

  r = mu_user_authenticate(admin_uri, db, user, pw1, err, sizeof err);
  check(r == 0, "the user logs in with its password", err);
  r = mu_user_authenticate(admin_uri, db, user, "not-the-password", err, sizeof err);
  {
    const char *must[] = {user, db, "127.0.0.1", "authenticate", NULL};
    const char *sec[] = {pw1, "not-the-password", admin_pw, NULL};
    check(r == -1 && clear_error(err, must, sec),
          "a wrong password is refused, with a clear error and no password in it", err);
  }

  r = mu_user_ensure(admin_uri, db, user, pw2, want2, nwant2, err, sizeof err);
  check(r == 0, "ensure with a new password and new roles updates the user", err);
  r = mu_user_get(admin_uri, db, user, &exists, &roles, &nroles, err, sizeof err);
  check(r == 0 && exists && roles_are(roles, nroles, want2, nwant2),
        "the user now has the new roles", err);
  mu_roles_free(roles);
  roles = NULL;
  r = mu_user_authenticate(admin_uri, db, user, pw2, err, sizeof err);
  check(r == 0, "the new password logs in", err);
  r = mu_user_authenticate(admin_uri, db, user, pw1, err, sizeof err);
  check(r == -1 && clear_error(err, names, secrets), "the old password no longer does", err);

  r = mu_user_drop(admin_uri, db, user, err, sizeof err);
  check(r == 0, "drop removes the user", err);
  r = mu_user_get(admin_uri, db, user, &exists, &roles, &nroles, err, sizeof err);
  check(r == 0 && !exists && !roles && nroles == 0, "the user is gone", err);
  r = mu_user_drop(admin_uri, db, user, err, sizeof err);
  check(r == 0, "dropping an absent user succeeds", err);
  r = mu_user_authenticate(admin_uri, db, user, pw2, err, sizeof err);
  check(r == -1 && clear_error(err, names, secrets), "a dropped user cannot log in", err);

  /* Wrong URIs and arguments: clear errors, no crash, no secret shown. */
  r = mu_user_ensure("not-a-uri", db, user, pw1, NULL, 0, err, sizeof err);
  {
    const char *must[] = {"invalid URI", user, db, NULL};
    check(r == -1 && clear_error(err, must, secrets), "a malformed URI is a clear error", err);
  }
  r = mu_user_ensure("mongodb://admin:Hidden-Pw-1@/?authSource=admin", db, user, pw1, NULL, 0, err,
                     sizeof err);
  {
    const char *sec[] = {"Hidden-Pw-1", pw1, NULL};
    const char *must[] = {"invalid URI", NULL};
    check(r == -1 && clear_error(err, must, sec),
          "an invalid URI's error does not show its password", err);
  }
  double t0 = now();
  r = mu_user_ensure("mongodb://admin:Hidden-Pw-2@127.0.0.1:1/?authSource=admin", db, user, pw1,
                     NULL, 0, err, sizeof err);
  {
    const char *sec[] = {"Hidden-Pw-2", pw1, NULL};
    const char *must[] = {"127.0.0.1:1", user, db, NULL};
    check(r == -1 && clear_error(err, must, sec) && now() - t0 < 10,
          "a server that is not there is a clear, quick error", err);
  }
  if (admin_pw[0] && strstr(admin_uri, admin_pw)) {
    /* The admin URI with another password in place of the admin's. */
    const char *at = strstr(admin_uri, admin_pw);
    size_t l = strlen(admin_uri) + 32;
    char *bad = malloc(l);
    snprintf(bad, l, "%.*sWrong-Admin-Pw%s", (int)(at - admin_uri), admin_uri,
             at + strlen(admin_pw));
    r = mu_user_ensure(bad, db, user, pw1, NULL, 0, err, sizeof err);
    const char *sec[] = {"Wrong-Admin-Pw", pw1, admin_pw, NULL};
    check(r == -1 && clear_error(err, names, sec),
          "a URI with a wrong admin password is a clear error", err);
    free(bad);
    r = mu_user_get(admin_uri, db, user, &exists, NULL, NULL, err, sizeof err);
    check(r == 0 && !exists, "and created nothing", err);
  } else {
    check(0, "the admin URI has a password to replace", "it has none");
  }
  {
    /* The server enforces authentication: no credentials, no user list. */
    const char *at = strchr(admin_uri, '@');
    char anon[512];
    snprintf(anon, sizeof anon, "mongodb://%s", at ? at + 1 : "");
    char *q = strstr(anon, "?authSource=");
    if (q)
      *q = '\0';
    r = mu_user_get(anon, db, user, &exists, NULL, NULL, err, sizeof err);
    const char *must[] = {"usersInfo", user, db, "127.0.0.1", NULL};
    check(r == -1 && clear_error(err, must, secrets),
          "without credentials the server refuses usersInfo", err);
  }
  r = mu_user_ensure(admin_uri, db, NULL, pw1, NULL, 0, err, sizeof err);
  check(r == -1 && strstr(err, "no user name"), "no user name is an error", err);
  r = mu_user_ensure(admin_uri, db, user, "", NULL, 0, err, sizeof err);
  check(r == -1 && strstr(err, "no password"), "an empty password is an error", err);
  {
    const char *bad_roles[] = {"read", "@other"};
    r = mu_user_ensure(admin_uri, db, user, pw1, bad_roles, 2, err, sizeof err);
    check(r == -1 && strstr(err, "NAME@DATABASE"), "a role with no name is an error", err);
  }
  r = mu_user_ensure(NULL, db, user, pw1, NULL, 0, NULL, 0);
  check(r == -1, "no URI and no error buffer: an error, no crash", NULL);
  {
    char small[12];
    memset(small, 'x', sizeof small);
    r = mu_user_ensure("not-a-uri", db, user, pw1, NULL, 0, small, 8);
    check(r == -1 && strlen(small) == 7 && small[8] == 'x',
          "a short error buffer is cut, not overrun", NULL);
  }

  /* Whatever failed above, leave no user behind. */
  mu_user_drop(admin_uri, db, user, NULL, 0);
  check(log_leaks == 0, "libmongoc's log showed no password", NULL);
  mu_cleanup();
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
