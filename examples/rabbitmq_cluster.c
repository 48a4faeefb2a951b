/* rabbitmq-cluster: RabbitmqCluster {size} -> an owned StatefulSet (with a
 * volume claim template) and a headless Service. A size change scales;
 * status reports the desired and the current size; deleting the cluster
 * lets the garbage collector remove the children (owner references).
 *
 *   example-rabbitmq-cluster --create-crd [--namespace NS] ...  (--help)
 */
#include <crdkit/objects.h>
#include <crdkit/operator.h>
#include <stdio.h>

static const ck_resource_t statefulsets = {"apps", "v1", "statefulsets", "StatefulSet", true};
static const ck_resource_t services = {"", "v1", "services", "Service", true};

static const ck_crd_field_t spec_fields[] = {
    {.name = "size", .type = CK_CRD_INTEGER, .description = "Number of RabbitMQ nodes.",
     .default_json = "1", .minimum = CK_CRD_NUM(1), .maximum = CK_CRD_NUM(9)},
    {.name = "image", .type = CK_CRD_STRING, .description = "Container image.",
     .default_json = "\"rabbitmq:3-management\"", .max_length = CK_CRD_INT(256)},
    {.name = "storage", .type = CK_CRD_STRING, .description = "Volume size per node.",
     .default_json = "\"1Gi\"", .pattern = "^[0-9]+(Mi|Gi|Ti)$"},
    {0},
};
static const ck_crd_field_t status_fields[] = {
    CK_HANDLER_STATUS_FIELDS,
    {.name = "desiredSize", .type = CK_CRD_INTEGER, .description = "spec.size, once applied."},
    {.name = "currentSize", .type = CK_CRD_INTEGER, .description = "Pods the StatefulSet has."},
    {.name = "readyNodes", .type = CK_CRD_INTEGER, .description = "Pods that are ready."},
    {0},
};
static const ck_crd_t crd = {
    .group = "examples.crdkit.io",
    .kind = "RabbitmqCluster",
    .plural = "rabbitmqclusters",
    .short_names = CK_CRD_LIST("rmq"),
    .versions = (const ck_crd_version_t[]){
        {.name = "v1", .served = true, .storage = true,
         .description = "A RabbitMQ cluster: a StatefulSet and a headless Service.",
         .spec = &(const ck_crd_field_t){.description = "Desired cluster.", .fields = spec_fields},
         .status = &(const ck_crd_field_t){.description = "Observed cluster.", .fields = status_fields},
         .status_subresource = true,
         .columns = (const ck_crd_column_t[]){
             {.name = "Desired", .type = "integer", .json_path = ".spec.size"},
             {.name = "Current", .type = "integer", .json_path = ".status.currentSize"},
             {.name = "Ready", .type = "string", .json_path = ".status.conditions[?(@.type==\"Ready\")].status"},
             {.name = "Age", .type = "date", .json_path = ".metadata.creationTimestamp"},
             {0}}},
        {0}},
};

/* Server-side apply of a child owned by the cluster. */
static int apply(ck_handler_t *h, const ck_resource_t *res, json_t *child) {
  ck_owner_ref_set(child, ck_handler_object(h), true);
  ck_error_t err = {0};
  json_t *out = NULL;
  ck_write_opts_t wo = {.field_manager = "rabbitmq-cluster", .force = true};
  const json_t *obj = ck_handler_object(h);
  int rc = ck_object_apply(ck_handler_client(h), res, ck_obj_namespace(obj), ck_obj_name(obj),
                           child, &wo, &out, &err);
  json_decref(child);
  if (rc != 0)
    ck_handler_log(h, CK_LOG_WARN, "%s: %s", res->kind, err.message);
  else
    ck_reconcile_observe(ck_handler_reconcile(h), res, out);
  json_decref(out);
  return rc;
}

