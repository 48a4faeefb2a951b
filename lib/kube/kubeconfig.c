/* kubeconfig loading and merging, as kubectl reads it. */
#include "crdkit/config.h"

#include "kube/kube_internal.h"
#include "util/base64.h"
#include "util/yaml.h"

#include <errno.h>
#include <libgen.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct kfile {
  char *path; /* for messages */
  char *dir;  /* for relative paths */
  json_t *doc;
} kfile_t;

typedef struct ctx {
  kfile_t *files;
  size_t nfiles;
  const char *context;
  const char *user;
  const char *cluster;
  ck_error_t *err;
} ctx_t;

/* ---- helpers --------------------------------------------------------- */

void ck_strv_free(char **v) {
  if (!v)
    return;
  for (char **p = v; *p; p++)
    free(*p);
  free(v);
}

char **ck_strv_dup(char *const *v) {
  size_t n = 0;
  while (v && v[n])
    n++;
  char **o = calloc(n + 1, sizeof *o);
  if (!o)
    return NULL;
  for (size_t i = 0; i < n; i++)
    if (!(o[i] = strdup(v[i]))) {
      ck_strv_free(o);
      return NULL;
    }
  return o;
}

int ck_read_file(const char *path, size_t max, char **out, size_t *len, ck_error_t *err) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return ck_error_set(err, CK_EIO, "cannot open %s: %s", path, strerror(errno));
  ck_buf_t b = {0};
  char chunk[8192];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
    if (b.len + n > max) {
      fclose(f);
      ck_buf_free(&b);
      return ck_error_set(err, CK_ETOOBIG, "%s is larger than %zu bytes", path, max);
    }
    ck_buf_append(&b, chunk, n);
  }
  int rd_err = ferror(f);
  fclose(f);
  if (rd_err) {
    ck_buf_free(&b);
    return ck_error_set(err, CK_EIO, "cannot read %s", path);
  }
  if (b.oom) {
    ck_buf_free(&b);
    return ck_error_set(err, CK_ENOMEM, "out of memory reading %s", path);
  }
  *len = b.len;
  *out = ck_buf_steal(&b);
  return 0;
}

static char *resolve_path(const char *dir, const char *p) {
  if (!p || p[0] == '/' || !dir)
    return p ? strdup(p) : NULL;
  if (p[0] == '~' && p[1] == '/') {
    const char *home = getenv("HOME");
    if (home) {
      size_t n = strlen(home) + strlen(p);
      char *o = malloc(n + 1);
      if (o)
        snprintf(o, n + 1, "%s%s", home, p + 1);
      return o;
    }
  }
  size_t n = strlen(dir) + strlen(p) + 2;
  char *o = malloc(n);
  if (o)
    snprintf(o, n, "%s/%s", dir, p);
  return o;
}

