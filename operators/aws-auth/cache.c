/* Lists parsed by earlier merges, kept so that a merge whose live text is
 * one it parsed or wrote a moment ago does not parse it again: in a burst
 * each merge reads what the last one wrote, and the round-trip check of
 * that write has already parsed it. Two slots per kind (the text read and
 * the text written), least recently used replaced. */
#include "cache.h"

#include <stdlib.h>
#include <string.h>

#define CACHE_SLOTS 2

typedef struct cslot {
  char *text; /* NULL: empty */
  size_t len;
  aa_list_t list;
  uint64_t used; /* tick of the last use */
} cslot_t;

struct aa_cache {
  cslot_t s[2][CACHE_SLOTS];
  uint64_t tick;
  size_t hits;
};

aa_cache_t *aa_cache_new(void) {
  return calloc(1, sizeof(aa_cache_t));
}

size_t aa_cache_hits(const aa_cache_t *cache) {
  return cache ? cache->hits : 0;
}

static void cslot_clear(cslot_t *s) {
  free(s->text);
  aa_list_free(&s->list);
  memset(s, 0, sizeof *s);
}

void aa_cache_clear(aa_cache_t *cache) {
  if (!cache)
    return;
  for (int k = 0; k < 2; k++)
    for (int i = 0; i < CACHE_SLOTS; i++)
      cslot_clear(&cache->s[k][i]);
}

void aa_cache_free(aa_cache_t *cache) {
  aa_cache_clear(cache);
  free(cache);
}

int aa_cache_find(aa_cache_t *cache, aa_kind_t k, const char *text, size_t len) {
  for (int i = 0; i < CACHE_SLOTS; i++) {
    cslot_t *s = &cache->s[k][i];
    if (s->text && s->len == len && memcmp(s->text, text, len) == 0) {
      s->used = ++cache->tick;
      cache->hits++;
      return i;
    }
  }
  return -1;
}

int aa_cache_put(aa_cache_t *cache, aa_kind_t k, const char *text, size_t len, aa_list_t *list,
                 int keep) {
  char *copy = malloc(len + 1);
  if (!copy)
    return -1;
  memcpy(copy, text, len);
  copy[len] = '\0';
  int victim = -1;
  for (int i = 0; i < CACHE_SLOTS; i++)
    if (i != keep && (victim < 0 || cache->s[k][i].used < cache->s[k][victim].used))
      victim = i;
  cslot_t *s = &cache->s[k][victim];
  cslot_clear(s);
  s->text = copy;
  s->len = len;
  s->list = *list;
  s->used = ++cache->tick;
  memset(list, 0, sizeof *list);
  return victim;
}

const aa_list_t *aa_cache_list(const aa_cache_t *cache, aa_kind_t k, int slot) {
  return &cache->s[k][slot].list;
}
