/* The aws-auth reconciler: every change of an AWSAuth object or of the
 * aws-auth ConfigMap queues one key, and one reconcile merges the whole
 * set (the core in merge.c decides; this file reads, writes and reports). */
#include "operator.h"

#include "awsauth_crd.h"
#include "crdkit/crd.h"
#include "crdkit/log.h"
#include "crdkit/manager.h"
#include "crdkit/metrics.h"
#include "crdkit/objects.h"
#include "util/parallel.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMP "aws-auth"
#define THE_KEY "aws-auth" /* every event maps to this one key */

typedef struct op {
  const aa_run_opts_t *o;
  const char *cm_ns, *cm_name;
  ck_resource_t res;
  ck_informer_t *objs;
  ck_manager_t *m;
  pthread_mutex_t mu;
  json_t *last_known; /* the last aws-auth seen or written */
  json_t *history;    /* the history ConfigMap as last written (reconciles run one at a
                         time: THE_KEY), so a save needs no GET first */
  ck_series_t *writes, *conflicts, *repairs, *parse_errors, *owned, *foreign, *invalid,
      *conflicted, *bytes, *blocked;
} op_t;

static int collect(void *ctx, json_t *obj) {
  return json_array_append(ctx, obj);
}

/* Per-object keys would each redo the same merge: only THE_KEY is queued. */
static bool no_object_keys(void *ctx, ck_informer_event_t ev, const json_t *old,
                           const json_t *obj) {
  (void)ctx;
  (void)ev;
  (void)old;
  (void)obj;
  return false;
}

static void to_the_key(void *ctx, const json_t *obj, ck_map_emit_fn emit, void *ectx) {
  (void)ctx;
  (void)obj;
  emit(ectx, THE_KEY);
}

/* ---- history ------------------------------------------------------------- */

/* Keep the previous data of aws-auth in <name>-history (keys rev-<seq>,
 * the newest `keep`), so `crdkit aws-auth restore` can put it back. */
static int history_save(op_t *op, ck_client_t *c, const json_t *live, ck_error_t *err) {
  char hname[300];
  snprintf(hname, sizeof hname, "%s-history", op->cm_name);
  int keep = op->o->history > 0 ? op->o->history : 10;
  json_t *data = json_object_get(live, "data");
  char *text = json_dumps(data ? data : json_object(), JSON_COMPACT | JSON_SORT_KEYS);
  if (!text)
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  for (int attempt = 0; attempt < 5; attempt++) {
    json_t *h = NULL;
    ck_error_t e = {0};
    int rc = 0;
    bool create = false;
    if (op->history) { /* ours from the last save; a conflict below reads it afresh */
      h = json_deep_copy(op->history);
      rc = h ? 0 : ck_error_set(&e, CK_ENOMEM, "out of memory");
    } else {
      rc = ck_object_get(c, &ck_res_configmaps, op->cm_ns, hname, NULL, &h, &e);
      create = rc == CK_EAPI && ck_error_is_not_found(&e);
    }
    if (rc != 0 && !create) {
      free(text);
      *err = e;
      return rc;
    }
    if (create)
      h = json_pack("{s:s,s:s,s:{s:s,s:s},s:{}}", "apiVersion", "v1", "kind", "ConfigMap",
                    "metadata", "name", hname, "namespace", op->cm_ns, "data");
    json_t *hd = json_object_get(h, "data");
    if (!json_is_object(hd)) {
      hd = json_object();
      json_object_set_new(h, "data", hd);
    }
    long top = 0;
    const char *k;
    json_t *v;
    json_object_foreach(hd, k, v) {
      long n = strncmp(k, "rev-", 4) == 0 ? strtol(k + 4, NULL, 10) : 0;
      if (n > top)
        top = n;
    }
    char nk[32];
    snprintf(nk, sizeof nk, "rev-%06ld", top + 1);
    json_object_set_new(hd, nk, json_string(text));
    char old[32];
    snprintf(old, sizeof old, "rev-%06ld", top + 1 - keep);
    if (top + 1 - keep > 0)
      json_object_del(hd, old);
    json_t *out = NULL;
    rc = create ? ck_object_create(c, &ck_res_configmaps, op->cm_ns, h, NULL, &out, &e)
                : ck_object_replace(c, &ck_res_configmaps, op->cm_ns, hname, h, NULL, &out, &e);
    json_decref(h);
    json_decref(op->history);
    op->history = rc == 0 ? out : NULL;
    if (rc != 0)
      json_decref(out);
    if (rc == 0) {
      free(text);
      return 0;
    }
    if (!(ck_error_is_conflict(&e) || ck_error_is_already_exists(&e))) {
      free(text);
      *err = e;
      return rc;
    }
  }
  free(text);
  return ck_error_set(err, CK_EAPI, "%s/%s: kept conflicting", op->cm_ns, hname);
}

