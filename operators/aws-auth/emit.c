/* Entries -> YAML text that YAML 1.1 reads back as exactly the same JSON.
 * Every string is double-quoted: a plain `yes`, `012`, `~` or a value with
 * an injected line break would otherwise change type or structure. */
#include "awsauth.h"
#include "cache.h"

#include "util/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Characters escaped although YAML would allow them raw: anything that
 * breaks a line for some reader (U+0085, U+2028/9), reorders or hides
 * text, or is not printable in YAML. */
static bool needs_escape(uint32_t c) {
  return c < 0x20 || (c >= 0x7f && c <= 0xa0) || c == 0x00ad || c == 0x034f || c == 0x061c ||
         c == 0x180e || (c >= 0x200b && c <= 0x200f) || (c >= 0x2028 && c <= 0x202f) ||
         (c >= 0x2060 && c <= 0x206f) || c == 0xfeff || (c >= 0xfff0 && c <= 0xffff) ||
         (c >= 0xe000 && c <= 0xf8ff) || (c >= 0xfe00 && c <= 0xfe0f) ||
         (c >= 0xe0000 && c <= 0xe0fff) || c >= 0xf0000;
}

static void put_quoted(ck_buf_t *b, const char *s, size_t len) {
  ck_buf_putc(b, '"');
  for (size_t i = 0; i < len;) {
    unsigned char ch = (unsigned char)s[i];
    uint32_t c;
    size_t n = aa_utf8_decode((const unsigned char *)s + i, len - i, &c);
    if (n == 0) { /* jansson strings are valid UTF-8; be safe anyway */
      ck_buf_printf(b, "\\x%02x", ch);
      i++;
      continue;
    }
    if (c == '"')
      ck_buf_puts(b, "\\\"");
    else if (c == '\\')
      ck_buf_puts(b, "\\\\");
    else if (c == '\n')
      ck_buf_puts(b, "\\n");
    else if (c == '\t')
      ck_buf_puts(b, "\\t");
    else if (c == '\r')
      ck_buf_puts(b, "\\r");
    else if (needs_escape(c))
      ck_buf_printf(b, c > 0xffff ? "\\U%08X" : "\\u%04X", (unsigned)c);
    else
      ck_buf_append(b, s + i, n);
    i += n;
  }
  ck_buf_putc(b, '"');
}

/* A mapping key that YAML 1.1 can only read as this same string when
 * plain: an identifier that is not a boolean or null word. */
static bool plain_key_ok(const char *k) {
  static const char *const words[] = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"};
  if (!((k[0] >= 'a' && k[0] <= 'z') || (k[0] >= 'A' && k[0] <= 'Z')))
    return false;
  for (const char *p = k; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
          *p == '_'))
      return false;
  for (size_t i = 0; i < sizeof words / sizeof *words; i++)
    if (strcasecmp(k, words[i]) == 0)
      return false;
  return true;
}

static int put_scalar(ck_buf_t *b, const json_t *v) {
  char num[64];
  switch (json_typeof(v)) {
  case JSON_STRING:
    put_quoted(b, json_string_value(v), json_string_length(v));
    return 0;
  case JSON_TRUE:
    ck_buf_puts(b, "true");
    return 0;
  case JSON_FALSE:
    ck_buf_puts(b, "false");
    return 0;
  case JSON_NULL:
    ck_buf_puts(b, "null");
    return 0;
  case JSON_INTEGER:
    ck_buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    return 0;
  case JSON_REAL: {
    /* %.17g round-trips a double; YAML 1.1 floats need a '.' to be read
     * as floats rather than as integers or strings. */
    snprintf(num, sizeof num, "%.17g", json_real_value(v));
    if (strspn(num, "-0123456789.e+") != strlen(num))
      return CK_EINVAL; /* inf/nan: jansson cannot hold them anyway */
    char *e = strchr(num, 'e');
    if (!strchr(num, '.')) {
      if (e) {
        char tail[32];
        snprintf(tail, sizeof tail, "%s", e);
        snprintf(e, sizeof num - (size_t)(e - num), ".0%s", tail);
      } else {
        strcat(num, ".0");
      }
    }
    ck_buf_puts(b, num);
    return 0;
  }
  default:
    return CK_EINVAL;
  }
}

