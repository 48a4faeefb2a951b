/* The parse cache's slots, for the merge (private to the aws-auth core;
 * the public half, aa_cache_new/clear/free/hits, is in awsauth.h). */
#ifndef AA_CACHE_H
#define AA_CACHE_H
#include "awsauth.h"

/* The slot of kind k whose text is exactly text[0..len), counted as a
 * hit, or -1. */
int aa_cache_find(aa_cache_t *cache, aa_kind_t k, const char *text, size_t len);

/* Move *list (the parse of text) into a slot of kind k other than `keep`
 * (the slot a merge in progress borrows; -1: none), replacing the least
 * recently used. Returns the slot, or -1 when out of memory (*list then
 * stays the caller's). On success *list is zeroed: the cache owns it. */
int aa_cache_put(aa_cache_t *cache, aa_kind_t k, const char *text, size_t len, aa_list_t *list,
                 int keep);

/* The list held in a slot: borrowed, valid until that slot is replaced
 * (aa_cache_put with another keep) or the cache is cleared. */
const aa_list_t *aa_cache_list(const aa_cache_t *cache, aa_kind_t k, int slot);

#endif