/* ---- status ---------------------------------------------------------------- */

static void cond(json_t *status, const char *type, bool on, const char *reason,
                 const char *msg, int64_t gen) {
  ck_condition_t c = {.type = type,
                      .status = on ? "True" : "False",
                      .reason = reason,
                      .message = msg ? msg : "",
                      .observed_generation = gen};
  ck_condition_set(status, &c, 0);
}

static json_t *build_status(const op_t *op, const json_t *obj, const aa_obj_status_t *st,
                            const aa_result_t *r, bool wrote_or_clean, const char *write_err) {
  json_t *old = json_object_get(obj, "status");
  json_t *s = json_is_object(old) ? json_deep_copy(old) : json_object();
  int64_t g = st->generation;
  json_object_set_new(s, "observedGeneration", json_integer(g));
  json_object_set_new(s, "type", json_string(aa_kind_key(st->kind)));
  json_object_set_new(s, "entries", json_integer((json_int_t)st->entries));
  json_object_set_new(s, "arns", st->arns ? json_incref(st->arns) : json_array());
  json_object_set_new(s, "warnings", st->warnings ? json_incref(st->warnings) : json_array());
  cond(s, "Invalid", !st->valid, st->valid ? "Valid" : "InvalidSpec", st->invalid_msg, g);
  cond(s, "Conflicted", st->conflicted, st->conflicted ? "ArnConflict" : "NoConflict",
       st->conflict_msg, g);
  cond(s, "Suspended", st->suspended, st->suspended ? "Suspended" : "Active", NULL, g);
  const char *deg = r->blocked ? r->blocked_msg : write_err;
  cond(s, "Degraded", deg != NULL, r->blocked ? aa_block_reason(r->blocked)
                                              : (write_err ? "WriteFailed" : "Healthy"),
       deg, g);
  char msg[512];
  bool ready = st->valid && !st->conflicted && !st->suspended && !deg && wrote_or_clean &&
               !op->o->dry_run;
  const char *reason = "Applied";
  if (!st->valid)
    reason = "Invalid";
  else if (st->conflicted)
    reason = "Conflicted";
  else if (st->suspended)
    reason = "Suspended";
  else if (deg)
    reason = "Degraded";
  else if (op->o->dry_run)
    reason = "DryRun";
  snprintf(msg, sizeof msg, ready ? "%zu entries in %s/%s" : "%zu entries applied; see the other conditions",
           st->entries, op->cm_ns, op->cm_name);
  cond(s, "Ready", ready, reason, msg, g);
  return s;
}

/* ---- the reconcile ------------------------------------------------------- */

static void log_diff(op_t *op, const json_t *live, const aa_result_t *r) {
  json_t *d = json_object_get(live, "data");
  const char *roles = json_string_value(json_object_get(d, "mapRoles"));
  const char *users = json_string_value(json_object_get(d, "mapUsers"));
  if (r->map_roles && (!roles || strcmp(roles, r->map_roles) != 0))
    CK_INFO(COMP, op->cm_name, "dry-run: mapRoles would change\n--- live\n%s\n+++ new\n%s",
            roles ? roles : "", r->map_roles);
  if (r->map_users && (!users || strcmp(users, r->map_users) != 0))
    CK_INFO(COMP, op->cm_name, "dry-run: mapUsers would change\n--- live\n%s\n+++ new\n%s",
            users ? users : "", r->map_users);
}

/* Requests to the apiserver in flight at once for per-object work
 * (finalizers, statuses). */
#define PARALLEL 16

typedef struct fin_job {
  op_t *op;
  ck_client_t *c;
  json_t *objects; /* read only here */
  json_t **out;    /* [i]: the object after its finalizer was added */
} fin_job_t;

static void finalizer_job(void *ctx, size_t i) {
  fin_job_t *j = ctx;
  json_t *obj = json_array_get(j->objects, i);
  if (ck_obj_is_deleting(obj) || ck_finalizer_has(obj, AA_DEFAULT_FINALIZER))
    return;
  json_t *out = NULL;
  ck_error_t err = {0};
  if (ck_finalizer_add(j->c, &j->op->res, obj, AA_DEFAULT_FINALIZER, &out, &err) == 0 && out) {
    ck_informer_observe(j->op->objs, out);
    j->out[i] = out;
    return;
  }
  if (!ck_error_is_not_found(&err))
    CK_WARN(COMP, ck_obj_name(obj), "adding the finalizer: %s", err.message);
  json_decref(out);
}