/* Which part of the kubeconfig a message is about. */
static int cfail(ctx_t *c, const kfile_t *f, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int cfail(ctx_t *c, const kfile_t *f, int code, const char *fmt, ...) {
  char what[700];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  char where[400] = "";
  size_t w = 0;
  if (c->context)
    w += (size_t)snprintf(where + w, sizeof where - w, "context \"%s\": ", c->context);
  if (c->cluster && w < sizeof where)
    w += (size_t)snprintf(where + w, sizeof where - w, "cluster \"%s\": ", c->cluster);
  if (c->user && w < sizeof where)
    snprintf(where + w, sizeof where - w, "user \"%s\": ", c->user);
  /* Not about one file (a name missing from all of them): name them all. */
  ck_buf_t files = {0};
  if (f)
    ck_buf_puts(&files, f->path);
  for (size_t i = 0; !f && i < c->nfiles; i++)
    ck_buf_printf(&files, "%s%s", i ? ":" : "", c->files[i].path);
  int rc = ck_error_set(c->err, code, "kubeconfig %s: %s%s", files.data ? files.data : "(none)",
                        where, what);
  ck_buf_free(&files);
  return rc;
}

/* Fetch an optional string field; a present non-string is an error. */
static int opt_str(ctx_t *c, const kfile_t *f, json_t *obj, const char *key, const char **out) {
  json_t *v = json_object_get(obj, key);
  *out = NULL;
  if (!v || json_is_null(v))
    return 0;
  if (!json_is_string(v))
    return cfail(c, f, CK_ECONFIG, "%s: must be a string", key);
  *out = json_string_value(v);
  if (!**out)
    *out = NULL;
  return 0;
}

static int opt_bool(ctx_t *c, const kfile_t *f, json_t *obj, const char *key, bool *out) {
  json_t *v = json_object_get(obj, key);
  *out = false;
  if (!v || json_is_null(v))
    return 0;
  if (!json_is_boolean(v))
    return cfail(c, f, CK_ECONFIG, "%s: must be true or false", key);
  *out = json_is_true(v);
  return 0;
}

/* Find the first named entry of `list` ("clusters", ...) across files. */
static json_t *find_named(ctx_t *c, const char *list, const char *name, const kfile_t **from) {
  for (size_t i = 0; i < c->nfiles; i++) {
    json_t *arr = json_object_get(c->files[i].doc, list);
    size_t k;
    json_t *e;
    json_array_foreach(arr, k, e) {
      json_t *n = json_object_get(e, "name");
      if (json_is_string(n) && strcmp(json_string_value(n), name) == 0) {
        *from = &c->files[i];
        return e;
      }
    }
  }
  return NULL;
}

/* Inline data (base64) or a file path, into bytes. */
static int load_blob(ctx_t *c, const kfile_t *f, json_t *obj, const char *file_key,
                     const char *data_key, unsigned char **out, size_t *len) {
  const char *data, *path;
  int rc;
  if ((rc = opt_str(c, f, obj, data_key, &data)) || (rc = opt_str(c, f, obj, file_key, &path)))
    return rc;
  *out = NULL;
  *len = 0;
  if (data) {
    if (ck_base64_decode(data, out, len) != 0)
      return cfail(c, f, CK_ECONFIG, "%s: not valid base64", data_key);
    return 0;
  }
  if (path) {
    char *full = resolve_path(f->dir, path);
    if (!full)
      return cfail(c, f, CK_ENOMEM, "out of memory");
    char *buf;
    ck_error_t e;
    rc = ck_read_file(full, 16u << 20, &buf, len, &e);
    free(full);
    if (rc)
      return cfail(c, f, CK_ECONFIG, "%s: %s", file_key, e.message);
    *out = (unsigned char *)buf;
  }
  return 0;
}

static int check_ca(ctx_t *c, const kfile_t *f, const unsigned char *pem, size_t len) {
  BIO *bio = BIO_new_mem_buf(pem, (int)len);
  STACK_OF(X509_INFO) *infos = bio ? PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL) : NULL;
  int n = 0;
  for (int i = 0; infos && i < sk_X509_INFO_num(infos); i++)
    if (sk_X509_INFO_value(infos, i)->x509)
      n++;
  if (infos)
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
  BIO_free(bio);
  ERR_clear_error();
  if (n == 0)
    return cfail(c, f, CK_ECONFIG, "certificate-authority: no PEM certificate found");
  return 0;
}

int ck_check_cert_key(const unsigned char *cert, size_t cert_len, const unsigned char *key,
                      size_t key_len, ck_error_t *err) {
  BIO *cb = BIO_new_mem_buf(cert, (int)cert_len);
  BIO *kb = BIO_new_mem_buf(key, (int)key_len);
  X509 *x = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
  EVP_PKEY *k = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
  int rc = 0;
  if (!x)
    rc = ck_error_set(err, CK_ECONFIG, "client certificate: no PEM certificate found");
  else if (!k)
    rc = ck_error_set(err, CK_ECONFIG, "client key: no PEM private key found");
  else if (X509_check_private_key(x, k) != 1)
    rc = ck_error_set(err, CK_ECONFIG, "client key does not match the client certificate");
  X509_free(x);
  EVP_PKEY_free(k);
  BIO_free(cb);
  BIO_free(kb);
  ERR_clear_error();
  return rc;
}

