#include "util/strmap.h"

#include "crdkit/error.h"

#include <stdlib.h>
#include <string.h>

/* FNV-1a: short keys ("namespace/name"), no adversarial input worth a
 * keyed hash (keys come from the API server the operator trusts). */
uint64_t ck_strhash(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    h ^= *p;
    h *= 1099511628211ULL;
  }
  return h ^ (h >> 29);
}

static size_t find(const ck_strmap_t *m, const char *key, uint64_t h, bool *found) {
  size_t mask = m->cap - 1;
  size_t i = (size_t)h & mask;
  for (;;) {
    const ck_strmap_slot_t *s = &m->slots[i];
    if (!s->key) {
      *found = false;
      return i;
    }
    if (s->hash == h && strcmp(s->key, key) == 0) {
      *found = true;
      return i;
    }
    i = (i + 1) & mask;
  }
}

void *ck_strmap_get(const ck_strmap_t *m, const char *key) {
  if (!m->len)
    return NULL;
  bool found;
  size_t i = find(m, key, ck_strhash(key), &found);
  return found ? m->slots[i].value : NULL;
}

static int grow(ck_strmap_t *m) {
  size_t ncap = m->cap ? m->cap * 2 : 16;
  ck_strmap_slot_t *ns = calloc(ncap, sizeof *ns);
  if (!ns)
    return CK_ENOMEM;
  ck_strmap_t n = {.slots = ns, .cap = ncap, .len = m->len};
  for (size_t i = 0; i < m->cap; i++) {
    if (!m->slots[i].key)
      continue;
    bool found;
    size_t j = find(&n, m->slots[i].key, m->slots[i].hash, &found);
    ns[j] = m->slots[i];
  }
  free(m->slots);
  *m = n;
  return 0;
}

int ck_strmap_put(ck_strmap_t *m, const char *key, void *value, void **old) {
  if (old)
    *old = NULL;
  /* Load factor at most 3/4: a hit takes 2.5 probes on average at the
   * worst, a miss 8.5, each a compare of the stored hash first; at 1/2,
   * the slot arrays of a large cache were a third bigger for little. */
  if ((m->len + 1) * 4 > m->cap * 3 && grow(m) != 0)
    return CK_ENOMEM;
  uint64_t h = ck_strhash(key);
  bool found;
  size_t i = find(m, key, h, &found);
  if (found) {
    if (old)
      *old = m->slots[i].value;
    m->slots[i].key = key;
    m->slots[i].value = value;
    return 0;
  }
  m->slots[i] = (ck_strmap_slot_t){.key = key, .value = value, .hash = h};
  m->len++;
  return 0;
}

bool ck_strmap_repoint(ck_strmap_t *m, const char *key, void *value) {
  if (!m->len)
    return false;
  bool found;
  size_t i = find(m, key, ck_strhash(key), &found);
  if (found) {
    m->slots[i].key = key;
    m->slots[i].value = value;
  }
  return found;
}

void ck_strmap_move(ck_strmap_t *m, void *(*fn)(void *ctx, void *value, const char **key),
                    void *ctx) {
  for (size_t i = 0; i < m->cap; i++)
    if (m->slots[i].key)
      m->slots[i].value = fn(ctx, m->slots[i].value, &m->slots[i].key);
}

void *ck_strmap_del(ck_strmap_t *m, const char *key) {
  if (!m->len)
    return NULL;
  bool found;
  size_t i = find(m, key, ck_strhash(key), &found);
  if (!found)
    return NULL;
  void *v = m->slots[i].value;
  size_t mask = m->cap - 1;
  /* Backward-shift: move later members of the run into the hole when
   * their home slot is not between the hole and their position. */
  size_t hole = i, j = i;
  for (;;) {
    j = (j + 1) & mask;
    if (!m->slots[j].key)
      break;
    size_t home = (size_t)m->slots[j].hash & mask;
    bool between = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (!between) {
      m->slots[hole] = m->slots[j];
      hole = j;
    }
  }
  m->slots[hole] = (ck_strmap_slot_t){0};
  m->len--;
  return v;
}

void ck_strmap_free(ck_strmap_t *m) {
  free(m->slots);
  *m = (ck_strmap_t){0};
}

bool ck_strmap_next(const ck_strmap_t *m, size_t *pos, const char **key, void **value) {
  while (*pos < m->cap) {
    const ck_strmap_slot_t *s = &m->slots[(*pos)++];
    if (s->key) {
      if (key)
        *key = s->key;
      if (value)
        *value = s->value;
      return true;
    }
  }
  return false;
}
