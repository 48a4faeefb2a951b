/* The commands that need no running operator: the CRD, an offline render
 * for CI pipelines, and restoring aws-auth from its history. */
#include "operator.h"

#include "awsauth_crd.h"
#include "crdkit/client.h"
#include "crdkit/crd.h"
#include "util/yaml.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define AA_MAX_INPUT (16u << 20)

int aa_print_crd(FILE *out, ck_error_t *err) {
  char *y = NULL;
  int rc = ck_crd_to_yaml(&awsauth_crd, &y, err);
  if (rc == 0)
    fputs(y, out);
  free(y);
  return rc;
}

static int read_all(const char *path, char **data, size_t *len, ck_error_t *err) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return ck_error_set(err, CK_EIO, "%s: %s", path, strerror(errno));
  size_t cap = 65536, n = 0;
  char *buf = malloc(cap);
  if (!buf) {
    fclose(f);
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  }
  for (;;) {
    if (n == cap) {
      if (cap >= AA_MAX_INPUT) {
        free(buf);
        fclose(f);
        return ck_error_set(err, CK_ETOOBIG, "%s: larger than 16 MiB", path);
      }
      char *nb = realloc(buf, cap *= 2);
      if (!nb) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = nb;
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0)
      break;
  }
  bool bad = ferror(f);
  fclose(f);
  if (!buf)
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  if (bad) {
    free(buf);
    return ck_error_set(err, CK_EIO, "%s: read error", path);
  }
  *data = buf;
  *len = n;
  return 0;
}

/* Every document of every file, as JSON; directories give their .yaml,
 * .yml and .json files in name order. */
static int load_docs(const char *path, json_t *docs, ck_error_t *err) {
  struct stat st;
  if (stat(path, &st) != 0)
    return ck_error_set(err, CK_EIO, "%s: %s", path, strerror(errno));
  if (S_ISDIR(st.st_mode)) {
    struct dirent **names = NULL;
    int n = scandir(path, &names, NULL, alphasort);
    if (n < 0)
      return ck_error_set(err, CK_EIO, "%s: %s", path, strerror(errno));
    int rc = 0;
    for (int i = 0; i < n; i++) {
      const char *nm = names[i]->d_name;
      size_t l = strlen(nm);
      bool want = (l > 5 && strcmp(nm + l - 5, ".yaml") == 0) ||
                  (l > 4 && strcmp(nm + l - 4, ".yml") == 0) ||
                  (l > 5 && strcmp(nm + l - 5, ".json") == 0);
      if (want && rc == 0) {
        char *p = NULL;
        if (asprintf(&p, "%s/%s", path, nm) < 0)
          rc = ck_error_set(err, CK_ENOMEM, "out of memory");
        else
          rc = load_docs(p, docs, err);
        free(p);
      }
      free(names[i]);
    }
    free(names);
    return rc;
  }
  char *data = NULL;
  size_t len = 0;
  int rc = read_all(path, &data, &len, err);
  if (rc != 0)
    return rc;
  json_t *all = NULL;
  ck_yaml_opts_t yo = {.schema = CK_YAML_CORE, .multi_doc = true};
  rc = ck_yaml_to_json(data, len, &yo, &all, err);
  free(data);
  if (rc != 0)
    return ck_error_prefix(err, "%s: ", path);
  for (size_t i = 0; i < json_array_size(all); i++) {
    json_t *d = json_array_get(all, i);
    if (json_is_object(d) && json_is_array(json_object_get(d, "items"))) { /* a List */
      json_array_extend(docs, json_object_get(d, "items"));
    } else if (!json_is_null(d)) {
      json_array_append(docs, d);
    }
  }
  json_decref(all);
  return 0;
}

