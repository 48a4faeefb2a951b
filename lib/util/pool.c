#include "util/pool.h"

#include <stdint.h>
#include <sys/mman.h>

#define CHUNK_BYTES ((size_t)256 * 1024)
#define ALIGN ((size_t)16)
/* A block larger than this gets a chunk of its own, so that a few large
 * objects do not leave most of a shared chunk dead when they go. */
#define BIG (CHUNK_BYTES / 4)

struct ck_pool_chunk {
  ck_pool_chunk_t *prev, *next;
  size_t size; /* mapped bytes, header included */
  size_t used; /* offset of the first free byte */
  size_t live; /* bytes of blocks not released */
};

#define HEADER ((sizeof(ck_pool_chunk_t) + ALIGN - 1) & ~(ALIGN - 1))

static size_t round_up(size_t n, size_t to) {
  return (n + to - 1) / to * to;
}

static ck_pool_chunk_t *chunk_new(ck_pool_t *p, size_t size) {
  void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED)
    return NULL;
  ck_pool_chunk_t *c = m;
  *c = (ck_pool_chunk_t){.size = size, .used = HEADER, .next = p->all};
  if (p->all)
    p->all->prev = c;
  p->all = c;
  p->mapped += size;
  return c;
}

static void chunk_unmap(ck_pool_t *p, ck_pool_chunk_t *c) {
  if (c->prev)
    c->prev->next = c->next;
  else
    p->all = c->next;
  if (c->next)
    c->next->prev = c->prev;
  if (p->cur == c)
    p->cur = NULL;
  p->mapped -= c->size;
  p->used -= c->used - HEADER;
  munmap(c, c->size);
}

void *ck_pool_alloc(ck_pool_t *p, size_t n, ck_pool_chunk_t **chunk) {
  if (n == 0 || n > SIZE_MAX / 2)
    return NULL;
  n = round_up(n, ALIGN);
  ck_pool_chunk_t *c = p->cur;
  if (n > BIG) {
    c = chunk_new(p, round_up(HEADER + n, 4096));
  } else if (!c || c->size - c->used < n) {
    ck_pool_chunk_t *old = p->cur;
    c = chunk_new(p, CHUNK_BYTES);
    if (c) {
      p->cur = c;
      if (old && old->live == 0)
        chunk_unmap(p, old);
    }
  }
  if (!c)
    return NULL;
  void *b = (char *)c + c->used;
  c->used += n;
  c->live += n;
  p->used += n;
  p->live += n;
  *chunk = c;
  return b;
}

void ck_pool_release(ck_pool_t *p, ck_pool_chunk_t *c, size_t n) {
  if (!c)
    return;
  n = round_up(n, ALIGN);
  c->live -= n;
  p->live -= n;
  if (c->live)
    return;
  if (c != p->cur) {
    chunk_unmap(p, c);
    return;
  }
  /* The chunk being filled is empty again: start it over. */
  p->used -= c->used - HEADER;
  c->used = HEADER;
}

int ck_pool_wasteful(const ck_pool_t *p, size_t slack) {
  size_t dead = p->used - p->live;
  return dead >= slack && dead * 3 > p->used;
}

void ck_pool_clear(ck_pool_t *p) {
  while (p->all)
    chunk_unmap(p, p->all);
  *p = (ck_pool_t){0};
}