/* Flow style for nested values: unambiguous and indentation-free. */
static int put_flow(ck_buf_t *b, const json_t *v) {
  if (json_is_array(v)) {
    ck_buf_putc(b, '[');
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
      if (i)
        ck_buf_puts(b, ", ");
      int rc = put_flow(b, x);
      if (rc)
        return rc;
    }
    ck_buf_putc(b, ']');
    return 0;
  }
  if (json_is_object(v)) {
    ck_buf_putc(b, '{');
    const char *k;
    json_t *x;
    bool first = true;
    json_object_foreach((json_t *)v, k, x) {
      if (!first)
        ck_buf_puts(b, ", ");
      first = false;
      put_quoted(b, k, strlen(k));
      ck_buf_puts(b, ": ");
      int rc = put_flow(b, x);
      if (rc)
        return rc;
    }
    ck_buf_putc(b, '}');
    return 0;
  }
  return put_scalar(b, v);
}

static int put_entry(ck_buf_t *b, const json_t *e) {
  if (!json_is_object(e) || json_object_size(e) == 0) {
    ck_buf_puts(b, "- ");
    int rc = put_flow(b, e);
    ck_buf_putc(b, '\n');
    return rc;
  }
  const char *k;
  json_t *v;
  bool first = true;
  json_object_foreach((json_t *)e, k, v) {
    ck_buf_puts(b, first ? "- " : "  ");
    first = false;
    if (plain_key_ok(k))
      ck_buf_puts(b, k);
    else
      put_quoted(b, k, strlen(k));
    ck_buf_putc(b, ':');
    int rc = 0;
    if (json_is_array(v) && json_array_size(v) > 0) {
      ck_buf_putc(b, '\n');
      size_t i;
      json_t *x;
      json_array_foreach(v, i, x) {
        ck_buf_puts(b, "    - ");
        if ((rc = put_flow(b, x)) != 0)
          return rc;
        ck_buf_putc(b, '\n');
      }
      continue;
    }
    ck_buf_putc(b, ' ');
    if ((rc = put_flow(b, v)) != 0)
      return rc;
    ck_buf_putc(b, '\n');
  }
  return 0;
}

/* The list's text into b; off (NULL, or room for n + 1) gets where each
 * entry's block starts, and off[n] the end; *blocks whether every block
 * has block_shape_ok's shape. */
static bool block_shape_ok(const char *t, size_t len);

/* cache (may be NULL): an entry whose text it keeps is copied from there
 * and known[i] (room for n) set: that text was checked before. */
static int emit_blocks(const json_t *list, aa_kind_t kind, aa_cache_t *cache, ck_buf_t *b,
                       size_t *off, bool *known, bool *blocks) {
  size_t n = json_array_size(list);
  *blocks = n > 0;
  if (n == 0)
    ck_buf_puts(b, "[]\n");
  size_t i;
  json_t *e;
  json_array_foreach(list, i, e) {
    size_t at = b->len;
    if (off)
      off[i] = at;
    size_t len;
    const char *t = cache ? aa_cache_entry_text(cache, kind, e, &len) : NULL;
    if (t) {
      ck_buf_append(b, t, len); /* of block_shape_ok's shape: it was checked */
      known[i] = true;
      continue;
    }
    int rc = put_entry(b, e);
    if (rc)
      return rc;
    *blocks = *blocks && !b->oom && block_shape_ok(b->data + at, b->len - at);
  }
  if (off)
    off[n] = b->len;
  return b->oom ? CK_ENOMEM : 0;
}

