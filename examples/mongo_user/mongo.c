/* MongoDB users through libmongoc: see mongo.h for the contract. */
#include "mongo.h"

#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Server error codes this module acts on. */
enum {
  MU_CODE_USER_NOT_FOUND = 11,
  MU_CODE_USER_EXISTS = 51003,
};

static pthread_once_t mu_once = PTHREAD_ONCE_INIT;
static atomic_bool mu_inited;

static mu_log_fn mu_log_to;
static void *mu_log_ctx;

void mu_set_log(mu_log_fn fn, void *ctx) {
  mu_log_to = fn;
  mu_log_ctx = ctx;
}

/* libmongoc's messages go to the program's log (or nowhere), never as
 * lines of their own on stderr among the operator's. */
static void mu_log_handler(mongoc_log_level_t level, const char *domain, const char *message,
                           void *ctx) {
  (void)ctx;
  if (mu_log_to && level <= MONGOC_LOG_LEVEL_INFO)
    mu_log_to(mu_log_ctx, level <= MONGOC_LOG_LEVEL_ERROR, domain, message);
}

static void mu_init_once(void) {
  mongoc_init();
  mongoc_log_set_handler(mu_log_handler, NULL);
  atomic_store(&mu_inited, true);
}

void mu_cleanup(void) {
  if (atomic_exchange(&mu_inited, false))
    mongoc_cleanup();
}

typedef struct {
  const char *s;
  size_t n;
} mu_secret_t;

static mu_secret_t secret_of(const char *s) { return (mu_secret_t){s, s ? strlen(s) : 0}; }

/* One call: its connection, what it is about (for messages) and the
 * secrets its messages must not show. */
typedef struct {
  const char *op; /* the command being run, for messages */
  const char *db;
  const char *user;
  mongoc_uri_t *uri;       /* the caller's */
  mongoc_uri_t *login_uri; /* mu_user_authenticate: with the user's credentials */
  mongoc_client_t *client;
  char servers[256];
  mu_secret_t secrets[3]; /* the caller's password, the URI's (as written, decoded) */
  char *errbuf;
  size_t errlen;
} mu_call_t;

static const char *or_none(const char *s) { return s ? s : "(none)"; }

/* Copy src into dst (of size n), with every occurrence of a secret shown
 * as "***". */
static void redact(char *dst, size_t n, const char *src, const mu_secret_t *secrets,
                   size_t nsecrets) {
  size_t o = 0;
  while (*src && o + 1 < n) {
    size_t skip = 0;
    for (size_t i = 0; i < nsecrets && !skip; i++)
      if (secrets[i].n && strncmp(src, secrets[i].s, secrets[i].n) == 0)
        skip = secrets[i].n;
    if (skip) {
      for (const char *m = "***"; *m && o + 1 < n; m++)
        dst[o++] = *m;
      src += skip;
    } else {
      dst[o++] = *src++;
    }
  }
  if (n)
    dst[o] = '\0';
}