typedef struct status_job {
  op_t *op;
  ck_client_t *c;
  ck_reconcile_t *rc;
  json_t *objects;
  const aa_result_t *r;
  bool clean;
  const char *write_err;
} status_job_t;

/* One object's part after the merge: its finalizer released when it is
 * being deleted and its entries are gone, else its status and Events. */
static void status_job(void *ctx, size_t i) {
  status_job_t *j = ctx;
  op_t *op = j->op;
  const aa_result_t *r = j->r;
  const aa_obj_status_t *st = &r->objs[i];
  json_t *obj = json_array_get(j->objects, i);
  ck_error_t err = {0};
  json_t *out = NULL;
  if (st->deleting) {
    bool release = st->has_finalizer && !r->blocked && !op->o->dry_run &&
                   (st->release_now || (st->release_after_write && j->clean));
    if (release && ck_finalizer_remove(j->c, &op->res, obj, AA_DEFAULT_FINALIZER, &out, &err) != 0)
      CK_WARN(COMP, st->name, "removing the finalizer: %s", err.message);
    json_decref(out);
    return;
  }
  json_t *status = build_status(op, obj, st, r, j->clean, j->write_err);
  if (ck_status_update(j->c, &op->res, obj, status, &out, &err) == 0) {
    if (out)
      ck_informer_observe(op->objs, out);
  } else if (!ck_error_is_not_found(&err) && !ck_error_is_conflict(&err)) {
    CK_WARN(COMP, st->name, "status: %s", err.message);
  }
  if (!st->valid)
    ck_reconcile_event(j->rc, obj, "Warning", "Invalid", "%s", st->invalid_msg);
  else if (st->conflicted)
    ck_reconcile_event(j->rc, obj, "Warning", "Conflicted", "%s", st->conflict_msg);
  else if (r->blocked)
    ck_reconcile_event(j->rc, obj, "Warning", "Blocked", "%s", r->blocked_msg);
  json_decref(status);
  json_decref(out);
}

