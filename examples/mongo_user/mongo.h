/* MongoDB users for the mongo-user example operator: create, update, read
 * and drop one user, through libmongoc. No Kubernetes here.
 *
 * Connections: each call opens its own client from `uri`, runs its
 * commands and closes it, so the calls are safe from any thread and keep
 * no state between them. The URI's user must be allowed to manage users in
 * the target database (for example a user of the admin database, with
 * ?authSource=admin). Timeouts are the URI's (connectTimeoutMS,
 * serverSelectionTimeoutMS); an unreachable server fails at once.
 *
 * Library set-up: the first call in the process runs mongoc_init() (once,
 * whatever the threads). mu_cleanup() runs mongoc_cleanup(): call it at most
 * once, at exit, when no mu_ call is running; no mu_ call may follow it. A
 * program that also uses libmongoc itself shares that one set-up.
 *
 * Roles: each role is "NAME" (a role of the user's own database `db`) or
 * "NAME@DATABASE" (a role of another database, e.g. "read@reporting").
 *
 * Errors: the functions return 0 on success and -1 on failure. On failure,
 * if errbuf is not NULL and errlen > 0, errbuf receives one NUL-terminated
 * line (cut to errlen) naming the server (its host:port list), the command,
 * the user, the database and the server's or the driver's message with its
 * code. Passwords never appear in it: neither `password` nor the URI's.
 *
 * Logs: the functions print nothing. libmongoc logs through its own handler
 * (stderr unless the program sets mongoc_log_set_handler()); its messages
 * carry no passwords. Against FerretDB it warns, as each call closes its
 * client, that the server has no endSessions command: harmless. */
#ifndef MU_MONGO_H
#define MU_MONGO_H

#include <stdbool.h>
#include <stddef.h>

/* Create `user` in database `db` with `password` and exactly the roles
 * given, or, if the user exists, set its password and replace its roles
 * with those: calling it again with the same arguments changes nothing the
 * user can see. nroles may be 0 (roles may then be NULL). All strings are
 * the caller's, only read during the call. */
int mu_user_ensure(const char *uri, const char *db, const char *user, const char *password,
                   const char *const *roles, size_t nroles, char *errbuf, size_t errlen);

/* Drop `user` from database `db`. A user that does not exist is success. */
int mu_user_drop(const char *uri, const char *db, const char *user, char *errbuf, size_t errlen);

/* Look `user` up in database `db`. On success *exists tells whether it
 * exists; if roles is not NULL, *roles receives (only when it exists; NULL
 * otherwise) a NULL-terminated array of its roles, in the "NAME" /
 * "NAME@DATABASE" form above, in the server's order, and *nroles (if not
 * NULL) their count. The array and its strings belong to the caller, who
 * frees them with mu_roles_free(). On failure *roles is NULL. */
int mu_user_get(const char *uri, const char *db, const char *user, bool *exists, char ***roles,
                size_t *nroles, char *errbuf, size_t errlen);

/* Free an array from mu_user_get() (NULL is allowed). */
void mu_roles_free(char **roles);

/* Check that `user` of database `db` can log in with `password` on the
 * server of `uri` (the URI's own credentials are replaced by these): 0 if
 * the server accepted them and answered a ping, -1 otherwise. */
int mu_user_authenticate(const char *uri, const char *db, const char *user, const char *password,
                         char *errbuf, size_t errlen);

/* Where libmongoc's own messages go (info and more severe; `error` for
 * error and critical): to fn, or nowhere when fn is NULL (the default).
 * Call it before the first mu_ call. */
typedef void (*mu_log_fn)(void *ctx, bool error, const char *domain, const char *message);
void mu_set_log(mu_log_fn fn, void *ctx);

/* Run mongoc_cleanup() (see above). Harmless if no mu_ call ever ran. */
void mu_cleanup(void);

#endif