static char **str_list(json_t *arr, bool env_pairs, int *bad) {
  size_t n = json_array_size(arr), k;
  char **o = calloc(n + 1, sizeof *o);
  json_t *e;
  *bad = 0;
  if (!o)
    return NULL;
  json_array_foreach(arr, k, e) {
    if (env_pairs) {
      const char *name = json_string_value(json_object_get(e, "name"));
      const char *value = json_string_value(json_object_get(e, "value"));
      if (!name || !*name || strchr(name, '=')) {
        *bad = 1;
        break;
      }
      size_t len = strlen(name) + (value ? strlen(value) : 0) + 2;
      if ((o[k] = malloc(len)))
        snprintf(o[k], len, "%s=%s", name, value ? value : "");
    } else {
      if (!json_is_string(e)) {
        *bad = 1;
        break;
      }
      o[k] = strdup(json_string_value(e));
    }
    if (!o[k]) {
      *bad = 2;
      break;
    }
  }
  if (*bad) {
    ck_strv_free(o);
    return NULL;
  }
  return o;
}

static int load_exec(ctx_t *c, const kfile_t *f, json_t *ex, ck_exec_config_t **out) {
  if (!json_is_object(ex))
    return cfail(c, f, CK_ECONFIG, "exec: must be a mapping");
  const char *api, *cmd, *hint, *mode;
  int rc;
  if ((rc = opt_str(c, f, ex, "apiVersion", &api)) || (rc = opt_str(c, f, ex, "command", &cmd)) ||
      (rc = opt_str(c, f, ex, "installHint", &hint)) ||
      (rc = opt_str(c, f, ex, "interactiveMode", &mode)))
    return rc;
  if (!cmd)
    return cfail(c, f, CK_ECONFIG, "exec.command: required");
  if (!api)
    return cfail(c, f, CK_ECONFIG, "exec.apiVersion: required");
  if (strcmp(api, "client.authentication.k8s.io/v1") != 0 &&
      strcmp(api, "client.authentication.k8s.io/v1beta1") != 0)
    return cfail(c, f, CK_ECONFIG,
                 "exec.apiVersion: \"%s\" is not supported (use client.authentication.k8s.io/v1 "
                 "or v1beta1; v1alpha1 was removed in Kubernetes 1.24)",
                 api);
  if (strcmp(api, "client.authentication.k8s.io/v1") == 0 && !mode)
    return cfail(c, f, CK_ECONFIG, "exec.interactiveMode: required for client.authentication.k8s.io/v1");
  if (mode && strcmp(mode, "Never") != 0 && strcmp(mode, "IfAvailable") != 0 &&
      strcmp(mode, "Always") != 0)
    return cfail(c, f, CK_ECONFIG, "exec.interactiveMode: \"%s\" is not Never, IfAvailable or Always",
                 mode);
  if (mode && strcmp(mode, "Always") == 0)
    return cfail(c, f, CK_ECONFIG,
                 "exec.interactiveMode: Always needs a terminal, which an operator does not have");
  json_t *args = json_object_get(ex, "args"), *env = json_object_get(ex, "env");
  if (args && !json_is_null(args) && !json_is_array(args))
    return cfail(c, f, CK_ECONFIG, "exec.args: must be a list of strings");
  if (env && !json_is_null(env) && !json_is_array(env))
    return cfail(c, f, CK_ECONFIG, "exec.env: must be a list of {name, value}");
  bool pci = false;
  if ((rc = opt_bool(c, f, ex, "provideClusterInfo", &pci)))
    return rc;
  ck_exec_config_t *e = calloc(1, sizeof *e);
  if (!e)
    return cfail(c, f, CK_ENOMEM, "out of memory");
  int bad_args = 0, bad_env = 0;
  e->api_version = strdup(api);
  e->command = strdup(cmd);
  e->install_hint = hint ? strdup(hint) : NULL;
  e->interactive_mode = mode ? strdup(mode) : NULL;
  e->provide_cluster_info = pci;
  e->base_dir = f->dir ? strdup(f->dir) : NULL;
  e->args = str_list(args, false, &bad_args);
  e->env = str_list(env, true, &bad_env);
  *out = e;
  if (bad_args == 1)
    return cfail(c, f, CK_ECONFIG, "exec.args: must be a list of strings");
  if (bad_env == 1)
    return cfail(c, f, CK_ECONFIG, "exec.env: each entry needs a name (without '=') and a value");
  if (!e->api_version || !e->command || !e->args || !e->env || (hint && !e->install_hint))
    return cfail(c, f, CK_ENOMEM, "out of memory");
  return 0;
}

/* ---- building a config from parsed files ---------------------------- */

