/* The aws-auth merge on its own (no apiserver): N AWSAuth objects as the
 * cache returns them, merged into an empty aws-auth (the first write of
 * W4), then merged again into that result (a restart: nothing to write).
 * Then churn, the steady state of W5: CHURN merges in a row with the
 * parse cache, each after one object changed (a new object, the others
 * the same as before, as the snapshot memo hands them out), into what the
 * merge before wrote; each merge also encodes its ConfigMap (the request
 * body) and parses it back (the answer), with the client's encoder and
 * reader, as the operator does.
 * usage: bench-merge [N] [ROUNDS] [CHURN]
 * Prints one JSON line: objects, seconds per merge (median and min over
 * the rounds; churn: over its merges) for each case, the bytes written,
 * seconds to encode the request body of the first write and to read it
 * back (median of 21; the client's encoder and reader, and jansson's,
 * alternated), peak RSS. */
#include "awsauth.h"
#include "bench_util.h"
#include "util/jsonin.h"
#include "util/jsonout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* What an AWSAuth of the W4 workload looks like once cached. */
static json_t *object(int i) {
  char name[32], arn[96], user[48], uid[40];
  snprintf(name, sizeof name, "w4-%05d", i);
  snprintf(arn, sizeof arn, "arn:aws:iam::111122223333:role/%s", name);
  snprintf(user, sizeof user, "u-%s", name);
  snprintf(uid, sizeof uid, "6eb8d6be-9f40-4c5f-83f5-%012d", i);
  return json_pack("{s:s,s:s,s:{s:s,s:s,s:s,s:i,s:s,s:s,s:[s]},s:{s:s,s:[{s:s,s:s,s:[s]}],s:b,s:b}}",
                   "apiVersion", "crdkit.io/v1alpha1", "kind", "AWSAuth", "metadata", "name", name,
                   "namespace", "perf", "uid", uid, "generation", 1, "resourceVersion", "1000",
                   "creationTimestamp", "2026-12-06T12:00:00Z", "finalizers", AA_DEFAULT_FINALIZER,
                   "spec", "deletionPolicy", "Delete", "mapRoles", "rolearn", arn, "username", user,
                   "groups", "g", "suspend", 0, "takeOver", 0);
}

/* One merge; *out (may be NULL) gets the ConfigMap to write. */
static double merge_with(const json_t *live, const json_t *objects, aa_cache_t *cache,
                         json_t **out) {
  aa_opts_t o = {.max_removals = -1, .cache = cache};
  aa_result_t *r = NULL;
  ck_error_t err = {0};
  double t0 = bench_now_s();
  if (aa_reconcile(live, objects, &o, &r, &err) != 0) {
    fprintf(stderr, "merge: %s\n", err.message);
    exit(1);
  }
  json_t *next = NULL;
  if (r->write_needed && aa_apply(live, NULL, r, &next, &err) != 0) {
    fprintf(stderr, "apply: %s\n", err.message);
    exit(1);
  }
  double t = bench_now_s() - t0;
  aa_result_free(r);
  if (out)
    *out = next;
  else
    json_decref(next);
  return t;
}

static double merge(const json_t *live, const json_t *objects, json_t **out) {
  return merge_with(live, objects, NULL, out);
}

/* churn merges into live (taken); each changes object i's username.
 * Fills per[] with the seconds of each. */
