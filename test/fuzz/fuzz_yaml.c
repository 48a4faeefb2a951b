/* YAML -> JSON with both schemas and small bounds (alias bombs, depth). */
#include "util/yaml.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  for (int schema = 0; schema < 2; schema++) {
    ck_yaml_opts_t o = {.schema = (ck_yaml_schema_t)schema, .max_nodes = 20000, .max_depth = 40,
                        .multi_doc = schema == 1};
    json_t *out = NULL;
    ck_error_t err;
    if (ck_yaml_to_json((const char *)data, size, &o, &out, &err) == 0) {
      char *s = json_dumps(out, JSON_ENCODE_ANY);
      free(s);
      json_decref(out);
    }
  }
  return 0;
}