/* Status from the StatefulSet in the cache. */
static void report(ck_handler_t *h) {
  const json_t *obj = ck_handler_object(h);
  json_t *sts = ck_reconcile_get_other(ck_handler_reconcile(h), &statefulsets,
                                       ck_obj_namespace(obj), ck_obj_name(obj));
  ck_handler_status_set(h, "currentSize", json_integer(ck_field_int(sts, "status.replicas", 0)));
  ck_handler_status_set(h, "readyNodes", json_integer(ck_field_int(sts, "status.readyReplicas", 0)));
  json_decref(sts);
}

static ck_outcome_t ensure(ck_handler_t *h, void *ctx) {
  (void)ctx;
  const char *name = ck_obj_name(ck_handler_object(h));
  const json_t *spec = ck_handler_spec(h);
  json_int_t size = ck_field_int(spec, "size", 1);
  json_t *labels = json_pack("{s:s}", "app.kubernetes.io/instance", name);
  json_t *svc = json_pack(
      "{s:s,s:s,s:{s:s},s:{s:s,s:b,s:O,s:[{s:s,s:i},{s:s,s:i}]}}", "apiVersion", "v1", "kind",
      "Service", "metadata", "name", name, "spec", "clusterIP", "None", "publishNotReadyAddresses",
      1, "selector", labels, "ports", "name", "amqp", "port", 5672, "name", "epmd", "port", 4369);
  json_t *sts = json_pack(
      "{s:s,s:s,s:{s:s},s:{s:s,s:s,s:I,s:{s:O},s:{s:{s:O},s:{s:[{s:s,s:s,s:[{s:i}],"
      "s:[{s:s,s:s}]}]}},s:[{s:{s:s},s:{s:[s],s:{s:{s:s}}}}]}}",
      "apiVersion", "apps/v1", "kind", "StatefulSet", "metadata", "name", name, "spec",
      "serviceName", name, "podManagementPolicy", "Parallel", /* nodes start together */
      "replicas", size, "selector", "matchLabels", labels, "template",
      "metadata", "labels", labels, "spec", "containers", "name", "rabbitmq", "image",
      ck_field_string(spec, "image", "rabbitmq:3-management"), "ports", "containerPort", 5672,
      "volumeMounts", "name", "data", "mountPath", "/var/lib/rabbitmq", "volumeClaimTemplates",
      "metadata", "name", "data", "spec", "accessModes", "ReadWriteOnce", "resources", "requests",
      "storage", ck_field_string(spec, "storage", "1Gi"));
  json_decref(labels);
  if (!svc || !sts) {
    json_decref(svc);
    json_decref(sts);
    return ck_retry(h, "out of memory");
  }
  if (apply(h, &services, svc) != 0 || apply(h, &statefulsets, sts) != 0)
    return ck_retry(h, "applying the children of %s failed (see the log)", name);
  ck_handler_status_set(h, "desiredSize", json_integer(size));
  report(h);
  ck_handler_log(h, CK_LOG_INFO, "cluster %s at size %lld", name, (long long)size);
  return ck_ok();
}

/* A child changed (pods came up): refresh the current size. */
static ck_outcome_t refresh(ck_handler_t *h, void *ctx) {
  (void)ctx;
  report(h);
  return ck_ok();
}

static const ck_resource_t *const owned[] = {&statefulsets, &services, NULL};

int main(int argc, char **argv) {
  static const ck_handlers_t handlers[] = {
      {.crd = &crd, .on_create = ensure, .on_update = ensure, .on_resume = ensure,
       .on_event = refresh, .owns = owned},
      {0}};
  ck_operator_t op = {
      .name = "rabbitmq-cluster",
      .version = "0.1.0",
      .description = "Runs RabbitmqCluster resources (examples.crdkit.io/v1) as a StatefulSet "
                     "and a headless Service each.",
      .crd = &crd,
      .handlers = handlers,
  };
  return ck_operator_main(argc, argv, &op);
}