static ck_result_t reconcile(void *ctx, ck_reconcile_t *rc) {
  op_t *op = ctx;
  ck_client_t *c = ck_reconcile_client(rc);
  ck_error_t err = {0};
  json_t *objects = json_array();
  ck_informer_list(op->objs, NULL, collect, objects);

  /* Finalizers first: an object's entries are written only once its
   * delete can no longer be missed. The patches go out in parallel (one
   * HTTP/2 connection carries them all): a burst of new objects costs one
   * round trip per PARALLEL objects, not one per object. */
  fin_job_t fj = {.op = op, .c = c, .objects = objects,
                  .out = calloc(json_array_size(objects) + 1, sizeof(json_t *))};
  if (fj.out) {
    ck_parallel_for(json_array_size(objects), PARALLEL, finalizer_job, &fj);
    for (size_t i = 0; i < json_array_size(objects); i++)
      if (fj.out[i])
        json_array_set_new(objects, i, fj.out[i]);
    free(fj.out);
  }

  json_t *live = NULL;
  int r0 = ck_object_get(c, &ck_res_configmaps, op->cm_ns, op->cm_name, NULL, &live, &err);
  if (r0 != 0 && !ck_error_is_not_found(&err)) {
    CK_WARN(COMP, op->cm_name, "reading %s/%s: %s", op->cm_ns, op->cm_name, err.message);
    json_decref(objects);
    return ck_fail();
  }
  pthread_mutex_lock(&op->mu);
  json_t *last_known = json_incref(op->last_known);
  pthread_mutex_unlock(&op->mu);
  aa_opts_t ao = {.max_removals = op->o->max_removals, .drift = op->o->drift,
                  .last_known = live ? NULL : last_known};
  aa_result_t *r = NULL;
  if (aa_reconcile(live, objects, &ao, &r, &err) != 0) {
    CK_ERROR(COMP, op->cm_name, "merge: %s", err.message);
    json_decref(objects);
    json_decref(live);
    json_decref(last_known);
    return ck_fail();
  }
  ck_series_set(op->owned, (double)r->owned);
  ck_series_set(op->foreign, (double)r->foreign);
  ck_series_set(op->bytes, (double)r->data_bytes);
  if (r->parse_error) {
    ck_series_inc(op->parse_errors);
    CK_WARN(COMP, op->cm_name, "live %s/%s: %s", op->cm_ns, op->cm_name, r->parse_error);
  }

  bool wrote = false, conflict = false;
  char write_err[512] = "";
  if (r->blocked) {
    ck_series_inc(op->blocked);
    CK_WARN(COMP, op->cm_name, "not writing %s/%s: %s", op->cm_ns, op->cm_name, r->blocked_msg);
  } else if (r->write_needed && op->o->dry_run) {
    log_diff(op, live, r);
  } else if (r->write_needed && !live && op->o->no_create_configmap) {
    snprintf(write_err, sizeof write_err,
             "%s/%s does not exist and --no-create-configmap is set", op->cm_ns, op->cm_name);
  } else if (r->write_needed) {
    json_t *next = NULL;
    int w = aa_apply(live, last_known, r, &next, &err);
    if (w == 0) {
      json_t *md = json_object_get(next, "metadata");
      json_object_set_new(md, "name", json_string(op->cm_name));
      json_object_set_new(md, "namespace", json_string(op->cm_ns));
      if (live && history_save(op, c, live, &err) != 0)
        CK_WARN(COMP, op->cm_name, "saving history: %s", err.message);
      json_t *out = NULL;
      w = live ? ck_object_replace(c, &ck_res_configmaps, op->cm_ns, op->cm_name, next, NULL,
                                   &out, &err)
               : ck_object_create(c, &ck_res_configmaps, op->cm_ns, next, NULL, &out, &err);
      if (w == 0) {
        wrote = true;
        ck_series_inc(op->writes);
        if (r->repaired)
          ck_series_add(op->repairs, (double)r->repaired);
        CK_INFO(COMP, op->cm_name,
                "wrote %s/%s: %zu owned, %zu foreign entries (+%zu ~%zu -%zu, %zu repaired)",
                op->cm_ns, op->cm_name, r->owned, r->foreign, r->added, r->updated, r->removed,
                r->repaired);
        pthread_mutex_lock(&op->mu);
        json_decref(op->last_known);
        op->last_known = json_incref(out);
        pthread_mutex_unlock(&op->mu);
      } else if (ck_error_is_conflict(&err) || ck_error_is_already_exists(&err)) {
        conflict = true;
        ck_series_inc(op->conflicts);
      } else {
        snprintf(write_err, sizeof write_err, "writing %s/%s: %s", op->cm_ns, op->cm_name,
                 err.message);
      }
      json_decref(out);
    } else {
      snprintf(write_err, sizeof write_err, "building %s/%s: %s", op->cm_ns, op->cm_name,
               err.message);
    }
    json_decref(next);
  }
  if (live && !wrote) {
    pthread_mutex_lock(&op->mu);
    json_decref(op->last_known);
    op->last_known = json_incref(live);
    pthread_mutex_unlock(&op->mu);
  }
  if (write_err[0])
    CK_WARN(COMP, op->cm_name, "%s", write_err);

  if (!conflict) {
    size_t ninvalid = 0, nconflicted = 0;
    for (size_t i = 0; i < r->nobjs; i++) {
      ninvalid += !r->objs[i].valid;
      nconflicted += r->objs[i].conflicted;
    }
    status_job_t sj = {.op = op, .c = c, .rc = rc, .objects = objects, .r = r,
                       .clean = wrote || !r->write_needed,
                       .write_err = write_err[0] ? write_err : NULL};
    size_t n = r->nobjs < json_array_size(objects) ? r->nobjs : json_array_size(objects);
    ck_parallel_for(n, PARALLEL, status_job, &sj);
    ck_series_set(op->invalid, (double)ninvalid);
    ck_series_set(op->conflicted, (double)nconflicted);
  }
  bool failed = write_err[0] != '\0';
  aa_result_free(r);
  json_decref(objects);
  json_decref(live);
  json_decref(last_known);
  if (conflict)
    return ck_requeue();
  return failed ? ck_fail() : ck_done();
}

/* ---- run ------------------------------------------------------------------ */