int aa_emit_list(const json_t *list, char **out) {
  *out = NULL;
  if (!json_is_array(list))
    return CK_EINVAL;
  ck_buf_t b = {0};
  bool blocks;
  int rc = emit_blocks(list, AA_ROLES, NULL, &b, NULL, NULL, &blocks);
  if (rc) {
    ck_buf_free(&b);
    return rc;
  }
  *out = ck_buf_steal(&b);
  return 0;
}

/* A block put_entry wrote: "- " first, every later line indented, a line
 * break last. A list of such blocks reads as the list of what each block
 * reads as alone: a line at column 0 starts the next item, and nothing
 * else can (strings are double-quoted with their line breaks escaped). */
static bool block_shape_ok(const char *t, size_t len) {
  if (len < 3 || t[0] != '-' || t[1] != ' ' || t[len - 1] != '\n')
    return false;
  for (size_t i = 0; i + 1 < len; i++)
    if (t[i] == '\n' && t[i + 1] != ' ')
      return false;
  return true;
}

static int emit_error(aa_kind_t kind, int rc, const char *why, ck_error_t *err) {
  if (rc == CK_ETOOBIG)
    return ck_error_set(err, CK_ETOOBIG, "%s would be over the 1 MiB limit of a ConfigMap",
                        aa_kind_key(kind));
  if (why)
    ck_error_set(err, CK_EINVAL, "%s: the emitted text does not parse back: %s",
                 aa_kind_key(kind), why);
  else
    ck_error_set(err, CK_EINVAL,
                 "%s: the emitted text parses back to different entries; nothing written",
                 aa_kind_key(kind));
  return CK_EINVAL;
}

/* The whole text parsed back at once. */
static int check_whole(aa_kind_t kind, const json_t *list, char *text, char **out,
                       aa_list_t *back_out, ck_error_t *err) {
  aa_list_t back;
  int rc = aa_list_parse(kind, text, strlen(text), &back);
  if (rc || !json_equal(back.doc, (json_t *)list)) {
    emit_error(kind, CK_EINVAL, rc ? back.error : NULL, err);
    aa_list_free(&back);
    free(text);
    return CK_EINVAL;
  }
  if (back_out)
    *back_out = back;
  else
    aa_list_free(&back);
  *out = text;
  return 0;
}

/* Blocks parsed back per YAML parse when no earlier emit checked them:
 * bounds the parse held at once (a first merge of thousands of entries). */
#define CHECK_CHUNK 512

/* Parse back the blocks of the entries at[0..n) of list, together, and
 * compare each with its entry; keep each text checked, with its entry. */
static int check_missed(aa_kind_t kind, const json_t *list, aa_cache_t *cache, ck_buf_t *b,
                        const size_t *off, const size_t *at, size_t n, ck_error_t *err) {
  ck_buf_t miss = {0};
  for (size_t k = 0; k < n; k++)
    ck_buf_append(&miss, b->data + off[at[k]], off[at[k] + 1] - off[at[k]]);
  if (miss.oom) {
    ck_buf_free(&miss);
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  }
  aa_list_t mb = {0};
  int rc = aa_list_parse(kind, miss.data, miss.len, &mb);
  if (rc || json_array_size(mb.doc) != n)
    rc = emit_error(kind, CK_EINVAL, rc ? mb.error : NULL, err);
  for (size_t k = 0; !rc && k < n; k++) {
    json_t *want = json_array_get(list, at[k]);
    if (!json_equal(json_array_get(mb.doc, k), want)) {
      rc = emit_error(kind, CK_EINVAL, NULL, err);
      break;
    }
    char save = b->data[off[at[k] + 1]];
    b->data[off[at[k] + 1]] = '\0';
    aa_cache_entry_put(cache, kind, b->data + off[at[k]], want);
    b->data[off[at[k] + 1]] = save;
  }
  aa_list_free(&mb);
  ck_buf_free(&miss);
  return rc;
}

/* Entry by entry: a block whose text an earlier emit checked is compared
 * with the entry that text was found to parse back to (kept by the
 * cache, and never modified since); the others are parsed back together,
 * CHECK_CHUNK blocks per parse, each compared with the parse of its own
 * text. The entries then stand for the parse of the whole text (they are
 * equal to it): *back_out is built from them. */