static int load_cluster(ctx_t *c, ck_config_t *cfg) {
  const kfile_t *f = NULL;
  json_t *entry = find_named(c, "clusters", c->cluster, &f);
  if (!entry)
    return cfail(c, NULL, CK_ECONFIG, "no cluster named \"%s\" in any kubeconfig file",
                 c->cluster);
  json_t *cl = json_object_get(entry, "cluster");
  if (!json_is_object(cl))
    return cfail(c, f, CK_ECONFIG, "cluster: missing or not a mapping");
  const char *server, *tsn, *proxy;
  int rc;
  if ((rc = opt_str(c, f, cl, "server", &server)) ||
      (rc = opt_str(c, f, cl, "tls-server-name", &tsn)) ||
      (rc = opt_str(c, f, cl, "proxy-url", &proxy)) ||
      (rc = opt_bool(c, f, cl, "insecure-skip-tls-verify", &cfg->insecure_skip_tls_verify)))
    return rc;
  if (!server)
    return cfail(c, f, CK_ECONFIG, "server: required");
  if (strncmp(server, "https://", 8) != 0 && strncmp(server, "http://", 7) != 0)
    return cfail(c, f, CK_ECONFIG, "server: \"%s\" is not an http(s) URL", server);
  cfg->server = strdup(server);
  if (cfg->server) {
    size_t n = strlen(cfg->server);
    while (n > 0 && cfg->server[n - 1] == '/')
      cfg->server[--n] = '\0';
  }
  cfg->tls_server_name = tsn ? strdup(tsn) : NULL;
  cfg->proxy_url = proxy ? strdup(proxy) : NULL;
  if ((rc = load_blob(c, f, cl, "certificate-authority", "certificate-authority-data",
                      &cfg->ca_pem, &cfg->ca_pem_len)))
    return rc;
  if (cfg->ca_pem && cfg->insecure_skip_tls_verify)
    return cfail(c, f, CK_ECONFIG,
                 "insecure-skip-tls-verify: cannot be combined with a certificate authority");
  if (cfg->ca_pem && (rc = check_ca(c, f, cfg->ca_pem, cfg->ca_pem_len)))
    return rc;
  if (cfg->insecure_skip_tls_verify)
    CK_WARN("kubeconfig", NULL,
            "%s: cluster \"%s\" sets insecure-skip-tls-verify: the server's certificate "
            "is not checked",
            f->path, c->cluster);
  return 0;
}

static int load_user(ctx_t *c, ck_config_t *cfg) {
  if (!c->user)
    return 0; /* anonymous */
  const kfile_t *f = NULL;
  json_t *entry = find_named(c, "users", c->user, &f);
  if (!entry)
    return cfail(c, NULL, CK_ECONFIG, "no user named \"%s\" in any kubeconfig file", c->user);
  json_t *u = json_object_get(entry, "user");
  if (json_is_null(u) || !u)
    return 0;
  if (!json_is_object(u))
    return cfail(c, f, CK_ECONFIG, "user: not a mapping");
  json_t *ap = json_object_get(u, "auth-provider");
  if (ap && !json_is_null(ap)) {
    const char *name = json_string_value(json_object_get(ap, "name"));
    return cfail(c, f, CK_ECONFIG,
                 "auth-provider \"%s\" is not supported: the gcp and azure providers were removed "
                 "from kubectl in 1.26; use an exec plugin (gke-gcloud-auth-plugin, kubelogin, "
                 "aws eks get-token)",
                 name ? name : "?");
  }
  if (json_object_get(u, "username") || json_object_get(u, "password"))
    return cfail(c, f, CK_ECONFIG,
                 "username/password: basic authentication was removed from Kubernetes in 1.19; "
                 "use a client certificate, a token or an exec plugin");
  if (json_object_get(u, "as") || json_object_get(u, "as-groups") ||
      json_object_get(u, "as-uid") || json_object_get(u, "as-user-extra"))
    return cfail(c, f, CK_ECONFIG, "as/as-groups: impersonation is not supported");
  int rc;
  if ((rc = load_blob(c, f, u, "client-certificate", "client-certificate-data", &cfg->cert_pem,
                      &cfg->cert_pem_len)) ||
      (rc = load_blob(c, f, u, "client-key", "client-key-data", &cfg->key_pem,
                      &cfg->key_pem_len)))
    return rc;
  if (!!cfg->cert_pem != !!cfg->key_pem)
    return cfail(c, f, CK_ECONFIG, "%s given without %s",
                 cfg->cert_pem ? "client-certificate" : "client-key",
                 cfg->cert_pem ? "client-key" : "client-certificate");
  if (cfg->cert_pem) {
    ck_error_t e;
    if (ck_check_cert_key(cfg->cert_pem, cfg->cert_pem_len, cfg->key_pem, cfg->key_pem_len, &e))
      return cfail(c, f, CK_ECONFIG, "%s", e.message);
  }
  const char *token, *token_file;
  if ((rc = opt_str(c, f, u, "token", &token)) || (rc = opt_str(c, f, u, "tokenFile", &token_file)))
    return rc;
  cfg->token = token ? strdup(token) : NULL;
  if (token_file) {
    cfg->token_file = resolve_path(f->dir, token_file);
    if (access(cfg->token_file, R_OK) != 0)
      return cfail(c, f, CK_ECONFIG, "tokenFile: cannot read %s: %s", cfg->token_file,
                   strerror(errno));
  }
  json_t *ex = json_object_get(u, "exec");
  if (ex && !json_is_null(ex) && (rc = load_exec(c, f, ex, &cfg->exec)))
    return rc;
  return 0;
}