static void register_metrics(op_t *op, ck_metrics_t *mx) {
#define GAUGE(n, h) ck_metric_series0(ck_metrics_family(mx, CK_METRIC_GAUGE, n, h, NULL, NULL, 0))
#define COUNTER(n, h)                                                                              \
  ck_metric_series0(ck_metrics_family(mx, CK_METRIC_COUNTER, n, h, NULL, NULL, 0))
  op->writes = COUNTER("awsauth_configmap_writes_total", "Writes of the aws-auth ConfigMap");
  op->conflicts = COUNTER("awsauth_write_conflicts_total", "aws-auth writes refused with 409");
  op->repairs = COUNTER("awsauth_drift_repairs_total", "Owned entries repaired after drift");
  op->parse_errors =
      COUNTER("awsauth_live_parse_errors_total", "Reconciles that found aws-auth unparsable");
  op->blocked = COUNTER("awsauth_blocked_total", "Writes refused by a safety interlock");
  op->owned = GAUGE("awsauth_owned_entries", "Entries owned by AWSAuth objects");
  op->foreign = GAUGE("awsauth_foreign_entries", "Entries no AWSAuth owns (kept as they are)");
  op->invalid = GAUGE("awsauth_invalid_objects", "AWSAuth objects marked Invalid");
  op->conflicted = GAUGE("awsauth_conflicted_objects", "AWSAuth objects marked Conflicted");
  op->bytes = GAUGE("awsauth_configmap_bytes", "Size of aws-auth's data (the limit is 1 MiB)");
#undef GAUGE
#undef COUNTER
}

int aa_operator_run(const aa_run_opts_t *o, ck_error_t *err) {
  op_t op = {.o = o,
             .cm_ns = o->configmap_ns ? o->configmap_ns : "kube-system",
             .cm_name = o->configmap_name ? o->configmap_name : "aws-auth"};
  pthread_mutex_init(&op.mu, NULL);
  ck_config_opts_t co = {.kubeconfig = o->kubeconfig, .context = o->context};
  ck_config_t *cfg = NULL;
  ck_client_t *client = NULL;
  ck_manager_t *m = NULL;
  int rc = ck_config_load(&co, &cfg, err);
  if (rc == 0)
    rc = ck_client_new(cfg, NULL, &client, err);
  if (rc == 0)
    rc = ck_crd_resource(&awsauth_crd, NULL, &op.res, err);
  if (rc == 0 && o->create_crd) {
    rc = ck_crd_install(client, &awsauth_crd, 60000, err);
    if (rc == 0)
      CK_INFO(COMP, NULL, "CRD awsauths.crdkit.io installed");
  }
  static const char *const default_ns[] = {"kube-system"};
  ck_manager_opts_t mo = {
      .name = "aws-auth",
      .namespaces = o->all_namespaces ? NULL : (o->nnamespaces ? o->namespaces : default_ns),
      .nnamespaces = o->all_namespaces ? 0 : (o->nnamespaces ? o->nnamespaces : 1),
      .metrics_addr = o->metrics_addr,
      .probe_addr = o->probe_addr,
      .leader_elect = o->leader_elect,
      .lease_namespace = op.cm_ns,
  };
  if (rc == 0)
    rc = ck_manager_new(client, &mo, &m, err);
  ck_controller_t *ctl = NULL;
  ck_controller_opts_t cto = {.name = "aws-auth", .primary = &op.res, .reconcile = reconcile,
                              .ctx = &op, .filter = no_object_keys};
  if (rc == 0)
    rc = ck_manager_add_controller(m, &cto, &ctl, err);
  char field[400];
  snprintf(field, sizeof field, "metadata.name=%s", op.cm_name);
  ck_informer_t *cms = NULL;
  if (rc == 0) {
    op.objs = ck_controller_informer(ctl);
    op.m = m;
    register_metrics(&op, ck_manager_metrics(m));
    cms = ck_manager_informer_in(m, &ck_res_configmaps, op.cm_ns, NULL, field, err);
    rc = cms ? 0 : err->code;
  }
  if (rc == 0)
    rc = ck_controller_watches_informer(ctl, op.objs, to_the_key, NULL, err);
  if (rc == 0)
    rc = ck_controller_watches_informer(ctl, cms, to_the_key, NULL, err);
  if (rc == 0) {
    CK_INFO(COMP, NULL, "merging AWSAuth objects into %s/%s%s", op.cm_ns, op.cm_name,
            o->dry_run ? " (dry run: nothing is written)" : "");
    rc = ck_manager_run(m, err);
  }
  ck_manager_free(m);
  ck_client_free(client);
  ck_config_free(cfg);
  json_decref(op.last_known);
  json_decref(op.history);
  pthread_mutex_destroy(&op.mu);
  return rc;
}
