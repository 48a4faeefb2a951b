/* aws-auth core: arbitrary live data -> parse -> emit -> parse back must
 * give the identical JSON (or the emitter refuses); then a whole reconcile
 * over the same data must not crash or leak, and what it would write must
 * parse back to what it intends. */
#include "awsauth.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void roundtrip(aa_kind_t kind, const char *data, size_t size) {
  aa_list_t l;
  if (aa_list_parse(kind, data, size, &l) == 0) {
    char *text = NULL;
    if (aa_emit_list(l.doc, &text) == 0) {
      aa_list_t back;
      if (aa_list_parse(kind, text, strlen(text), &back) != 0 && strlen(text) <= AA_MAX_DATA_BYTES)
        __builtin_trap(); /* our own output must parse */
      if (back.rc == 0 && !json_equal(back.doc, l.doc))
        __builtin_trap(); /* and mean the same */
      aa_list_free(&back);
      free(text);
    }
  }
  aa_list_free(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *d = (const char *)data;
  roundtrip(AA_ROLES, d, size);
  roundtrip(AA_USERS, d, size);

  json_t *s = json_stringn(d, size); /* NULL for invalid UTF-8: key absent */
  json_t *live = json_pack("{s:{s:o*}}", "data", "mapRoles", s);
  json_t *objs = json_loads(
      "[{\"metadata\":{\"namespace\":\"kube-system\",\"name\":\"a\",\"uid\":\"u\","
      "\"creationTimestamp\":\"2024-01-01T00:00:00Z\"},\"spec\":{\"takeOver\":true,"
      "\"mapRoles\":[{\"rolearn\":\"arn:aws:iam::111122223333:role/admin\",\"username\":\"a\","
      "\"groups\":[\"system:masters\"]}]}}]",
      0, NULL);
  aa_result_t *r = NULL;
  if (live && objs && aa_reconcile(live, objs, NULL, &r, NULL) == 0) {
    if (r->map_roles) {
      aa_list_t back;
      if (aa_list_parse(AA_ROLES, r->map_roles, strlen(r->map_roles), &back) != 0)
        __builtin_trap();
      aa_list_free(&back);
    }
    json_t *cm = NULL;
    if (!r->blocked && aa_apply(live, NULL, r, &cm, NULL) == 0)
      json_decref(cm);
    aa_result_free(r);
  }
  json_decref(live);
  json_decref(objs);
  return 0;
}