static int build(ctx_t *c, const ck_config_opts_t *opts, ck_config_t **out) {
  const char *ctxname = opts ? opts->context : NULL;
  const kfile_t *cf = NULL;
  for (size_t i = 0; i < c->nfiles; i++) {
    json_t *d = c->files[i].doc;
    if (!json_is_object(d))
      return cfail(c, &c->files[i], CK_ECONFIG, "not a kubeconfig (the top level is not a mapping)");
    const char *kind = json_string_value(json_object_get(d, "kind"));
    if (kind && strcmp(kind, "Config") != 0)
      return cfail(c, &c->files[i], CK_ECONFIG, "kind: \"%s\", expected Config", kind);
    static const char *const lists[] = {"clusters", "users", "contexts"};
    for (size_t k = 0; k < 3; k++) {
      json_t *l = json_object_get(d, lists[k]);
      if (l && !json_is_null(l) && !json_is_array(l))
        return cfail(c, &c->files[i], CK_ECONFIG, "%s: must be a list", lists[k]);
    }
    if (!ctxname) {
      const char *cc;
      int rc = opt_str(c, &c->files[i], d, "current-context", &cc);
      if (rc)
        return rc;
      ctxname = cc;
    }
  }
  if (!ctxname)
    return cfail(c, c->nfiles == 1 ? &c->files[0] : NULL, CK_ECONFIG,
                 "no current-context is set and no context was given (--context)");
  c->context = ctxname;
  json_t *centry = find_named(c, "contexts", ctxname, &cf);
  if (!centry)
    return cfail(c, NULL, CK_ECONFIG, "context not found in any kubeconfig file");
  json_t *cx = json_object_get(centry, "context");
  if (!json_is_object(cx))
    return cfail(c, cf, CK_ECONFIG, "context: missing or not a mapping");
  const char *cluster, *user, *ns;
  int rc;
  if ((rc = opt_str(c, cf, cx, "cluster", &cluster)) || (rc = opt_str(c, cf, cx, "user", &user)) ||
      (rc = opt_str(c, cf, cx, "namespace", &ns)))
    return rc;
  if (!cluster)
    return cfail(c, cf, CK_ECONFIG, "cluster: required in the context");
  c->cluster = cluster;
  c->user = user;

  ck_config_t *cfg = calloc(1, sizeof *cfg);
  if (!cfg)
    return cfail(c, NULL, CK_ENOMEM, "out of memory");
  if ((rc = load_cluster(c, cfg)) || (rc = load_user(c, cfg))) {
    ck_config_free(cfg);
    return rc;
  }
  const char *nsv = opts && opts->namespace_ ? opts->namespace_ : ns ? ns : "default";
  cfg->namespace_ = strdup(nsv);
  cfg->context = strdup(ctxname);
  ck_buf_t src = {0};
  for (size_t i = 0; i < c->nfiles; i++)
    ck_buf_printf(&src, "%s%s", i ? ":" : "", c->files[i].path);
  cfg->source = ck_buf_steal(&src);
  if (!cfg->server || !cfg->namespace_ || !cfg->context || !cfg->source) {
    ck_config_free(cfg);
    return cfail(c, NULL, CK_ENOMEM, "out of memory");
  }
  *out = cfg;
  return 0;
}