static int check_entries(aa_kind_t kind, const json_t *list, aa_cache_t *cache, ck_buf_t *b,
                         const size_t *off, const bool *known, char **out, aa_list_t *back_out,
                         ck_error_t *err) {
  size_t n = json_array_size(list);
  size_t *at = malloc((n < CHECK_CHUNK ? n + 1 : CHECK_CHUNK) * sizeof *at);
  if (!at) {
    ck_buf_free(b);
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  }
  size_t nmiss = 0;
  int rc = 0;
  for (size_t i = 0; !rc && i < n; i++) {
    json_t *want = json_array_get(list, i);
    if (!known[i]) { /* known: its text was checked before, for this very entry */
      char save = b->data[off[i + 1]];
      b->data[off[i + 1]] = '\0';
      const json_t *was = aa_cache_entry_get(cache, kind, b->data + off[i]);
      if (!was)
        at[nmiss++] = i;
      else if (was != want && !json_equal((json_t *)was, want))
        rc = emit_error(kind, CK_EINVAL, NULL, err);
      else if (was != want)
        /* The same entry, another json_t (its object was read again):
         * keep the text under this one, to be found by its address (the
         * memo of `was` goes, and with it the reference to it). */
        aa_cache_entry_put(cache, kind, b->data + off[i], want);
      b->data[off[i + 1]] = save;
    }
    if (!rc && nmiss && (nmiss == CHECK_CHUNK || i + 1 == n)) {
      rc = check_missed(kind, list, cache, b, off, at, nmiss, err);
      nmiss = 0;
    }
  }
  free(at);
  json_t *doc = NULL;
  if (!rc && back_out && (!(doc = json_array()) || json_array_extend(doc, (json_t *)list)))
    rc = ck_error_set(err, CK_ENOMEM, "out of memory");
  if (rc) {
    json_decref(doc);
    ck_buf_free(b);
    return rc == CK_ENOMEM ? CK_ENOMEM : CK_EINVAL;
  }
  aa_cache_entry_sweep(cache, kind);
  if (back_out && aa_list_from_doc(kind, doc, back_out) != 0) {
    aa_list_free(back_out);
    ck_buf_free(b);
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  }
  *out = ck_buf_steal(b);
  return 0;
}

int aa_emit_checked(aa_kind_t kind, const json_t *list, aa_cache_t *cache, char **out,
                    aa_list_t *back_out, ck_error_t *err) {
  *out = NULL;
  if (back_out)
    memset(back_out, 0, sizeof *back_out);
  if (!json_is_array(list))
    return ck_error_set(err, CK_EINVAL, "%s: cannot emit the entries", aa_kind_key(kind));
  size_t n = json_array_size(list);
  size_t *off = malloc((n + 1) * sizeof *off);
  bool *known = cache ? calloc(n + 1, sizeof *known) : NULL;
  if (!off || (cache && !known)) {
    free(off);
    free(known);
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  }
  ck_buf_t b = {0};
  bool blocks;
  int rc = emit_blocks(list, kind, cache, &b, off, known, &blocks);
  if (rc)
    rc = ck_error_set(err, rc, "%s: cannot emit the entries", aa_kind_key(kind));
  else if (b.len > AA_MAX_DATA_BYTES)
    rc = emit_error(kind, CK_ETOOBIG, NULL, err);
  else if (cache && blocks)
    rc = check_entries(kind, list, cache, &b, off, known, out, back_out, err);
  else
    rc = check_whole(kind, list, ck_buf_steal(&b), out, back_out, err);
  ck_buf_free(&b); /* emptied by whoever took its text */
  free(off);
  free(known);
  return rc;
}

/* A string jansson writes as its bytes between quotes: printable ASCII
 * without '"' and '\\' (no escape, no UTF-8 question). */