static void churn(json_t *live, json_t *objects, int merges, double *per) {
  aa_cache_t *cache = aa_cache_new();
  size_t n = json_array_size(objects);
  for (int m = 0; m < merges; m++) {
    size_t i = ((size_t)m * 7919) % n;
    json_t *o = json_deep_copy(json_array_get(objects, i));
    json_t *e = json_array_get(json_object_get(json_object_get(o, "spec"), "mapRoles"), 0);
    char user[48];
    snprintf(user, sizeof user, "churn-%d", m);
    json_object_set_new(e, "username", json_string(user));
    json_array_set_new(objects, i, o);
    double t0 = bench_now_s();
    json_t *next = NULL;
    merge_with(live, objects, cache, &next);
    if (!next) {
      fprintf(stderr, "churn: merge %d wrote nothing\n", m);
      exit(1);
    }
    size_t blen = 0;
    char *body = ck_json_dumps(next, &blen); /* as the client encodes and reads */
    json_t *back = body ? ck_json_loadb(body, blen, false, NULL) : NULL;
    per[m] = bench_now_s() - t0;
    if (!back) {
      fprintf(stderr, "churn: encoding merge %d failed\n", m);
      exit(1);
    }
    free(body);
    json_decref(next);
    json_decref(live);
    live = back;
  }
  json_decref(live);
  aa_cache_free(cache);
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 10000;
  int rounds = argc > 2 ? atoi(argv[2]) : 5;
  int merges = argc > 3 ? atoi(argv[3]) : 200;
  if (n < 1 || rounds < 1 || merges < 1) {
    fprintf(stderr, "usage: bench-merge [N >= 1] [ROUNDS >= 1] [CHURN >= 1]\n");
    return 2;
  }
  json_t *objects = json_array();
  for (int i = 0; i < n; i++)
    json_array_append_new(objects, object(i));
  double *first = calloc((size_t)rounds, sizeof *first);
  double *again = calloc((size_t)rounds, sizeof *again);
  json_t *written = NULL;
  for (int r = 0; r < rounds; r++) {
    json_decref(written);
    written = NULL;
    first[r] = merge(NULL, objects, &written);
    again[r] = merge(written, objects, NULL);
  }
  size_t bytes = 0;
  const char *k;
  json_t *v;
  json_object_foreach(json_object_get(written, "data"), k, v) bytes += json_string_length(v);
  size_t ann_bytes = 0;
  json_object_foreach(json_object_get(json_object_get(written, "metadata"), "annotations"), k, v)
      ann_bytes += json_string_length(v);
  char *body = json_dumps(written, JSON_COMPACT);
  size_t body_bytes = body ? strlen(body) : 0;
  free(body);
  /* The request body of that write, encoded and read back: the client's
   * encoder and reader, and jansson's, alternated. */
  enum { ENCODES = 21 };
  double enc[2][ENCODES], dec[2][ENCODES];
  for (int r = 0; r < ENCODES; r++)
    for (int w = 0; w < 2; w++) {
      double t0 = bench_now_s();
      char *e = w ? json_dumps(written, JSON_COMPACT) : ck_json_dumps(written, NULL);
      enc[w][r] = bench_now_s() - t0;
      if (!e || strlen(e) != body_bytes) {
        fprintf(stderr, "encode: %s\n", e ? "a different length" : "failed");
        exit(1);
      }
      t0 = bench_now_s();
      json_t *d = w ? json_loadb(e, body_bytes, 0, NULL) : ck_json_loadb(e, body_bytes, false, NULL);
      dec[w][r] = bench_now_s() - t0;
      if (!d || !json_equal(d, written)) {
        fprintf(stderr, "decode: %s\n", d ? "a different tree" : "failed");
        exit(1);
      }
      json_decref(d);
      free(e);
    }
  for (int w = 0; w < 2; w++) {
    qsort(enc[w], ENCODES, sizeof(double), bench_cmp_double);
    qsort(dec[w], ENCODES, sizeof(double), bench_cmp_double);
  }
  qsort(first, (size_t)rounds, sizeof *first, bench_cmp_double);
  qsort(again, (size_t)rounds, sizeof *again, bench_cmp_double);
  double *per = calloc((size_t)merges, sizeof *per);
  churn(written, objects, merges, per); /* takes written */
  qsort(per, (size_t)merges, sizeof *per, bench_cmp_double);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("{\"bench\":\"merge\",\"objects\":%d,\"rounds\":%d,\"first_write_s\":%.4f,"
         "\"first_write_min_s\":%.4f,\"unchanged_s\":%.4f,\"unchanged_min_s\":%.4f,"
         "\"churn_merges\":%d,\"churn_s\":%.5f,\"churn_min_s\":%.5f,"
         "\"data_bytes\":%zu,\"annotation_bytes\":%zu,\"body_bytes\":%zu,"
         "\"encode_s\":%.5f,\"encode_jansson_s\":%.5f,\"decode_s\":%.5f,"
         "\"decode_jansson_s\":%.5f,\"max_rss_kib\":%ld}\n",
         n, rounds, first[rounds / 2], first[0], again[rounds / 2], again[0], merges,
         per[merges / 2], per[0], bytes, ann_bytes, body_bytes, enc[0][ENCODES / 2],
         enc[1][ENCODES / 2], dec[0][ENCODES / 2], dec[1][ENCODES / 2], ru.ru_maxrss);
  free(first);
  free(again);
  free(per);
  json_decref(objects);
  return 0;
}