static void free_files(kfile_t *files, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(files[i].path);
    free(files[i].dir);
    json_decref(files[i].doc);
  }
  free(files);
}

static int parse_doc(const char *data, size_t len, const char *source, json_t **doc,
                     ck_error_t *err) {
  ck_yaml_opts_t yo = {.schema = CK_YAML_11, .max_depth = 64, .max_nodes = 200000};
  int rc = ck_yaml_to_json(data, len, &yo, doc, err);
  if (rc)
    return ck_error_prefix(err, "kubeconfig %s: ", source), ck_error_set_code(err, CK_ECONFIG);
  if (json_is_null(*doc)) {
    json_decref(*doc);
    *doc = json_object(); /* an empty file is an empty config */
  }
  return 0;
}

int ck_config_from_kubeconfig(const char *data, size_t len, const char *source,
                              const ck_config_opts_t *opts, ck_config_t **out, ck_error_t *err) {
  *out = NULL;
  kfile_t *f = calloc(1, sizeof *f);
  if (!f)
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  f->path = strdup(source ? source : "<memory>");
  if (source) {
    char *tmp = strdup(source);
    f->dir = tmp ? strdup(dirname(tmp)) : NULL;
    free(tmp);
  }
  int rc = parse_doc(data, len, f->path ? f->path : "<memory>", &f->doc, err);
  if (rc == 0) {
    ctx_t c = {.files = f, .nfiles = 1, .err = err};
    rc = build(&c, opts, out);
  }
  free_files(f, 1);
  return rc;
}