int aa_render(const char *const *paths, size_t npaths, const char *live_path, FILE *out,
              FILE *diag, ck_error_t *err) {
  json_t *docs = json_array();
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < npaths; i++)
    rc = load_docs(paths[i], docs, err);
  json_t *live = NULL;
  if (rc == 0 && live_path) {
    json_t *l = json_array();
    rc = load_docs(live_path, l, err);
    if (rc == 0 && json_array_size(l) != 1)
      rc = ck_error_set(err, CK_EINVAL, "%s: expected one ConfigMap, found %zu documents",
                        live_path, json_array_size(l));
    if (rc == 0)
      live = json_incref(json_array_get(l, 0));
    json_decref(l);
  }
  json_t *objects = json_array();
  for (size_t i = 0; rc == 0 && i < json_array_size(docs); i++) {
    json_t *d = json_array_get(docs, i);
    const char *kind = json_string_value(json_object_get(d, "kind"));
    if (!kind || strcmp(kind, "AWSAuth") != 0)
      continue;
    json_t *o = json_deep_copy(d);
    json_t *md = json_object_get(o, "metadata");
    if (!json_is_object(md)) {
      md = json_object();
      json_object_set_new(o, "metadata", md);
    }
    if (!json_object_get(md, "namespace"))
      json_object_set_new(md, "namespace", json_string("kube-system"));
    /* Offline there is no creation time: file order decides who is oldest. */
    if (!json_object_get(md, "creationTimestamp")) {
      char ts[32];
      snprintf(ts, sizeof ts, "2000-01-01T%02zu:%02zu:%02zuZ", (i / 3600) % 24, (i / 60) % 60,
               i % 60);
      json_object_set_new(md, "creationTimestamp", json_string(ts));
    }
    json_array_append_new(objects, o);
  }
  aa_result_t *r = NULL;
  aa_opts_t ao = {.max_removals = -1, .allow_orphan_removal = true};
  if (rc == 0)
    rc = aa_reconcile(live, objects, &ao, &r, err);
  int verdict = 0;
  if (rc == 0) {
    for (size_t i = 0; i < r->nobjs; i++) {
      const aa_obj_status_t *st = &r->objs[i];
      if (!st->valid) {
        fprintf(diag, "%s/%s: invalid: %s\n", st->ns, st->name, st->invalid_msg);
        verdict = 1;
      } else if (st->conflicted) {
        fprintf(diag, "%s/%s: conflicted: %s\n", st->ns, st->name, st->conflict_msg);
        verdict = 1;
      }
      for (size_t w = 0; w < json_array_size(st->warnings); w++)
        fprintf(diag, "%s/%s: warning: %s\n", st->ns, st->name,
                json_string_value(json_array_get(st->warnings, w)));
    }
    if (r->blocked) {
      fprintf(diag, "blocked: %s\n", r->blocked_msg);
      verdict = 1;
    } else {
      json_t *cm = NULL;
      rc = aa_apply(live, NULL, r, &cm, err);
      if (rc == 0) {
        json_t *md = json_object_get(cm, "metadata");
        json_object_del(md, "resourceVersion");
        json_object_del(md, "uid");
        json_object_del(md, "creationTimestamp");
        json_object_del(md, "managedFields");
        char *y = ck_crd_json_to_yaml(cm);
        if (!y)
          rc = ck_error_set(err, CK_ENOMEM, "out of memory");
        else
          fputs(y, out);
        free(y);
      }
      json_decref(cm);
    }
  }
  aa_result_free(r);
  json_decref(objects);
  json_decref(docs);
  json_decref(live);
  return rc != 0 ? rc : verdict;
}

int aa_restore(const aa_run_opts_t *o, int revision, bool list, FILE *out, ck_error_t *err) {
  const char *ns = o->configmap_ns ? o->configmap_ns : "kube-system";
  const char *name = o->configmap_name ? o->configmap_name : "aws-auth";
  char hname[300];
  snprintf(hname, sizeof hname, "%s-history", name);
  ck_config_opts_t co = {.kubeconfig = o->kubeconfig, .context = o->context};
  ck_config_t *cfg = NULL;
  ck_client_t *c = NULL;
  json_t *h = NULL, *cm = NULL;
  int rc = ck_config_load(&co, &cfg, err);
  if (rc == 0)
    rc = ck_client_new(cfg, NULL, &c, err);
  if (rc == 0)
    rc = ck_object_get(c, &ck_res_configmaps, ns, hname, NULL, &h, err);
  json_t *hd = json_object_get(h, "data");
  const char *best = NULL;
  long best_n = 0;
  const char *k;
  json_t *v;
  if (rc == 0) {
    json_object_foreach(hd, k, v) {
      long n = aa_history_rev(k);
      if (n < 0)
        continue;
      if (list)
        fprintf(out, "%ld\t%zu bytes\n", n, strlen(json_string_value(v) ? json_string_value(v) : ""));
      if ((revision > 0 && n == revision) || (revision <= 0 && n > best_n)) {
        best = k;
        best_n = n;
      }
    }
    if (!list && !best)
      rc = ck_error_set(err, CK_EINVAL, "%s/%s: no revision %d (see --list)", ns, hname,
                        revision);
  }
  if (rc == 0 && !list) {
    json_t *old = json_loads(json_string_value(json_object_get(hd, best)), 0, NULL);
    rc = ck_object_get(c, &ck_res_configmaps, ns, name, NULL, &cm, err);
    if (rc == 0 && !json_is_object(old))
      rc = ck_error_set(err, CK_EPARSE, "%s/%s: %s is not a saved data object", ns, hname, best);
    if (rc == 0) {
      json_t *data = json_object_get(cm, "data");
      if (!json_is_object(data)) {
        data = json_object();
        json_object_set_new(cm, "data", data);
      }
      /* Only the keys the operator writes; mapAccounts and the rest stay. */
      static const char *const keys[] = {"mapRoles", "mapUsers"};
      for (size_t i = 0; i < 2; i++) {
        json_t *val = json_object_get(old, keys[i]);
        if (val)
          json_object_set(data, keys[i], val);
        else
          json_object_del(data, keys[i]);
      }
      rc = ck_object_replace(c, &ck_res_configmaps, ns, name, cm, NULL, NULL, err);
      if (rc == 0)
        fprintf(out,
                "restored %s/%s from %s/%s %s\n"
                "note: a running aws-auth operator puts back the entries its AWSAuth objects own "
                "(they are the source of truth); to restore those too, stop it or fix the "
                "objects first\n",
                ns, name, ns, hname, best);
    }
    json_decref(old);
  }
  json_decref(cm);
  json_decref(h);
  ck_client_free(c);
  ck_config_free(cfg);
  return rc;
}
