/* List, patch and watch ConfigMaps: crdkit's client in a few lines.
 * usage: configmaps NAMESPACE NAME   (uses KUBECONFIG / ~/.kube/config) */
#include <crdkit/client.h>
#include <crdkit/watch.h>
#include <stdio.h>
#include <stdlib.h>

static int show(void *ctx, json_t *cm) {
  (void)ctx;
  printf("%s\n", json_string_value(json_object_get(json_object_get(cm, "metadata"), "name")));
  return 0;
}

int main(int argc, char **argv) {
  ck_error_t err = {0};
  ck_config_t *cfg = NULL;
  ck_client_t *c = NULL;
  ck_watch_t *w = NULL;
  char *rv = NULL;
  ck_watch_event_t ev = {0};
  int rc = argc == 3 ? ck_config_load(NULL, &cfg, &err) : CK_EINVAL;
  if (!rc) rc = ck_client_new(cfg, NULL, &c, &err);
  if (!rc) rc = ck_object_list_each(c, &ck_res_configmaps, argv[1], NULL, show, NULL, &rv, &err);
  if (!rc) rc = ck_watch_open(c, &ck_res_configmaps, argv[1],
                              &(ck_watch_opts_t){.resource_version = rv}, &w, &err);
  if (!rc) rc = ck_object_patch(c, &ck_res_configmaps, argv[1], argv[2], CK_PATCH_MERGE,
                                "{\"data\":{\"patched\":\"yes\"}}", NULL, NULL, &err);
  while (!rc && !(rc = ck_watch_next(w, 10000, &ev, &err)) && ev.type != CK_WATCH_MODIFIED)
    ck_watch_event_clear(&ev);
  if (!rc) printf("watched: %s modified\n", argv[2]);
  else fprintf(stderr, "error: %s\n", argc == 3 ? err.message : "usage: configmaps NS NAME");
  ck_watch_event_clear(&ev);
  ck_watch_free(w), free(rv), ck_client_free(c), ck_config_free(cfg);
  return rc ? 1 : 0;
}
