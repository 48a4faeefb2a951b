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

/* The parse of obj (aa_object_parse with finalizer) kept by the merge
 * before, when obj is the very same json_t: *st a copy, *desired a new
 * reference. 1 found, 0 not, CK_ENOMEM. */
int aa_cache_object_get(aa_cache_t *cache, const json_t *obj, const char *finalizer,
                        aa_obj_status_t *st, json_t **desired);
/* Keep that parse for the next merge (copies st, holds obj and desired).
 * 0, or -1 when out of memory: not kept, which only costs a parse next
 * time. */
int aa_cache_object_put(aa_cache_t *cache, const json_t *obj, const char *finalizer,
                         const aa_obj_status_t *st, const json_t *desired);
/* End of a merge's reading: forget the objects it did not read. */
void aa_cache_object_sweep(aa_cache_t *cache);

/* The v1 ownership records (a JSON object) parsed from, or written as,
 * exactly text[0..len): borrowed, valid until the next put or clear; NULL
 * when not kept. Only records that passed the annotation's checks (or
 * that the merge built itself) are put. */
json_t *aa_cache_annotation_get(aa_cache_t *cache, const char *text, size_t len);
/* Keep recs (the cache takes a new reference) as the records of text; the
 * older of two kept texts goes. A failure only costs a parse next time. */
void aa_cache_annotation_put(aa_cache_t *cache, const char *text, size_t len, json_t *recs);

/* The entry that one entry's emitted text (exactly `text`, a block
 * "- ...\n") was found to parse back to by an emit of kind k before (so
 * equal to that text's parse: entries are never modified once built),
 * borrowed until the next sweep of k or clear; NULL when not kept. Marks
 * it as emitted again. */
const json_t *aa_cache_entry_get(aa_cache_t *cache, aa_kind_t k, const char *text);
/* Keep entry (the cache takes a new reference) as what text parses back
 * to. A failure only costs a parse next time. */
void aa_cache_entry_put(aa_cache_t *cache, aa_kind_t k, const char *text, json_t *entry);
/* The block text that this very entry (by address: the cache holds it,
 * and entries are never modified) was emitted as and found to parse back
 * to by an emit of kind k before, with its length in *len; borrowed until
 * the next sweep of k or clear; NULL when not kept. Marks it as emitted
 * again. */
const char *aa_cache_entry_text(aa_cache_t *cache, aa_kind_t k, const json_t *entry, size_t *len);
/* aa_entry_hash of an entry of kind k, kept with the entry's text when
 * one is (cache may be NULL: computed). */
void aa_cache_entry_hash(aa_cache_t *cache, aa_kind_t k, const json_t *entry, char out[17]);
/* End of an emit of kind k: forget the entries it did not emit. */
void aa_cache_entry_sweep(aa_cache_t *cache, aa_kind_t k);

#endif