static bool plain_ascii(const json_t *v) {
  if (!json_is_string(v))
    return false;
  const char *s = json_string_value(v);
  size_t n = json_string_length(v);
  for (size_t i = 0; i < n; i++)
    if (s[i] < 0x20 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\')
      return false;
  return true;
}

static size_t put(char *buf, size_t cap, size_t at, const char *s, size_t n) {
  if (at + n <= cap)
    memcpy(buf + at, s, n);
  return at + n;
}

static size_t put_plain(char *buf, size_t cap, size_t at, const json_t *v) {
  at = put(buf, cap, at, "\"", 1);
  at = put(buf, cap, at, json_string_value(v), json_string_length(v));
  return put(buf, cap, at, "\"", 1);
}

/* The compact, key-sorted JSON of an entry whose keys and strings are all
 * plain ASCII and whose values are strings or arrays of strings, written
 * directly: byte for byte what json_dumps(JSON_COMPACT | JSON_SORT_KEYS)
 * writes for it, without its key sorting and allocations. Returns the
 * length (which may exceed cap: nothing past cap is written), or 0 when
 * the entry is of another shape (the caller then asks jansson). */
static size_t canon_fast(const json_t *entry, char *buf, size_t cap) {
  const char *keys[8];
  const json_t *vals[8];
  size_t n = 0;
  const char *k;
  json_t *v;
  if (!json_is_object(entry) || json_object_size(entry) > 8)
    return 0;
  json_object_foreach((json_t *)entry, k, v) {
    for (const char *c = k; *c; c++)
      if (*c < 0x20 || *c > 0x7e || *c == '"' || *c == '\\')
        return 0;
    if (json_is_array(v)) {
      size_t i;
      json_t *x;
      json_array_foreach(v, i, x) if (!plain_ascii(x)) return 0;
    } else if (!plain_ascii(v)) {
      return 0;
    }
    size_t j = n++;
    for (; j > 0 && strcmp(keys[j - 1], k) > 0; j--) {
      keys[j] = keys[j - 1];
      vals[j] = vals[j - 1];
    }
    keys[j] = k;
    vals[j] = v;
  }
  size_t at = put(buf, cap, 0, "{", 1);
  for (size_t i = 0; i < n; i++) {
    if (i)
      at = put(buf, cap, at, ",", 1);
    at = put(buf, cap, at, "\"", 1);
    at = put(buf, cap, at, keys[i], strlen(keys[i]));
    at = put(buf, cap, at, "\":", 2);
    if (json_is_array(vals[i])) {
      at = put(buf, cap, at, "[", 1);
      size_t j;
      json_t *x;
      json_array_foreach(vals[i], j, x) {
        if (j)
          at = put(buf, cap, at, ",", 1);
        at = put_plain(buf, cap, at, x);
      }
      at = put(buf, cap, at, "]", 1);
    } else {
      at = put_plain(buf, cap, at, vals[i]);
    }
  }
  return put(buf, cap, at, "}", 1);
}

void aa_entry_hash(const json_t *entry, char out[17]) {
  /* The bytes hashed are fixed (annotations written earlier hold these
   * hashes): compact JSON with sorted keys, as jansson writes it. Built
   * directly for the usual entry, else by jansson; in a stack buffer when
   * it fits, so a merge of 10,000 entries allocates nothing here. */
  char stack[512], *canon = stack;
  const size_t flags = JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY;
  size_t len = canon_fast(entry, stack, sizeof stack);
  bool fast = len > 0;
  if (!fast)
    len = json_dumpb(entry, stack, sizeof stack, flags);
  if (len > sizeof stack) {
    canon = malloc(len);
    if (canon && (fast ? canon_fast(entry, canon, len) : json_dumpb(entry, canon, len, flags)) != len) {
      free(canon);
      canon = NULL;
    }
  }
  unsigned char md[32];
  if (!canon || len == 0 || !aa_sha256(canon, len, md)) {
    /* Never equal to a real hash: treated as drift, which is safe. */
    memset(out, '-', 16);
    out[16] = '\0';
  } else {
    aa_hex(md, 8, out);
  }
  if (canon != stack)
    free(canon);
}
