/* Credentials for requests: static token, token file (re-read at most a
 * minute stale, as bound service-account tokens rotate), exec plugins
 * (cached until expirationTimestamp, re-run once on 401), client
 * certificates. Thread-safe; an exec refresh runs once for all waiters. */
#include "kube/kube_internal.h"

#include "util/timeutil.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_FILE_MAX_AGE_MS 60000
/* Refresh exec credentials a little before they expire. */
#define EXEC_EXPIRY_MARGIN_S 10

struct ck_auth {
  pthread_mutex_t lock;
  ck_config_t *cfg; /* own copy */
  /* token file cache */
  char *file_token;
  int64_t file_read_ms;
  /* exec cache */
  ck_exec_result_t exec;
  bool exec_valid;
  uint64_t generation;
};

int ck_auth_new(const ck_config_t *cfg, ck_auth_t **out, ck_error_t *err) {
  ck_auth_t *a = calloc(1, sizeof *a);
  if (!a || !(a->cfg = ck_config_dup(cfg))) {
    free(a);
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  }
  pthread_mutex_init(&a->lock, NULL);
  a->generation = 1;
  *out = a;
  return 0;
}

void ck_auth_free(ck_auth_t *a) {
  if (!a)
    return;
  if (a->file_token)
    OPENSSL_cleanse(a->file_token, strlen(a->file_token));
  free(a->file_token);
  ck_exec_result_clear(&a->exec);
  ck_config_free(a->cfg);
  pthread_mutex_destroy(&a->lock);
  free(a);
}

void ck_cred_clear(ck_cred_t *c) {
  if (c->bearer)
    OPENSSL_cleanse(c->bearer, strlen(c->bearer));
  free(c->bearer);
  free(c->cert_pem);
  if (c->key_pem)
    OPENSSL_cleanse(c->key_pem, c->key_len);
  free(c->key_pem);
  memset(c, 0, sizeof *c);
}

static int read_token_file(ck_auth_t *a, ck_error_t *err) {
  int64_t now = ck_now_ms();
  if (a->file_token && now - a->file_read_ms < TOKEN_FILE_MAX_AGE_MS)
    return 0;
  char *data;
  size_t len;
  int rc = ck_read_file(a->cfg->token_file, 1u << 20, &data, &len, err);
  if (rc) {
    if (a->file_token) {
      /* Keep using the last token; the file may be mid-rotation. */
      CK_WARN("auth", NULL, "re-reading token file: %s (keeping the previous token)",
              err ? err->message : "error");
      return 0;
    }
    return ck_error_prefix(err, "tokenFile: ");
  }
  while (len && (data[len - 1] == '\n' || data[len - 1] == '\r' || data[len - 1] == ' '))
    data[--len] = '\0';
  if (len == 0) {
    free(data);
    if (a->file_token)
      return 0;
    return ck_error_set(err, CK_EAUTH, "tokenFile %s is empty", a->cfg->token_file);
  }
  if (a->file_token && strcmp(a->file_token, data) != 0)
    a->generation++;
  if (a->file_token)
    OPENSSL_cleanse(a->file_token, strlen(a->file_token));
  free(a->file_token);
  a->file_token = data;
  a->file_read_ms = now;
  return 0;
}

static bool exec_fresh(const ck_auth_t *a) {
  return a->exec_valid &&
         (a->exec.expires == 0 || a->exec.expires - EXEC_EXPIRY_MARGIN_S > ck_wall_s());
}

static unsigned char *dup_bytes(const unsigned char *p, size_t n) {
  unsigned char *o = malloc(n + 1);
  if (o) {
    memcpy(o, p, n);
    o[n] = '\0';
  }
  return o;
}

int ck_auth_get(ck_auth_t *a, ck_cred_t *out, ck_error_t *err) {
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&a->lock);
  int rc = 0;
  const char *bearer = a->cfg->token;
  const unsigned char *cert = a->cfg->cert_pem, *key = a->cfg->key_pem;
  size_t cert_len = a->cfg->cert_pem_len, key_len = a->cfg->key_pem_len;
  if (a->cfg->token_file) {
    rc = read_token_file(a, err);
    bearer = a->file_token;
  }
  if (rc == 0 && a->cfg->exec) {
    if (!exec_fresh(a)) {
      ck_exec_result_clear(&a->exec);
      a->exec_valid = false;
      rc = ck_exec_run(a->cfg->exec, a->cfg, &a->exec, err);
      if (rc == 0) {
        a->exec_valid = true;
        a->generation++;
        CK_DEBUG("auth", NULL, "exec plugin \"%s\" gave a credential%s", a->cfg->exec->command,
                 a->exec.expires ? " with an expiry" : "");
      }
    }
    if (rc == 0) {
      if (a->exec.token)
        bearer = a->exec.token;
      if (a->exec.cert_pem) {
        cert = a->exec.cert_pem;
        cert_len = a->exec.cert_len;
        key = a->exec.key_pem;
        key_len = a->exec.key_len;
      }
    }
  }
  if (rc == 0) {
    out->generation = a->generation;
    if (bearer && !(out->bearer = strdup(bearer)))
      rc = CK_ENOMEM;
    if (cert && (!(out->cert_pem = dup_bytes(cert, cert_len)) ||
                 !(out->key_pem = dup_bytes(key, key_len))))
      rc = CK_ENOMEM;
    out->cert_len = cert_len;
    out->key_len = key_len;
    if (rc)
      ck_error_set(err, rc, "out of memory");
  }
  pthread_mutex_unlock(&a->lock);
  if (rc)
    ck_cred_clear(out);
  return rc;
}

bool ck_auth_invalidate(ck_auth_t *a, uint64_t generation) {
  bool retry = false;
  pthread_mutex_lock(&a->lock);
  if (a->generation != generation) {
    retry = true; /* someone refreshed meanwhile */
  } else if (a->cfg->exec) {
    ck_exec_result_clear(&a->exec);
    a->exec_valid = false;
    retry = true;
  } else if (a->cfg->token_file) {
    a->file_read_ms = 0; /* re-read now: it may have rotated */
    retry = true;
  }
  pthread_mutex_unlock(&a->lock);
  return retry;
}