static int load_paths(const char *list, bool explicit_, const ck_config_opts_t *opts,
                      ck_config_t **out, ck_error_t *err) {
  char *copy = strdup(list);
  if (!copy)
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  kfile_t *files = NULL;
  size_t n = 0;
  int rc = 0;
  char *save = NULL;
  for (char *p = strtok_r(copy, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
    if (!*p)
      continue;
    bool dup = false;
    for (size_t i = 0; i < n; i++)
      dup = dup || strcmp(files[i].path, p) == 0;
    if (dup)
      continue;
    struct stat st;
    if (stat(p, &st) != 0 && errno == ENOENT && !explicit_)
      continue; /* kubectl ignores missing files in KUBECONFIG */
    char *data = NULL;
    size_t len = 0;
    ck_error_t e;
    if (ck_read_file(p, 16u << 20, &data, &len, &e) != 0) {
      rc = ck_error_set(err, CK_ECONFIG, "kubeconfig: %s", e.message);
      break;
    }
    kfile_t *nf = realloc(files, (n + 1) * sizeof *nf);
    if (!nf) {
      free(data);
      rc = ck_error_set(err, CK_ENOMEM, "out of memory");
      break;
    }
    files = nf;
    kfile_t *f = &files[n++];
    *f = (kfile_t){.path = strdup(p)};
    char *tmp = strdup(p);
    f->dir = tmp ? strdup(dirname(tmp)) : NULL;
    free(tmp);
    rc = parse_doc(data, len, p, &f->doc, err);
    free(data);
    if (rc)
      break;
  }
  if (rc == 0 && n == 0)
    rc = ck_error_set(err, CK_ECONFIG, "kubeconfig: none of the files in \"%s\" exists", list);
  if (rc == 0) {
    ctx_t c = {.files = files, .nfiles = n, .err = err};
    rc = build(&c, opts, out);
  }
  free_files(files, n);
  free(copy);
  return rc;
}

int ck_config_load(const ck_config_opts_t *opts, ck_config_t **out, ck_error_t *err) {
  *out = NULL;
  if (opts && opts->kubeconfig && *opts->kubeconfig)
    return load_paths(opts->kubeconfig, true, opts, out, err);
  const char *env = getenv("KUBECONFIG");
  if (env && *env)
    return load_paths(env, false, opts, out, err);
  const char *home = getenv("HOME");
  if (home) {
    char path[4096];
    snprintf(path, sizeof path, "%s/.kube/config", home);
    if (access(path, F_OK) == 0)
      return load_paths(path, true, opts, out, err);
  }
  if (opts && opts->no_in_cluster)
    return ck_error_set(err, CK_ECONFIG,
                        "no kubeconfig: pass --kubeconfig, set KUBECONFIG or create ~/.kube/config");
  int rc = ck_config_in_cluster(out, err);
  if (rc == 0 && opts && opts->namespace_) {
    char *ns = strdup(opts->namespace_);
    if (!ns) {
      ck_config_free(*out);
      *out = NULL;
      return ck_error_set(err, CK_ENOMEM, "out of memory");
    }
    free((*out)->namespace_);
    (*out)->namespace_ = ns;
  }
  if (rc == CK_ECONFIG)
    ck_error_prefix(err, "no kubeconfig (--kubeconfig, KUBECONFIG, ~/.kube/config) and not "
                         "in a cluster: ");
  return rc;
}

static void exec_free(ck_exec_config_t *e) {
  if (!e)
    return;
  free(e->api_version);
  free(e->command);
  ck_strv_free(e->args);
  ck_strv_free(e->env);
  free(e->install_hint);
  free(e->interactive_mode);
  free(e->base_dir);
  free(e);
}

void ck_config_free(ck_config_t *cfg) {
  if (!cfg)
    return;
  free(cfg->server);
  free(cfg->tls_server_name);
  free(cfg->proxy_url);
  free(cfg->ca_pem);
  free(cfg->cert_pem);
  if (cfg->key_pem)
    OPENSSL_cleanse(cfg->key_pem, cfg->key_pem_len);
  free(cfg->key_pem);
  if (cfg->token)
    OPENSSL_cleanse(cfg->token, strlen(cfg->token));
  free(cfg->token);
  free(cfg->token_file);
  exec_free(cfg->exec);
  free(cfg->namespace_);
  free(cfg->context);
  free(cfg->source);
  free(cfg);
}

static bool dup_str(char **dst, const char *src) {
  if (!src)
    return true;
  *dst = strdup(src);
  return *dst != NULL;
}

static bool dup_blob(unsigned char **dst, size_t *dlen, const unsigned char *src, size_t len) {
  if (!src)
    return true;
  *dst = malloc(len + 1);
  if (!*dst)
    return false;
  memcpy(*dst, src, len);
  (*dst)[len] = '\0';
  *dlen = len;
  return true;
}

ck_config_t *ck_config_dup(const ck_config_t *s) {
  ck_config_t *d = calloc(1, sizeof *d);
  if (!d)
    return NULL;
  d->insecure_skip_tls_verify = s->insecure_skip_tls_verify;
  d->in_cluster = s->in_cluster;
  bool ok = dup_str(&d->server, s->server) && dup_str(&d->tls_server_name, s->tls_server_name) &&
            dup_str(&d->proxy_url, s->proxy_url) &&
            dup_blob(&d->ca_pem, &d->ca_pem_len, s->ca_pem, s->ca_pem_len) &&
            dup_blob(&d->cert_pem, &d->cert_pem_len, s->cert_pem, s->cert_pem_len) &&
            dup_blob(&d->key_pem, &d->key_pem_len, s->key_pem, s->key_pem_len) &&
            dup_str(&d->token, s->token) && dup_str(&d->token_file, s->token_file) &&
            dup_str(&d->namespace_, s->namespace_) && dup_str(&d->context, s->context) &&
            dup_str(&d->source, s->source);
  if (ok && s->exec) {
    ck_exec_config_t *e = calloc(1, sizeof *e);
    d->exec = e;
    ok = e && dup_str(&e->api_version, s->exec->api_version) &&
         dup_str(&e->command, s->exec->command) &&
         dup_str(&e->install_hint, s->exec->install_hint) &&
         dup_str(&e->interactive_mode, s->exec->interactive_mode) &&
         dup_str(&e->base_dir, s->exec->base_dir) && (e->args = ck_strv_dup(s->exec->args)) &&
         (e->env = ck_strv_dup(s->exec->env));
    if (e)
      e->provide_cluster_info = s->exec->provide_cluster_info;
  }
  if (!ok) {
    ck_config_free(d);
    return NULL;
  }
  return d;
}