/* Fill errbuf: "mongodb SERVERS: OP user "U" in database "D": MESSAGE". */
static int fail(mu_call_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(mu_call_t *c, const char *fmt, ...) {
  if (!c->errbuf || c->errlen == 0)
    return -1;
  char msg[1024], clean[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  redact(clean, sizeof clean, msg, c->secrets, 3);
  snprintf(c->errbuf, c->errlen, "mongodb %s: %s user \"%s\" in database \"%s\": %s",
           c->servers[0] ? c->servers : "(no server)", c->op, or_none(c->user), or_none(c->db),
           clean);
  return -1;
}

static int fail_bson(mu_call_t *c, const bson_error_t *e) {
  if (e->domain == MONGOC_ERROR_SERVER || e->domain == MONGOC_ERROR_WRITE_CONCERN)
    return fail(c, "%s (server error %u)", e->message, e->code);
  return fail(c, "%s (driver error %u.%u)", e->message, e->domain, e->code);
}

/* The password in a URI's user information, as written (maybe
 * percent-encoded), so that messages about an invalid URI cannot show it. */
static mu_secret_t uri_raw_secret(const char *uri) {
  mu_secret_t none = {NULL, 0};
  const char *start = uri ? strstr(uri, "://") : NULL;
  if (!start)
    return none;
  start += 3;
  const char *end = start + strcspn(start, "/?");
  const char *at = NULL;
  for (const char *p = start; p < end; p++)
    if (*p == '@')
      at = p;
  if (!at)
    return none;
  const char *colon = memchr(start, ':', (size_t)(at - start));
  if (!colon)
    return none;
  return (mu_secret_t){colon + 1, (size_t)(at - colon - 1)};
}

static void servers_of(mu_call_t *c) {
  size_t o = 0;
  c->servers[0] = '\0';
  for (const mongoc_host_list_t *h = mongoc_uri_get_hosts(c->uri); h; h = h->next) {
    int w = snprintf(c->servers + o, sizeof c->servers - o, "%s%s", o ? "," : "",
                     h->host_and_port);
    if (w < 0 || (size_t)w >= sizeof c->servers - o)
      break;
    o += (size_t)w;
  }
  if (!c->servers[0] && mongoc_uri_get_srv_hostname(c->uri))
    snprintf(c->servers, sizeof c->servers, "%s", mongoc_uri_get_srv_hostname(c->uri));
}

/* Check the arguments, parse the URI and make a client. need_password:
 * password must not be empty. login: the URI's own credentials are
 * replaced by user/password (mu_user_authenticate). */
static int open_call(mu_call_t *c, const char *op, const char *uri, const char *db,
                     const char *user, const char *password, bool need_password, bool login,
                     char *errbuf, size_t errlen) {
  memset(c, 0, sizeof *c);
  c->op = op;
  c->db = db;
  c->user = user;
  c->errbuf = errbuf;
  c->errlen = errlen;
  c->secrets[0] = secret_of(password);
  c->secrets[1] = uri_raw_secret(uri);
  if (errbuf && errlen)
    errbuf[0] = '\0';
  if (!uri || !*uri)
    return fail(c, "no server URI");
  if (!db || !*db)
    return fail(c, "no database name");
  if (!user || !*user)
    return fail(c, "no user name");
  if (need_password && (!password || !*password))
    return fail(c, "no password");
  pthread_once(&mu_once, mu_init_once);
  bson_error_t e;
  c->uri = mongoc_uri_new_with_error(uri, &e);
  if (!c->uri)
    return fail(c, "invalid URI: %s", e.message);
  c->secrets[2] = secret_of(mongoc_uri_get_password(c->uri));
  servers_of(c);
  if (login) {
    c->login_uri = mongoc_uri_copy(c->uri);
    if (!c->login_uri || !mongoc_uri_set_username(c->login_uri, user) ||
        !mongoc_uri_set_password(c->login_uri, password) ||
        !mongoc_uri_set_auth_source(c->login_uri, db))
      return fail(c, "cannot put these credentials in the URI");
  }
  c->client = mongoc_client_new_from_uri_with_error(login ? c->login_uri : c->uri, &e);
  if (!c->client)
    return fail(c, "cannot make a client: %s", e.message);
  mongoc_client_set_error_api(c->client, MONGOC_ERROR_API_VERSION_2);
  mongoc_client_set_appname(c->client, "crdkit-mongo-user");
  return 0;
}

static void close_call(mu_call_t *c) {
  mongoc_client_destroy(c->client);
  mongoc_uri_destroy(c->login_uri);
  mongoc_uri_destroy(c->uri);
  c->client = NULL;
  c->login_uri = NULL;
  c->uri = NULL;
}

/* Run cmd on the call's database; reply is always initialised. */
static bool run(mu_call_t *c, const bson_t *cmd, bson_t *reply, bson_error_t *e) {
  return mongoc_client_command_simple(c->client, c->db, cmd, NULL, reply, e);
}

/* Append roles as [{role, db}, ...]; -1 (and errbuf) on an empty name. */
static int append_roles(mu_call_t *c, bson_t *cmd, const char *const *roles, size_t nroles) {
  bson_t arr;
  BSON_APPEND_ARRAY_BEGIN(cmd, "roles", &arr);
  int r = 0;
  for (size_t i = 0; i < nroles && r == 0; i++) {
    const char *role = roles[i];
    const char *at = role ? strrchr(role, '@') : NULL;
    size_t namelen = role ? (at ? (size_t)(at - role) : strlen(role)) : 0;
    const char *rdb = at ? at + 1 : c->db;
    if (namelen == 0 || !*rdb) {
      r = fail(c, "role %zu (\"%s\") is not NAME or NAME@DATABASE", i, or_none(role));
      break;
    }
    char key[16];
    const char *k;
    bson_uint32_to_string((uint32_t)i, &k, key, sizeof key);
    bson_t doc;
    BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &doc);
    bson_append_utf8(&doc, "role", 4, role, (int)namelen);
    BSON_APPEND_UTF8(&doc, "db", rdb);
    bson_append_document_end(&arr, &doc);
  }
  bson_append_array_end(cmd, &arr);
  return r;
}

/* createUser or updateUser with the password and the roles. */
static int set_user(mu_call_t *c, const char *verb, const char *password, const char *const *roles,
                    size_t nroles, bson_error_t *e) {
  bson_t cmd = BSON_INITIALIZER, reply;
  BSON_APPEND_UTF8(&cmd, verb, c->user);
  BSON_APPEND_UTF8(&cmd, "pwd", password);
  c->op = verb;
  if (append_roles(c, &cmd, roles, nroles) != 0) {
    bson_destroy(&cmd);
    e->domain = 0;
    return -1;
  }
  bool ok = run(c, &cmd, &reply, e);
  bson_destroy(&cmd);
  bson_destroy(&reply);
  return ok ? 0 : 1;
}

int mu_user_ensure(const char *uri, const char *db, const char *user, const char *password,
                   const char *const *roles, size_t nroles, char *errbuf, size_t errlen) {
  mu_call_t c;
  if (open_call(&c, "createUser", uri, db, user, password, true, false, errbuf, errlen) != 0) {
    close_call(&c);
    return -1;
  }
  if (nroles && !roles) {
    fail(&c, "%zu roles but no array", nroles);
    close_call(&c);
    return -1;
  }
  /* Create; if it exists, update; if it vanished in between, create again. */
  bson_error_t e;
  int r = -1;
  for (int attempt = 0; attempt < 2; attempt++) {
    int s = set_user(&c, "createUser", password, roles, nroles, &e);
    if (s == 0) {
      r = 0;
      break;
    }
    if (s < 0 || e.domain != MONGOC_ERROR_SERVER || e.code != MU_CODE_USER_EXISTS) {
      if (s > 0)
        fail_bson(&c, &e);
      break;
    }
    s = set_user(&c, "updateUser", password, roles, nroles, &e);
    if (s == 0) {
      r = 0;
      break;
    }
    if (s < 0 || e.domain != MONGOC_ERROR_SERVER || e.code != MU_CODE_USER_NOT_FOUND ||
        attempt == 1) {
      if (s > 0)
        fail_bson(&c, &e);
      break;
    }
  }
  close_call(&c);
  return r;
}

int mu_user_drop(const char *uri, const char *db, const char *user, char *errbuf, size_t errlen) {
  mu_call_t c;
  int r = open_call(&c, "dropUser", uri, db, user, NULL, false, false, errbuf, errlen);
  if (r == 0) {
    bson_t cmd = BSON_INITIALIZER, reply;
    bson_error_t e;
    BSON_APPEND_UTF8(&cmd, "dropUser", user);
    if (!run(&c, &cmd, &reply, &e) &&
        !(e.domain == MONGOC_ERROR_SERVER && e.code == MU_CODE_USER_NOT_FOUND))
      r = fail_bson(&c, &e);
    bson_destroy(&cmd);
    bson_destroy(&reply);
  }
  close_call(&c);
  return r;
}

void mu_roles_free(char **roles) {
  if (!roles)
    return;
  for (char **p = roles; *p; p++)
    free(*p);
  free(roles);
}

/* Collect the roles array of a usersInfo entry into a NULL-terminated
 * array; -1 on a malformed entry or no memory. */
static int collect_roles(mu_call_t *c, const bson_t *userdoc, char ***out, size_t *nout) {
  bson_iter_t it, roles;
  *out = NULL;
  *nout = 0;
  if (!bson_iter_init_find(&it, userdoc, "roles") || !BSON_ITER_HOLDS_ARRAY(&it) ||
      !bson_iter_recurse(&it, &roles))
    return fail(c, "the server's usersInfo reply has no roles array");
  size_t cap = 4, n = 0;
  char **v = calloc(cap + 1, sizeof *v);
  if (!v)
    return fail(c, "out of memory");
  while (bson_iter_next(&roles)) {
    bson_iter_t f;
    const char *name = NULL, *rdb = NULL;
    if (BSON_ITER_HOLDS_DOCUMENT(&roles) && bson_iter_recurse(&roles, &f)) {
      while (bson_iter_next(&f)) {
        if (BSON_ITER_HOLDS_UTF8(&f) && strcmp(bson_iter_key(&f), "role") == 0)
          name = bson_iter_utf8(&f, NULL);
        else if (BSON_ITER_HOLDS_UTF8(&f) && strcmp(bson_iter_key(&f), "db") == 0)
          rdb = bson_iter_utf8(&f, NULL);
      }
    }
    if (!name || !rdb) {
      mu_roles_free(v);
      return fail(c, "the server's usersInfo reply has a role without role and db");
    }
    if (n == cap) {
      char **nv = realloc(v, (2 * cap + 1) * sizeof *v);
      if (!nv) {
        mu_roles_free(v);
        return fail(c, "out of memory");
      }
      v = nv;
      cap *= 2;
    }
    char *s = strcmp(rdb, c->db) == 0 ? strdup(name) : NULL;
    if (!s && strcmp(rdb, c->db) != 0) {
      size_t l = strlen(name) + 1 + strlen(rdb) + 1;
      if ((s = malloc(l)))
        snprintf(s, l, "%s@%s", name, rdb);
    }
    if (!s) {
      mu_roles_free(v);
      return fail(c, "out of memory");
    }
    v[n++] = s;
    v[n] = NULL;
  }
  *out = v;
  *nout = n;
  return 0;
}

int mu_user_get(const char *uri, const char *db, const char *user, bool *exists, char ***roles,
                size_t *nroles, char *errbuf, size_t errlen) {
  mu_call_t c;
  if (roles)
    *roles = NULL;
  if (nroles)
    *nroles = 0;
  if (exists)
    *exists = false;
  int r = open_call(&c, "usersInfo", uri, db, user, NULL, false, false, errbuf, errlen);
  if (r != 0) {
    close_call(&c);
    return r;
  }
  bson_t cmd = BSON_INITIALIZER, reply, who;
  bson_error_t e;
  BSON_APPEND_DOCUMENT_BEGIN(&cmd, "usersInfo", &who);
  BSON_APPEND_UTF8(&who, "user", user);
  BSON_APPEND_UTF8(&who, "db", db);
  bson_append_document_end(&cmd, &who);
  if (!run(&c, &cmd, &reply, &e)) {
    r = fail_bson(&c, &e);
  } else {
    bson_iter_t it, users;
    if (!bson_iter_init_find(&it, &reply, "users") || !BSON_ITER_HOLDS_ARRAY(&it) ||
        !bson_iter_recurse(&it, &users)) {
      r = fail(&c, "the server's usersInfo reply has no users array");
    } else if (bson_iter_next(&users)) {
      const uint8_t *data;
      uint32_t len;
      bson_t doc;
      if (!BSON_ITER_HOLDS_DOCUMENT(&users)) {
        r = fail(&c, "the server's usersInfo reply has a user that is not a document");
      } else {
        bson_iter_document(&users, &len, &data);
        if (!bson_init_static(&doc, data, len)) {
          r = fail(&c, "the server's usersInfo reply has a malformed user");
        } else {
          char **v = NULL;
          size_t n = 0;
          r = collect_roles(&c, &doc, &v, &n);
          if (r == 0) {
            if (exists)
              *exists = true;
            if (roles)
              *roles = v;
            else
              mu_roles_free(v);
            if (nroles)
              *nroles = n;
          }
        }
      }
    }
  }
  bson_destroy(&cmd);
  bson_destroy(&reply);
  close_call(&c);
  return r;
}

int mu_user_authenticate(const char *uri, const char *db, const char *user, const char *password,
                         char *errbuf, size_t errlen) {
  mu_call_t c;
  int r = open_call(&c, "authenticate", uri, db, user, password, true, true, errbuf, errlen);
  if (r == 0) {
    bson_t cmd = BSON_INITIALIZER, reply;
    bson_error_t e;
    BSON_APPEND_INT32(&cmd, "ping", 1);
    if (!run(&c, &cmd, &reply, &e))
      r = fail_bson(&c, &e);
    bson_destroy(&cmd);
    bson_destroy(&reply);
  }
  close_call(&c);
  return r;
}
