/* Test helpers shared by crdkit's Criterion suites. */
#ifndef CKTEST_H
#define CKTEST_H

#include "crdkit/client.h"
#include "crdkit/watch.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* A test whose body is followed by a LeakSanitizer check: memory that
 * became unreachable during the test fails it. (Criterion counts a test
 * as passed even when LeakSanitizer reports at process exit, and ignores
 * assertions in .fini, so the check runs at the end of the body.) */
#define CK_TEST(suite, name) CK_TEST_OPTS(suite, name, .disabled = false)
/* With Criterion test options, e.g. .timeout = 120. */
#define CK_TEST_OPTS(suite, name, ...)                                                             \
  static void suite##_##name##_body(void);                                                         \
  Test(suite, name, __VA_ARGS__) {                                                                 \
    suite##_##name##_body();                                                                       \
    cktest_leak_check();                                                                           \
  }                                                                                                \
  static void suite##_##name##_body(void)

void cktest_leak_check(void);

/* The test cluster. These fail the test (never skip it) when the cluster
 * is not there: integration tests need the real apiserver. */
const char *cktest_env(const char *name);
/* A client for "admin" (system:masters) or "user" (no rights). */
ck_client_t *cktest_client(const char *who);
/* The same with client options (may be NULL). */
ck_client_t *cktest_client_opts(const char *who, const ck_client_opts_t *opts);
/* A fresh namespace "<prefix>-<random>", created with the admin client.
 * Returns a malloc'd name; cktest_ns_delete removes it and frees it. */
char *cktest_ns_create(ck_client_t *admin, const char *prefix);
void cktest_ns_delete(ck_client_t *admin, char *ns);
/* POST to the harness's control endpoint ("/compact", "/apiserver/restart"). */
void cktest_control(const char *path);
/* Run a shell command line, return its exit status; stdout into *out
 * (malloc'd) when out is not NULL. */
int cktest_sh(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Like cktest_sh, but fails the test unless the command exits 0; returns
 * stdout without trailing whitespace (malloc'd). */
char *cktest_sh_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* asprintf that fails the test when out of memory. */
char *cktest_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Follow a dotted path of object keys ("metadata.name"); borrowed. */
json_t *cktest_jpath(json_t *o, const char *path);
const char *cktest_jstr(json_t *o, const char *path);
/* Monotonic clock, and sleeping. */
double cktest_now_s(void);
int64_t cktest_now_ms(void);
void cktest_sleep_ms(int64_t ms);
/* A random 32-bit number (namespace and object name suffixes). */
unsigned cktest_rand32(void);
/* Parse JSON text or fail the test. New reference. */
json_t *cktest_json(const char *text);
/* A ConfigMap object {name, data: {k: v}}. New reference. */
json_t *cktest_configmap(const char *name, const char *key, const char *value);
/* Create that ConfigMap in `ns` or fail the test; returns the created
 * object (new reference). */
json_t *cktest_configmap_create(ck_client_t *c, const char *ns, const char *name,
                                const char *key, const char *value);
/* Write `data` to a new temporary file; returns its malloc'd path. */
char *cktest_tmpfile(const char *data);
/* A temporary directory for one test. */
typedef struct cktest_dir {
  char path[64];
} cktest_dir_t;
void cktest_dir_make(cktest_dir_t *d);
void cktest_dir_remove(cktest_dir_t *d);
/* Write `data` to dir/name with that mode; returns the malloc'd path. */
char *cktest_dir_put(const cktest_dir_t *d, const char *name, const char *data, int mode);
/* A file's text (up to 64 KiB), malloc'd; fails the test when unreadable. */
char *cktest_read_text(const char *path);
/* The path of a program built beside the test binary (e.g. "leader_proc"
 * in build/asan/test). malloc'd; fails the test when it is missing. */
char *cktest_bin_path(const char *name);

/* A TCP relay to the apiserver (TLS passes through), to cut a client off
 * while the cluster changes. */
typedef struct cktest_proxy cktest_proxy_t;
cktest_proxy_t *cktest_proxy_start(const char *upstream_url);
char *cktest_proxy_url(cktest_proxy_t *p); /* malloc'd */
/* Blocked: current connections are dropped and new ones closed at once. */
void cktest_proxy_block(cktest_proxy_t *p, bool blocked);
/* Frozen: connections stay open but no byte moves, as on a partitioned
 * network (requests time out instead of failing fast). */
void cktest_proxy_freeze(cktest_proxy_t *p, bool frozen);
void cktest_proxy_stop(cktest_proxy_t *p);
/* An admin client whose connections go through the relay. */
ck_client_t *cktest_client_via_proxy(cktest_proxy_t *p, const ck_client_opts_t *opts);

#endif
