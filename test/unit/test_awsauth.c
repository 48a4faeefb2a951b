/* Table tests of the aws-auth operator's pure core (operators/aws-auth):
 * ARN normalisation, name checks, the live parser, the emitter and the
 * merge with its interlocks. Each table row is one adversarial case from
 * docs/design (awsauth.md); add a row to add a case. */
#include "cktest.h"

#include "awsauth.h"
#include "cache.h"
#include "util/buf.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ACCT "111122223333"
#define IAM "arn:aws:iam::" ACCT ":"

/* ---- ARNs ----------------------------------------------------------------- */

typedef struct arn_case {
  aa_kind_t kind;
  const char *in;
  const char *norm; /* expected normalised ARN, or NULL: rejected */
  const char *text; /* substring of the warning (ok) or of the reason (rejected); "" = no warning */
} arn_case_t;

static const arn_case_t arn_cases[] = {
    {AA_ROLES, IAM "role/admin", IAM "role/admin", ""},
    {AA_ROLES, IAM "role/Admin", IAM "role/Admin", ""},
    {AA_ROLES, IAM "role/team/dev/admin", IAM "role/admin", "path \"team/dev/\" stripped"},
    {AA_ROLES, IAM "role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_Admin_0123abcd",
     IAM "role/AWSReservedSSO_Admin_0123abcd", "Identity Center"},
    {AA_ROLES, "arn:aws:sts::" ACCT ":assumed-role/admin/alice@example.com", IAM "role/admin",
     "assumed-role"},
    {AA_ROLES, IAM "role/aws-service-role/emr-containers.amazonaws.com/AWSServiceRoleForAmazonEMRContainers",
     IAM "role/AWSServiceRoleForAmazonEMRContainers", "service-linked"},
    {AA_ROLES, "arn:aws-cn:iam::" ACCT ":role/a", "arn:aws-cn:iam::" ACCT ":role/a", ""},
    {AA_ROLES, "arn:aws-us-gov:iam::" ACCT ":role/a", "arn:aws-us-gov:iam::" ACCT ":role/a", ""},
    {AA_ROLES, "arn:aws-iso-f:iam::" ACCT ":role/a", "arn:aws-iso-f:iam::" ACCT ":role/a", ""},
    {AA_ROLES, "arn:aws-eusc:sts::" ACCT ":assumed-role/r/s1", "arn:aws-eusc:iam::" ACCT ":role/r",
     "assumed-role"},
    {AA_USERS, IAM "user/alice", IAM "user/alice", ""},
    {AA_USERS, IAM "user/ops/alice", IAM "user/ops/alice", ""},
    {AA_ROLES, IAM "role/" "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij1234",
     IAM "role/" "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij1234", ""},
    /* rejected */
    {AA_ROLES, "", NULL, "empty"},
    {AA_ROLES, "ARN:aws:iam::" ACCT ":role/a", NULL, "lower-case"},
    {AA_ROLES, "role/a", NULL, "not an ARN"},
    {AA_ROLES, "arn:aws-foo:iam::" ACCT ":role/a", NULL, "partition"},
    {AA_ROLES, "arn:AWS:iam::" ACCT ":role/a", NULL, "partition"},
    {AA_ROLES, "arn:aws:s3::" ACCT ":role/a", NULL, "service"},
    {AA_ROLES, "arn:aws:IAM::" ACCT ":role/a", NULL, "service"},
    {AA_ROLES, "arn:aws:iam:us-east-1:" ACCT ":role/a", NULL, "region"},
    {AA_ROLES, "arn:aws:iam::11112222333:role/a", NULL, "12 digits"},
    {AA_ROLES, "arn:aws:iam::1111222233334:role/a", NULL, "12 digits"},
    {AA_ROLES, "arn:aws:iam::11112222333x:role/a", NULL, "12 digits"},
    {AA_ROLES, IAM "role/admin ", NULL, "whitespace"},
    {AA_ROLES, IAM "role/admin\n", NULL, "whitespace"},
    {AA_ROLES, IAM "role/ad\x01min", NULL, "control"},
    {AA_ROLES, IAM "role/\xd0\xb0" "dmin", NULL, "non-ASCII"},
    {AA_ROLES, IAM "role/*", NULL, "wildcard"},
    {AA_ROLES, IAM "role/adm?n", NULL, "wildcard"},
    {AA_ROLES, IAM "role/" "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij12345", NULL,
     "64"},
    {AA_ROLES, IAM "root", NULL, "root"},
    {AA_USERS, IAM "root", NULL, "root"},
    {AA_ROLES, IAM "user/alice", NULL, "under mapUsers"},
    {AA_USERS, IAM "role/admin", NULL, "under mapRoles"},
    {AA_USERS, "arn:aws:sts::" ACCT ":assumed-role/admin/s", NULL, "under mapRoles"},
    {AA_ROLES, "arn:aws:sts::" ACCT ":assumed-role/admin", NULL, "session"},
    {AA_ROLES, "arn:aws:sts::" ACCT ":federated-user/bob", NULL, "assumed-role"},
    {AA_ROLES, IAM "group/admins", NULL, "not a role"},
    {AA_ROLES, IAM "role//admin", NULL, "empty segment"},
    {AA_ROLES, IAM "role/", NULL, "empty"},
    {AA_ROLES, IAM "role/a:b", NULL, "':'"},
    {AA_ROLES, IAM "role/a!b", NULL, "IAM does not allow"},
};

CK_TEST(awsauth, arn_table) {
  for (size_t i = 0; i < sizeof arn_cases / sizeof *arn_cases; i++) {
    const arn_case_t *c = &arn_cases[i];
    char *norm = NULL, warn[512], why[512] = "";
    int rc = aa_arn_normalize(c->kind, c->in, &norm, warn, sizeof warn, why, sizeof why);
    if (c->norm) {
      cr_assert_eq(rc, 0, "case %zu \"%s\": rc %d (%s)", i, c->in, rc, why);
      cr_assert_str_eq(norm, c->norm, "case %zu", i);
      if (c->text[0])
        cr_assert(strstr(warn, c->text), "case %zu: warning \"%s\" lacks \"%s\"", i, warn, c->text);
      else
        cr_assert_str_eq(warn, "", "case %zu: unexpected warning", i);
    } else {
      cr_assert_eq(rc, CK_EINVAL, "case %zu \"%s\" accepted as %s", i, c->in, norm ? norm : "?");
      cr_assert_null(norm);
      cr_assert(strstr(why, c->text), "case %zu: reason \"%s\" lacks \"%s\"", i, why, c->text);
    }
    free(norm);
  }
}

/* ---- usernames and groups ------------------------------------------------ */

typedef struct name_case {
  bool group;
  const char *in;
  size_t len; /* 0: strlen */
  bool ok;
  const char *text; /* warning (ok) or reason substring; "" = no warning */
} name_case_t;

static const name_case_t name_cases[] = {
    {false, "admin", 0, true, ""},
    {false, "system:node:{{EC2PrivateDNSName}}", 0, true, ""},
    {false, "{{AccountID}}:{{SessionName}}", 0, true, ""},
    {false, "{{SessionName}}", 0, true, "chooses"},
    {false, "{{Unknown}}", 0, true, "unknown placeholder"},
    {false, "{{{{SessionName}}}}", 0, true, "nested"},
    {false, "x-{{AccountID", 0, true, "unterminated"},
    {true, "system:masters", 0, true, ""},
    {true, "\xc3\xa9quipe", 0, true, ""}, /* legit non-ASCII */
    {true, "{{SessionName}}", 0, false, "caller"},
    {true, "team-{{AccessKeyID}}", 0, false, "caller"},
    {true, "system:masters\n- rolearn: " IAM "role/evil", 0, false, "control"},
    {false, "a\tb", 0, false, "control"},
    {true, "a\xc2\x85" "b", 0, false, "control"},          /* NEL */
    {true, "a\xe2\x80\xa8" "b", 0, false, "separator"},    /* U+2028 */
    {true, "a\xe2\x80\xa9" "b", 0, false, "separator"},    /* U+2029 */
    {true, "system:\xe2\x80\xaemasters", 0, false, "bidi"}, /* U+202E */
    {true, "system:\xe2\x80\x8bmasters", 0, false, "invisible"}, /* U+200B */
    {true, "\xef\xbb\xbfsystem:masters", 0, false, "invisible"}, /* BOM */
    {true, "\xd1\x95ystem:masters", 0, false, "look-alike"},       /* Cyrillic dze */
    {true, "system\xef\xbc\x9amasters", 0, false, "look-alike"},   /* fullwidth colon */
    {true, "\xef\xbd\x93\xef\xbd\x99stem:masters", 0, false, "look-alike"},
    {true, "sy\xcc\x81stem:masters", 0, false, "look-alike"},       /* combining accent */
    {true, "", 0, false, "empty"},
    {true, " system:masters", 0, false, "leading"},
    {true, "system:masters ", 0, false, "trailing"},
    {true, "ab\0cd", 5, false, "NUL"},
    {true, "\xff", 0, false, "UTF-8"},
};

CK_TEST(awsauth, name_table) {
  for (size_t i = 0; i < sizeof name_cases / sizeof *name_cases; i++) {
    const name_case_t *c = &name_cases[i];
    char warn[512] = "", why[512] = "";
    int rc = aa_name_check(c->in, c->len ? c->len : strlen(c->in), c->group, warn, sizeof warn,
                           why, sizeof why);
    if (c->ok) {
      cr_assert_eq(rc, 0, "case %zu: rejected: %s", i, why);
      if (c->text[0])
        cr_assert(strstr(warn, c->text), "case %zu: warning \"%s\" lacks \"%s\"", i, warn, c->text);
      else
        cr_assert_str_eq(warn, "", "case %zu", i);
    } else {
      cr_assert_eq(rc, CK_EINVAL, "case %zu accepted", i);
      cr_assert(strstr(why, c->text), "case %zu: reason \"%s\" lacks \"%s\"", i, why, c->text);
    }
  }
  char longname[AA_MAX_NAME_LEN + 2];
  memset(longname, 'a', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  char why[256];
  cr_assert_eq(aa_name_check(longname, strlen(longname), true, NULL, 0, why, sizeof why), CK_EINVAL);
}

/* ---- the live parser ------------------------------------------------------ */

#define NODE_LIVE                                                                                  \
  "- rolearn: " IAM "role/node\n  username: system:node:{{EC2PrivateDNSName}}\n  groups:\n"       \
  "  - system:bootstrappers\n  - system:nodes\n"

typedef struct parse_case {
  const char *text; /* NULL: key absent */
  bool ok;
  /* ok: the entries, ','-joined: the key, "-" when the authenticator drops
   * the entry, a '!' suffix when it carries system:nodes, and "=user" for
   * the effective username. Failure: a substring of the error. */
  const char *want;
} parse_case_t;

static const parse_case_t parse_cases[] = {
    {NULL, true, ""},
    {"", true, ""},
    {"# only a comment\n", true, ""},
    {"[]", true, ""},
    {NODE_LIVE, true, "arn:aws:iam::111122223333:role/node!=system:node:{{EC2PrivateDNSName}}"},
    /* field names match case-insensitively; the key is lower-cased */
    {"- RoleARN: " IAM "role/Admin\n  UserName: bob\n", true, IAM "role/admin=bob"},
    /* encoding/json folding: long s matches 's' */
    {"- rolearn: " IAM "role/a\n  u\xc5\xbf" "ername: bob\n", true, IAM "role/a=bob"},
    /* both spellings: sorted order, the last ("rolearn") wins */
    {"- rolearn: " IAM "role/x\n  ROLEARN: " IAM "role/y\n", true, IAM "role/x"},
    {"- username: no-arn\n", true, "-=no-arn"},
    {"- rolearn: 123\n", true, "-"},
    {"- rolearn: ~\n", true, "-"},
    {"- rolearn: ''\n", true, "-"},
    {"- just a string\n- 42\n- [1]\n", true, "-,-,-"},
    /* YAML 1.1: yes is a boolean, not a username */
    {"- rolearn: " IAM "role/a\n  username: yes\n", true, IAM "role/a"},
    {"- rolearn: " IAM "role/a\n  rolearn: " IAM "role/b\n", true, IAM "role/b"},
    {"- rolearn: " IAM "role/a\n- rolearn: " IAM "role/A\n", true, IAM "role/a," IAM "role/a"},
    /* go-yaml reads the first document only */
    {"- rolearn: " IAM "role/a\n---\n- rolearn: " IAM "role/b\n", true, IAM "role/a"},
    {"---\n...\n", true, ""},
    {"- rolearn: " IAM "role/a\r\n  username: crlf\r\n", true, IAM "role/a=crlf"},
    {"\xef\xbb\xbf- rolearn: " IAM "role/a\n", true, IAM "role/a"},
    {"# head\n- rolearn: " IAM "role/a # tail\n  username: u # c\n", true, IAM "role/a=u"},
    {"[{\"rolearn\": \"" IAM "role/a\", \"groups\": [\"system:nodes\"]}]", true, IAM "role/a!"},
    {"- &e {rolearn: " IAM "role/a}\n- *e\n", true, IAM "role/a," IAM "role/a"},
    {"- rolearn: " IAM "role/a\n  groups: [system:nodes]\n  groups: ~\n", true, IAM "role/a"},
    /* the fields exactly as the operator writes them, and with one more */
    {"- rolearn: " IAM "role/A\n  username: u\n  groups: [x, system:nodes]\n", true,
     IAM "role/a!=u"},
    {"- rolearn: " IAM "role/a\n  username: u\n  groups: system:nodes\n", true, IAM "role/a=u"},
    {"- rolearn: " IAM "role/a\n  username: [u]\n  groups: [system:nodes]\n", true,
     IAM "role/a!"},
    {"- rolearn: " IAM "role/a\n  x: 1\n  groups: [system:nodes]\n  Username: u\n", true,
     IAM "role/a!=u"},
    /* the whole key is unusable */
    {"- rolearn: [unclosed\n", false, "mapRoles: line"},
    {"rolearn: x\n", false, "not a YAML list"},
    {"{\"rolearn\": \"x\"}", false, "not a YAML list"},
    {"- rolearn: a\n\tusername: b\n", false, "mapRoles"},
    {"a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
     "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
     "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n",
     false, "mapRoles"},
    {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
     false, "mapRoles"},
    {"%TAG ! tag:x\n--- []\n", false, "directive"},
};

CK_TEST(awsauth, parse_table) {
  for (size_t i = 0; i < sizeof parse_cases / sizeof *parse_cases; i++) {
    const parse_case_t *c = &parse_cases[i];
    aa_list_t l;
    int rc = aa_list_parse(AA_ROLES, c->text, c->text ? strlen(c->text) : 0, &l);
    if (!c->ok) {
      cr_assert_neq(rc, 0, "case %zu parsed", i);
      cr_assert_eq(l.n, 0);
      cr_assert(strstr(l.error, c->want), "case %zu: error \"%s\" lacks \"%s\"", i, l.error,
                c->want);
      aa_list_free(&l);
      continue;
    }
    cr_assert_eq(rc, 0, "case %zu: %s", i, l.error);
    cr_assert_eq(l.present, c->text != NULL);
    char got[2048] = "";
    for (size_t j = 0; j < l.n; j++) {
      size_t u = strlen(got);
      snprintf(got + u, sizeof got - u, "%s%s%s%s%s", j ? "," : "", l.v[j].key ? l.v[j].key : "-",
               l.v[j].nodes ? "!" : "", l.v[j].username ? "=" : "",
               l.v[j].username ? l.v[j].username : "");
    }
    cr_assert_str_eq(got, c->want, "case %zu", i);
    aa_list_free(&l);
  }
}

CK_TEST(awsauth, parse_over_one_mib_refused) {
  size_t n = AA_MAX_DATA_BYTES + 10;
  char *big = malloc(n + 1);
  cr_assert_not_null(big);
  memset(big, '#', n);
  big[n] = '\0';
  aa_list_t l;
  cr_assert_eq(aa_list_parse(AA_USERS, big, n, &l), CK_ETOOBIG);
  cr_assert(strstr(l.error, "mapUsers"));
  aa_list_free(&l);
  free(big);
}

/* ---- the emitter ----------------------------------------------------------- */

typedef struct emit_case {
  const char *json; /* the list */
  const char *yaml; /* exact text; NULL: only the round trip is checked */
} emit_case_t;

static const emit_case_t emit_cases[] = {
    {"[]", "[]\n"},
    {"[{\"rolearn\": \"" IAM "role/a\", \"username\": \"yes\", \"groups\": [\"012\", \"~\", \"on\"]}]",
     "- rolearn: \"" IAM "role/a\"\n  username: \"yes\"\n  groups:\n    - \"012\"\n    - \"~\"\n"
     "    - \"on\"\n"},
    {"[{\"rolearn\": \"a\", \"username\": \"x\\n- rolearn: evil\"}]",
     "- rolearn: \"a\"\n  username: \"x\\n- rolearn: evil\"\n"},
    {"[{\"u\": \"a\\u0085b\\u2028c\\u2029d\\u202ee\\u200bf\\ufeffg\"}]",
     "- u: \"a\\u0085b\\u2028c\\u2029d\\u202Ee\\u200Bf\\uFEFFg\"\n"},
    {"[{\"u\": \"\\u00e9t\\u00e9 \\ud83d\\ude00\"}]", "- u: \"\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80\"\n"},
    {"[{\"rolearn\": \"a\", \"username\": true, \"n\": 12, \"f\": 1.5, \"z\": null, \"neg\": -3}]",
     "- rolearn: \"a\"\n  username: true\n  \"n\": 12\n  f: 1.5\n  z: null\n  neg: -3\n"},
    {"[{\"big\": 1e300, \"small\": 1e-7, \"whole\": 2.0}]", "- big: 1.0000000000000001e+300\n"
     "  small: 9.9999999999999995e-08\n  whole: 2.0\n"},
    {"[{\"rolearn\": \"a\", \"sso\": {\"permissionSetName\": \"x\", \"accountID\": \"1\"}}]",
     "- rolearn: \"a\"\n  sso: {\"permissionSetName\": \"x\", \"accountID\": \"1\"}\n"},
    {"[{\"yes\": \"a\", \"a b\": \"c\", \"<<\": \"m\", \"On\": 1, \"k_1\": 2}]",
     "- \"yes\": \"a\"\n  \"a b\": \"c\"\n  \"<<\": \"m\"\n  \"On\": 1\n  k_1: 2\n"},
    {"[\"str\", 5, null, [], {}, [1, {\"a\": [true]}]]",
     "- \"str\"\n- 5\n- null\n- []\n- {}\n- [1, {\"a\": [true]}]\n"},
    {"[{\"groups\": []}]", "- groups: []\n"},
    {"[{\"g\": [\"*\", \"&a\", \"!!str\", \"|\", \">\", \"#\", \"---\", \"? x\", \"%\", \"{{SessionName}}\", "
     "\"'\", \"\\\"\", \"\\\\\", \"@\", \"`\", \": \", \"- \", \"...\", \"\\t\", \"\\r\", \"\\u0000\"]}]",
     NULL},
};

CK_TEST(awsauth, emit_table) {
  for (size_t i = 0; i < sizeof emit_cases / sizeof *emit_cases; i++) {
    json_t *list = json_loads(emit_cases[i].json, JSON_ALLOW_NUL, NULL);
    cr_assert_not_null(list, "case %zu: bad JSON", i);
    char *text = NULL;
    ck_error_t err = {0};
    int rc = aa_emit_checked(AA_ROLES, list, NULL, &text, NULL, &err);
    cr_assert_eq(rc, 0, "case %zu: %s", i, err.message);
    if (emit_cases[i].yaml)
      cr_assert_str_eq(text, emit_cases[i].yaml, "case %zu", i);
    /* Entry by entry with a cache: the same text, the first time (every
     * entry parsed back) and the second (every entry found). */
    aa_cache_t *cache = aa_cache_new();
    for (int pass = 0; pass < 2; pass++) {
      char *t2 = NULL;
      aa_list_t back;
      rc = aa_emit_checked(AA_ROLES, list, cache, &t2, &back, &err);
      cr_assert_eq(rc, 0, "case %zu, pass %d: %s", i, pass, err.message);
      cr_assert_str_eq(t2, text, "case %zu, pass %d", i, pass);
      cr_assert(json_equal(back.doc, list), "case %zu, pass %d", i, pass);
      aa_list_free(&back);
      free(t2);
    }
    aa_cache_free(cache);
    free(text);
    json_decref(list);
  }
}

/* The block of entry i in an emitted text ("- " at column 0 to the next). */
static char *block_of(const char *text, size_t i) {
  const char *p = text;
  for (size_t k = 0; k < i; k++) {
    p = strstr(p + 1, "\n- ");
    cr_assert_not_null(p, "no block %zu", i);
    p++;
  }
  const char *end = strstr(p + 1, "\n- ");
  return end ? strndup(p, (size_t)(end + 1 - p)) : strdup(p);
}

CK_TEST(awsauth, emit_checked_keeps_entries_it_checked) {
  aa_cache_t *cache = aa_cache_new();
  json_t *list = cktest_json(
      "[{\"rolearn\":\"arn:aws:iam::1:role/a\",\"username\":\"a\",\"groups\":[\"x\"]},"
      "{\"rolearn\":\"arn:aws:iam::1:role/b\",\"username\":\"yes\\n- rolearn: evil\"},"
      "\"not an object\", {\"rolearn\":\"arn:aws:iam::1:role/c\",\"n\":[1,2.5,true,null]}]");
  char *text = NULL, *want = NULL;
  ck_error_t err = {0};
  cr_assert_eq(aa_emit_checked(AA_ROLES, list, cache, &text, NULL, &err), 0, "%s", err.message);
  cr_assert_eq(aa_emit_list(list, &want), 0);
  cr_assert_str_eq(text, want);
  /* (A lookup counts as a use: only the blocks that stay are looked up.) */
  for (size_t i = 2; i < 4; i++) {
    char *b = block_of(text, i);
    const json_t *p = aa_cache_entry_get(cache, AA_ROLES, b);
    cr_assert_not_null(p, "block %zu not kept: %s", i, b);
    cr_assert_eq(p, json_array_get(list, i), "block %zu: not kept with its entry", i);
    free(b);
  }
  char *gone = block_of(text, 1), *old0 = block_of(text, 0);
  free(text);
  free(want);

  /* Entry 1 removed, entry 0 changed: the new text is checked, the old
   * ones are forgotten, the others are kept. */
  json_array_remove(list, 1);
  json_t *a2 = json_deep_copy(json_array_get(list, 0)); /* entries are never modified */
  json_object_set_new(a2, "username", json_string("a2"));
  json_array_set_new(list, 0, a2);
  aa_list_t back;
  cr_assert_eq(aa_emit_checked(AA_ROLES, list, cache, &text, &back, &err), 0, "%s", err.message);
  cr_assert_eq(aa_emit_list(list, &want), 0);
  cr_assert_str_eq(text, want);
  cr_assert(json_equal(back.doc, list));
  cr_assert_eq(back.n, 3);
  cr_assert_str_eq(back.v[0].key, "arn:aws:iam::1:role/a");
  cr_assert_null(back.v[1].arn, "a string entry has no ARN");
  cr_assert_null(aa_cache_entry_get(cache, AA_ROLES, gone), "removed entry still kept");
  cr_assert_null(aa_cache_entry_get(cache, AA_ROLES, old0), "changed entry's old text still kept");
  for (size_t i = 0; i < 3; i++) {
    char *b = block_of(text, i);
    cr_assert_not_null(aa_cache_entry_get(cache, AA_ROLES, b), "block %zu not kept", i);
    free(b);
  }
  cr_assert_null(aa_cache_entry_get(cache, AA_USERS, gone), "kinds are kept apart");
  aa_list_free(&back);
  free(gone);
  free(old0);
  free(text);
  free(want);
  json_decref(list);
  aa_cache_free(cache);
}

/* Thousands of entries no emit checked before are parsed back a chunk at
 * a time: each is still compared with the parse of its own text, and a
 * wrong one is found in any chunk. */
CK_TEST(awsauth, emit_checked_parses_back_in_chunks) {
  enum { N = 1300 }; /* three chunks, the last one short */
  json_t *list = json_array();
  for (int i = 0; i < N; i++) {
    char arn[64], user[16];
    snprintf(arn, sizeof arn, "arn:aws:iam::111122223333:role/r%d", i);
    snprintf(user, sizeof user, "u%d", i);
    json_array_append_new(list, json_pack("{s:s,s:s,s:[s]}", "rolearn", arn, "username", user,
                                          "groups", "g"));
  }
  aa_cache_t *cache = aa_cache_new();
  char *text = NULL, *want = NULL;
  ck_error_t err = {0};
  aa_list_t back;
  cr_assert_eq(aa_emit_checked(AA_ROLES, list, cache, &text, &back, &err), 0, "%s", err.message);
  cr_assert_eq(aa_emit_list(list, &want), 0);
  cr_assert_str_eq(text, want);
  cr_assert_eq(back.n, N);
  cr_assert(json_equal(back.doc, list));
  size_t probe[] = {0, 511, 512, 1023, 1024, N - 1};
  for (size_t k = 0; k < sizeof probe / sizeof *probe; k++) {
    char *b = block_of(text, probe[k]);
    cr_assert_eq(aa_cache_entry_get(cache, AA_ROLES, b), json_array_get(list, probe[k]),
                 "entry %zu not kept", probe[k]);
    free(b);
  }
  aa_list_free(&back);
  free(text);
  free(want);
  /* A wrong parse kept for a text in the middle of the second chunk's
   * range, the rest new: found, nothing written. */
  aa_cache_t *fresh = aa_cache_new();
  cr_assert_eq(aa_emit_list(list, &want), 0);
  char *b700 = block_of(want, 700);
  json_t *wrong = cktest_json("{\"rolearn\":\"arn:aws:iam::111122223333:role/r700\",\"username\":\"root\"}");
  aa_cache_entry_put(fresh, AA_ROLES, b700, wrong);
  text = (char *)"untouched";
  cr_assert_eq(aa_emit_checked(AA_ROLES, list, fresh, &text, NULL, &err), CK_EINVAL);
  cr_assert_null(text);
  cr_assert(strstr(err.message, "different entries"), "%s", err.message);
  json_decref(wrong);
  free(b700);
  free(want);
  aa_cache_free(fresh);
  aa_cache_free(cache);
  json_decref(list);
}

/* An entry emitted before is found again by its address: its text is
 * copied from the cache, and its hash is kept there too; the same entry
 * as another json_t (its object read again) is kept under the new one;
 * an entry no longer emitted is forgotten. */
CK_TEST(awsauth, emit_checked_finds_entries_by_address) {
  json_t *list = cktest_json("[{\"rolearn\":\"arn:aws:iam::1:role/a\",\"username\":\"a\","
                             "\"groups\":[\"g\"]},"
                             "{\"rolearn\":\"arn:aws:iam::1:role/b\",\"username\":\"b\"}]");
  aa_cache_t *cache = aa_cache_new();
  char *want = NULL, *text = NULL;
  ck_error_t err = {0};
  size_t len = 0;
  cr_assert_eq(aa_emit_list(list, &want), 0);
  json_t *e0 = json_array_get(list, 0), *e1 = json_incref(json_array_get(list, 1));
  cr_assert_null(aa_cache_entry_text(cache, AA_ROLES, e0, &len), "kept before any emit");
  cr_assert_eq(aa_emit_checked(AA_ROLES, list, cache, &text, NULL, &err), 0, "%s", err.message);
  cr_assert_str_eq(text, want);
  free(text);
  for (size_t i = 0; i < 2; i++) {
    char *b = block_of(want, i);
    const char *t = aa_cache_entry_text(cache, AA_ROLES, json_array_get(list, i), &len);
    cr_assert_not_null(t, "entry %zu not found by its address", i);
    cr_assert_eq(len, strlen(b));
    cr_assert_str_eq(t, b);
    free(b);
  }
  cr_assert_null(aa_cache_entry_text(cache, AA_USERS, e0, &len), "kinds are kept apart");
  char h[17], kept[17], again[17];
  aa_entry_hash(e0, h);
  aa_cache_entry_hash(cache, AA_ROLES, e0, kept);  /* computed, then kept */
  aa_cache_entry_hash(cache, AA_ROLES, e0, again); /* from the cache */
  cr_assert_str_eq(kept, h);
  cr_assert_str_eq(again, h);
  aa_cache_entry_hash(NULL, AA_ROLES, e0, again);
  cr_assert_str_eq(again, h);
  /* Emitted from the addresses: the same text. */
  cr_assert_eq(aa_emit_checked(AA_ROLES, list, cache, &text, NULL, &err), 0, "%s", err.message);
  cr_assert_str_eq(text, want);
  free(text);
  /* Entry 0 as another, equal json_t; entry 1 dropped. */
  json_t *old0 = json_incref(e0);
  json_array_set_new(list, 0, json_deep_copy(old0));
  json_array_remove(list, 1);
  json_t *new0 = json_array_get(list, 0);
  cr_assert_null(aa_cache_entry_text(cache, AA_ROLES, new0, &len));
  cr_assert_eq(aa_emit_checked(AA_ROLES, list, cache, &text, NULL, &err), 0, "%s", err.message);
  char *b0 = block_of(want, 0);
  cr_assert_str_eq(text, b0);
  free(text);
  const char *t = aa_cache_entry_text(cache, AA_ROLES, new0, &len);
  cr_assert(t && strcmp(t, b0) == 0, "the new json_t is not kept");
  cr_assert_null(aa_cache_entry_text(cache, AA_ROLES, old0, &len), "the old json_t still kept");
  cr_assert_null(aa_cache_entry_text(cache, AA_ROLES, e1, &len), "a dropped entry still kept");
  aa_cache_clear(cache);
  cr_assert_null(aa_cache_entry_text(cache, AA_ROLES, new0, &len), "kept after a clear");
  free(b0);
  json_decref(old0);
  json_decref(e1);
  free(want);
  json_decref(list);
  aa_cache_free(cache);
}

/* The kept parse is what an entry is compared with: a text kept with
 * another parse (as a wrong emitter or parser would leave) fails. */
CK_TEST(awsauth, emit_checked_compares_with_kept_parse) {
  aa_cache_t *cache = aa_cache_new();
  json_t *list = cktest_json("[{\"rolearn\":\"arn:aws:iam::1:role/a\",\"username\":\"a\"},"
                             "{\"rolearn\":\"arn:aws:iam::1:role/b\",\"username\":\"b\"}]");
  char *text = NULL;
  cr_assert_eq(aa_emit_list(list, &text), 0);
  char *b1 = block_of(text, 1);
  json_t *wrong = cktest_json("{\"rolearn\":\"arn:aws:iam::1:role/b\",\"username\":\"root\"}");
  aa_cache_entry_put(cache, AA_ROLES, b1, wrong);
  char *out = (char *)"untouched";
  ck_error_t err = {0};
  aa_list_t back;
  cr_assert_eq(aa_emit_checked(AA_ROLES, list, cache, &out, &back, &err), CK_EINVAL);
  cr_assert_null(out);
  cr_assert_null(back.doc);
  cr_assert(strstr(err.message, "different entries"), "%s", err.message);
  json_decref(wrong);
  free(b1);
  free(text);
  json_decref(list);
  aa_cache_free(cache);
}

CK_TEST(awsauth, emit_quotes_every_string) {
  /* Line by line: after the structural prefix, a string is always quoted. */
  json_t *list = cktest_json("[{\"rolearn\": \"r\", \"username\": \"null\", \"groups\": [\"~\"]}]");
  char *text = NULL;
  cr_assert_eq(aa_emit_list(list, &text), 0);
  cr_assert(strstr(text, "username: \"null\"") && strstr(text, "- \"~\""), "%s", text);
  free(text);
  json_decref(list);
}

/* ---- the merge ------------------------------------------------------------- */

/* Objects are written with single quotes (no test string needs one). */
#define META_X(n, ts, extra)                                                                        \
  "'metadata':{'namespace':'kube-system','name':'" n "','uid':'uid-" n "','creationTimestamp':'" ts \
  "','generation':3,'finalizers':['crdkit.io/aws-auth']" extra "}"
#define DEL ",'deletionTimestamp':'2030-01-01T00:00:00Z'"
#define ROLE_X(n, ts, mdx, role, user, grp, specx)                                                  \
  "{" META_X(n, ts, mdx) ",'spec':{'mapRoles':[{'rolearn':'" IAM "role/" role "','username':'" user \
  "','groups':['" grp "']}]" specx "}}"
#define ROLE(n, ts, role, user, grp) ROLE_X(n, ts, "", role, user, grp, "")
#define USER(n, ts, u, user, grp)                                                                   \
  "{" META_X(n, ts, "") ",'spec':{'mapUsers':[{'userarn':'" IAM "user/" u "','username':'" user    \
  "','groups':['" grp "']}]}}"
#define NODE_OBJ(n, ts, mdx)                                                                        \
  "{" META_X(n, ts, mdx) ",'spec':{'mapRoles':[{'rolearn':'" IAM "role/node','username':'system:node:{{EC2PrivateDNSName}}','groups':['system:bootstrappers','system:nodes']}]}}"

#define OWN(role, user, grp)                                                                       \
  "- rolearn: \"" IAM "role/" role "\"\n  username: \"" user "\"\n  groups:\n    - \"" grp "\"\n"
#define OWN_USER(u, user, grp)                                                                     \
  "- userarn: \"" IAM "user/" u "\"\n  username: \"" user "\"\n  groups:\n    - \"" grp "\"\n"
#define NODE_EMIT                                                                                  \
  "- rolearn: \"" IAM "role/node\"\n  username: \"system:node:{{EC2PrivateDNSName}}\"\n"          \
  "  groups:\n    - \"system:bootstrappers\"\n    - \"system:nodes\"\n"
#define T1 "2024-01-01T00:00:00Z"
#define T2 "2024-02-01T00:00:00Z"
#define T3 "2024-03-01T00:00:00Z"
static const char any_marker[] = "any";
#define ANY any_marker /* do not check this output */

typedef struct merge_case {
  const char *name;
  /* The live ConfigMap: absent when live_absent; data.mapRoles/mapUsers
   * NULL = key absent; mapAccounts is always set so we can see it kept. */
  bool live_absent;
  const char *roles, *users, *annotation;
  /* Optional first reconcile whose result is applied, then edit_roles (if
   * set) replaces data.mapRoles as someone else's edit would. */
  const char *stage1;
  const char *edit_roles;
  const char *objects; /* the reconcile under test */
  aa_opts_t opts;
  aa_block_t blocked;
  const char *want_roles, *want_users; /* NULL: key not rewritten; ANY */
  bool write;
  /* Per object in input order, ','-separated, exact flag sets: V valid /
   * I invalid, C conflicted, S suspended, D deleting, R releasable after
   * write, N releasable now, W warnings. */
  const char *flags;
  const char *text; /* substring of blocked_msg or of some status message */
  int drifted;      /* -1: don't check */
} merge_case_t;

static const merge_case_t merge_cases[] = {
    {.name = "absent ConfigMap is created", .live_absent = true,
     .objects = "[" ROLE("a", T1, "admin", "admin", "system:masters") "]",
     .want_roles = OWN("admin", "admin", "system:masters"), .write = true, .flags = "V"},
    {.name = "missing data: adds, keeps nothing else", .objects = "[" ROLE("a", T1, "admin", "admin", "system:masters") "]",
     .want_roles = OWN("admin", "admin", "system:masters"), .write = true, .flags = "V"},
    {.name = "foreign node entry kept first, mapAccounts untouched", .roles = NODE_LIVE,
     .objects = "[" ROLE("a", T1, "admin", "admin", "system:masters") "]",
     .want_roles = NODE_EMIT OWN("admin", "admin", "system:masters"), .write = true, .flags = "V"},
    {.name = "foreign unknown fields (sso, userid) preserved exactly",
     .roles = "- rolearn: " IAM "role/sso\n  username: sso\n  userid: AROAEXAMPLE\n  sso:\n"
              "    permissionSetName: Admin\n    accountID: \"111122223333\"\n  extra: 012\n",
     .objects = "[" ROLE("a", T1, "admin", "admin", "system:masters") "]",
     .want_roles = "- rolearn: \"" IAM "role/sso\"\n  username: \"sso\"\n  userid: \"AROAEXAMPLE\"\n"
                   "  sso: {\"permissionSetName\": \"Admin\", \"accountID\": \"111122223333\"}\n"
                   "  extra: 10\n" OWN("admin", "admin", "system:masters"),
     .write = true, .flags = "V"},
    {.name = "foreign entries the authenticator drops are kept too",
     .roles = "- username: orphan\n- 42\n",
     .objects = "[" ROLE("a", T1, "admin", "admin", "system:masters") "]",
     .want_roles = "- username: \"orphan\"\n- 42\n" OWN("admin", "admin", "system:masters"),
     .write = true, .flags = "V"},
    {.name = "CRLF, comments, BOM in the live key",
     .roles = "\xef\xbb\xbf# managed by hand\r\n- rolearn: " IAM "role/x # c\r\n  username: x\r\n",
     .objects = "[" ROLE("a", T1, "admin", "admin", "system:masters") "]",
     .want_roles = "- rolearn: \"" IAM "role/x\"\n  username: \"x\"\n" OWN("admin", "admin", "system:masters"),
     .write = true, .flags = "V"},
    {.name = "nothing to change: no write", .roles = NODE_LIVE, .objects = "[]",
     .want_roles = NULL, .write = false},
    {.name = "unparsable mapRoles: Degraded, nothing written", .roles = "- rolearn: [\n",
     .objects = "[" ROLE("a", T1, "admin", "admin", "system:masters") "]",
     .blocked = AA_BLOCK_UNPARSABLE, .flags = "V", .text = "mapRoles: line"},
    {.name = "unparsable mapUsers blocks too", .users = "a: [\n",
     .objects = "[" ROLE("a", T1, "admin", "admin", "system:masters") "]",
     .blocked = AA_BLOCK_UNPARSABLE, .flags = "V", .text = "mapUsers"},
    {.name = "alias bomb in live data", .roles = "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
     "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
     "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n",
     .objects = "[]", .blocked = AA_BLOCK_UNPARSABLE, .text = "mapRoles"},
    {.name = "two objects, same ARN: oldest wins",
     .objects = "[" ROLE("young", T2, "admin", "young", "view") "," ROLE("old", T1, "admin", "old", "system:masters") "]",
     .want_roles = OWN("admin", "old", "system:masters"), .write = true, .flags = "VC,V",
     .text = "kube-system/old, which is older"},
    {.name = "same creationTimestamp: namespace/name decides",
     .objects = "[" ROLE("b", T1, "admin", "b", "view") "," ROLE("a", T1, "admin", "a", "edit") "]",
     .want_roles = OWN("admin", "a", "edit"), .write = true, .flags = "VC,V"},
    {.name = "ARN case differs: still one key, conflict",
     .objects = "[" ROLE("a", T1, "Admin", "a", "edit") "," ROLE("b", T2, "admin", "b", "view") "]",
     .want_roles = OWN("Admin", "a", "edit"), .write = true, .flags = "V,VC"},
    {.name = "deleting the winner hands over to the loser",
     .stage1 = "[" ROLE("old", T1, "admin", "old", "system:masters") "," ROLE("young", T2, "admin", "young", "view") "]",
     .objects = "[" ROLE_X("old", T1, DEL, "admin", "old", "system:masters", "") "," ROLE("young", T2, "admin", "young", "view") "]",
     .want_roles = OWN("admin", "young", "view"), .write = true, .flags = "VDR,V"},
    {.name = "foreign entry wins over an AWSAuth",
     .roles = "- rolearn: " IAM "role/admin\n  username: hand\n  groups: [system:masters]\n",
     .objects = "[" ROLE("a", T1, "admin", "a", "view") "]",
     .want_roles = NULL, .write = false, .flags = "VC", .text = "takeOver"},
    {.name = "takeOver adopts the foreign entry (all duplicates)",
     .roles = "- rolearn: " IAM "role/admin\n  username: hand\n- rolearn: " IAM "role/x\n- rolearn: " IAM "role/ADMIN\n",
     .objects = "[" ROLE_X("a", T1, "", "admin", "a", "view", ",'takeOver':true") "]",
     .want_roles = "- rolearn: \"" IAM "role/x\"\n" OWN("admin", "a", "view"), .write = true, .flags = "V"},
    {.name = "takeOver of a node entry without system:nodes is refused", .roles = NODE_LIVE,
     .objects = "[" ROLE_X("a", T1, "", "node", "a", "view", ",'takeOver':true") "]",
     .blocked = AA_BLOCK_NODES, .flags = "V", .text = "system:nodes"},
    {.name = "node entry dropped from a spec is refused",
     .stage1 = "[" NODE_OBJ("n", T1, "") "]",
     .objects = "[" ROLE("n", T1, "other", "o", "view") "]",
     .blocked = AA_BLOCK_NODES, .flags = "V", .text = "removed from its AWSAuth's spec"},
    {.name = "node entry removed by deleting its owner", .stage1 = "[" NODE_OBJ("n", T1, "") "]",
     .objects = "[" NODE_OBJ("n", T1, DEL) "]", .want_roles = "[]\n", .write = true, .flags = "VDR"},
    {.name = "a key that becomes empty is rewritten",
     .stage1 = "[" ROLE("a", T1, "admin", "admin", "system:masters") "]",
     .objects = "[" ROLE_X("a", T1, DEL, "admin", "admin", "system:masters", "") "]",
     .want_roles = "[]\n", .write = true, .flags = "VDR"},
    {.name = "Retain: entries stay, become foreign",
     .stage1 = "[" ROLE("a", T1, "admin", "admin", "system:masters") "]",
     .objects = "[" ROLE_X("a", T1, DEL, "admin", "admin", "system:masters", ",'deletionPolicy':'Retain'") "]",
     .want_roles = NULL, .write = true, .flags = "VDR"},
    {.name = "deleting an object that owns nothing: finalizer can go now",
     .objects = "[" ROLE_X("a", T1, DEL, "admin", "admin", "system:masters", "") "]",
     .want_roles = NULL, .write = false, .flags = "VDRN"},
    {.name = "suspend freezes its entries",
     .stage1 = "[" ROLE("a", T1, "admin", "admin", "system:masters") "]",
     .objects = "[" ROLE_X("a", T1, "", "admin", "changed", "view", ",'suspend':true") "]",
     .want_roles = NULL, .write = false, .flags = "VS"},
    {.name = "suspended object adds nothing",
     .objects = "[" ROLE_X("a", T1, "", "admin", "a", "view", ",'suspend':true") "]",
     .want_roles = NULL, .write = false, .flags = "VS"},
    {.name = "drift repaired", .stage1 = "[" ROLE("a", T1, "admin", "admin", "system:masters") "]",
     .edit_roles = "- rolearn: " IAM "role/admin\n  username: admin\n  groups: [system:masters, evil]\n",
     .objects = "[" ROLE("a", T1, "admin", "admin", "system:masters") "]",
     .want_roles = OWN("admin", "admin", "system:masters"), .write = true, .flags = "V", .drifted = 1},
    {.name = "drift reported, not repaired", .stage1 = "[" ROLE("a", T1, "admin", "admin", "system:masters") "]",
     .edit_roles = "- rolearn: " IAM "role/admin\n  username: admin\n  groups: [system:masters, evil]\n",
     .objects = "[" ROLE("a", T1, "admin", "admin", "system:masters") "]",
     .opts = {.drift = AA_DRIFT_REPORT}, .want_roles = NULL, .write = false, .flags = "V", .drifted = 1},
    {.name = "owned entry removed by someone: re-added",
     .stage1 = "[" ROLE("a", T1, "admin", "admin", "system:masters") "]", .edit_roles = "[]",
     .objects = "[" ROLE("a", T1, "admin", "admin", "system:masters") "]",
     .want_roles = OWN("admin", "admin", "system:masters"), .write = true, .flags = "V", .drifted = 1},
    {.name = "spec change updates in place, no drift",
     .stage1 = "[" ROLE("a", T1, "admin", "admin", "system:masters") "]",
     .objects = "[" ROLE("a", T1, "admin", "admin", "view") "]",
     .want_roles = OWN("admin", "admin", "view"), .write = true, .flags = "V", .drifted = 0},
    {.name = "both mapRoles and mapUsers: Invalid",
     .objects = "[{" META_X("a", T1, "") ",'spec':{'mapRoles':[],'mapUsers':[]}}]",
     .want_roles = NULL, .flags = "I", .text = "exactly one of mapRoles or mapUsers"},
    {.name = "neither list: Invalid", .objects = "[{" META_X("a", T1, "") ",'spec':{}}]",
     .flags = "I", .text = "exactly one"},
    {.name = "bad ARN: Invalid with the reason",
     .objects = "[" ROLE("a", T1, "ad*min", "a", "view") "]", .flags = "I",
     .text = "spec.mapRoles[0].rolearn: ARN contains a wildcard"},
    {.name = "user ARN under mapRoles: Invalid",
     .objects = "[{" META_X("a", T1, "") ",'spec':{'mapRoles':[{'rolearn':'" IAM "user/bob','username':'b'}]}}]",
     .flags = "I", .text = "under mapUsers"},
    {.name = "injection through username: Invalid",
     .objects = "[" ROLE("a", T1, "admin", "x\\n- rolearn: " IAM "role/evil", "view") "]",
     .flags = "I", .text = "spec.mapRoles[0].username"},
    {.name = "homoglyph of system:masters: Invalid",
     .objects = "[" ROLE("a", T1, "admin", "a", "\xd1\x95ystem:masters") "]",
     .flags = "I", .text = "look-alike"},
    {.name = "invalid object keeps what it wrote",
     .stage1 = "[" ROLE("a", T1, "admin", "admin", "system:masters") "]",
     .objects = "[" ROLE("a", T1, "admin ", "admin", "system:masters") "]",
     .want_roles = NULL, .write = false, .flags = "I"},
    {.name = "YAML 1.1 look-alikes stay strings",
     .objects = "[" ROLE("a", T1, "admin", "yes", "012") "]",
     .want_roles = OWN("admin", "yes", "012"), .write = true, .flags = "V"},
    {.name = "YAML syntax characters stay strings",
     .objects = "[" ROLE("a", T1, "admin", "&a *b !!str | > # --- ? %", "{{SessionName}}-x") "]",
     .flags = "I", .text = "caller"},
    {.name = "path stripped with a warning",
     .objects = "[" ROLE("a", T1, "team/admin", "a", "view") "]",
     .want_roles = OWN("admin", "a", "view"), .write = true, .flags = "VW", .text = "stripped"},
    {.name = "mapUsers object", .users = "- userarn: " IAM "user/hand\n  username: hand\n",
     .objects = "[" USER("u", T1, "alice", "alice", "view") "]",
     .want_users = "- userarn: \"" IAM "user/hand\"\n  username: \"hand\"\n" OWN_USER("alice", "alice", "view"),
     .write = true, .flags = "V"},
    {.name = "owned entries but no objects (unsynced cache?)",
     .stage1 = "[" ROLE("a", T1, "admin", "admin", "system:masters") "]", .objects = "[]",
     .blocked = AA_BLOCK_NO_OBJECTS, .text = "no AWSAuth"},
    {.name = "orphans removed when allowed",
     .stage1 = "[" ROLE("a", T1, "admin", "admin", "system:masters") "]", .objects = "[]",
     .opts = {.allow_orphan_removal = true}, .want_roles = "[]\n", .write = true},
    {.name = "unreadable ownership annotation", .annotation = "not json",
     .objects = "[" ROLE("a", T1, "admin", "a", "view") "]", .blocked = AA_BLOCK_ANNOTATION,
     .flags = "V", .text = AA_OWNERS_ANNOTATION},
};

static json_t *quotes(const char *s) {
  char *t = strdup(s);
  for (char *p = t; *p; p++)
    if (*p == '\'')
      *p = '"';
  json_t *j = cktest_json(t);
  free(t);
  return j;
}

static json_t *make_cm(const merge_case_t *c) {
  json_t *cm = json_pack("{s:s,s:s,s:{s:s,s:s,s:s,s:{s:s}},s:{s:s,s:s},s:{s:s}}", "apiVersion", "v1", "kind",
                         "ConfigMap", "metadata", "name", "aws-auth", "namespace", "kube-system",
                         "resourceVersion", "7", "labels", "keep", "me", "data", "mapAccounts",
                         "- \"" ACCT "\"\n", "other", "x", "binaryData", "blob", "AAEC");
  json_t *data = json_object_get(cm, "data");
  if (c->roles)
    json_object_set_new(data, "mapRoles", json_string(c->roles));
  if (c->users)
    json_object_set_new(data, "mapUsers", json_string(c->users));
  if (c->annotation)
    json_object_set_new(json_object_get(cm, "metadata"), "annotations",
                        json_pack("{s:s}", AA_OWNERS_ANNOTATION, c->annotation));
  return cm;
}

static void same_result(const char *name, const char *what, const aa_result_t *a,
                        const aa_result_t *b);

/* A merge from the cache's parses (rc, freed here) decided what r did,
 * down to each object's creation time and status digest. */
static void same_from_cache(const char *what, aa_result_t *rc, const aa_result_t *r) {
  same_result("parse cache", what, rc, r);
  cr_assert_str_eq(rc->owners, r->owners);
  for (size_t i = 0; i < r->nobjs; i++) {
    cr_assert_eq(rc->objs[i].created, r->objs[i].created);
    cr_assert_str_eq(rc->objs[i].status_digest, r->objs[i].status_digest);
  }
  aa_result_free(rc);
}

/* While set (run_merge_case), every reconcile_ok runs a second time with
 * this parse cache, which must change nothing. */
static aa_cache_t *case_cache;
static size_t cache_hits_total, object_hits_total;

static aa_result_t *reconcile_ok(const json_t *live, const json_t *objs, const aa_opts_t *o) {
  aa_result_t *r = NULL;
  ck_error_t err = {0};
  cr_assert_eq(aa_reconcile(live, objs, o, &r, &err), 0, "%s", err.message);
  if (case_cache) {
    aa_opts_t oc = o ? *o : (aa_opts_t){0};
    oc.cache = case_cache;
    aa_result_t *rc = NULL;
    cr_assert_eq(aa_reconcile(live, objs, &oc, &rc, &err), 0, "%s", err.message);
    same_result("parse cache", "with vs without", rc, r);
    cr_assert_str_eq(rc->owners, r->owners);
    cr_assert_eq(rc->annotation_changed, r->annotation_changed);
    cr_assert_eq(rc->write_needed, r->write_needed);
    aa_result_free(rc);
    /* Once more with every object read ahead into a new cache, the merge
     * handed only the stand-ins that gave: it parses none of them. */
    aa_opts_t oa = oc;
    oa.cache = aa_cache_new();
    json_t *ahead = json_array();
    size_t i;
    json_t *obj;
    json_array_foreach(objs, i, obj) {
      json_t *s = NULL, *again = NULL;
      cr_assert_eq(aa_cache_object_read(oa.cache, obj, oa.finalizer, &s), 1, "object %zu", i);
      cr_assert(aa_is_stand_in(s));
      cr_assert_eq(aa_cache_object_read(oa.cache, s, oa.finalizer, &again), 0, "a stand-in read");
      cr_assert_null(again);
      json_array_append_new(ahead, s);
    }
    cr_assert_eq(aa_reconcile(live, ahead, &oa, &rc, &err), 0, "%s", err.message);
    cr_assert_eq(aa_cache_object_hits(oa.cache), json_array_size(objs), "objects parsed again");
    same_from_cache("read ahead vs objects", rc, r);
    aa_cache_free(oa.cache);
    /* A cache without their parses: the merge says so, and decides nothing. */
    aa_opts_t empty = oc;
    empty.cache = aa_cache_new();
    static aa_result_t untouched;
    rc = &untouched; /* must come back NULL */
    if (json_array_size(ahead)) {
      cr_assert_eq(aa_reconcile(live, ahead, &empty, &rc, &err), AA_ESTANDIN);
      cr_assert_null(rc);
      cr_assert(strstr(err.message, "stand-in"), "%s", err.message);
    }
    aa_cache_free(empty.cache);
    json_decref(ahead);
  }
  return r;
}

static json_t *apply_ok(const json_t *live, const aa_result_t *r) {
  json_t *cm = NULL;
  ck_error_t err = {0};
  cr_assert_eq(aa_apply(live, NULL, r, &cm, &err), 0, "%s", err.message);
  return cm;
}

static bool status_has(const aa_result_t *r, const char *text) {
  if (r->blocked_msg && strstr(r->blocked_msg, text))
    return true;
  for (size_t i = 0; i < r->nobjs; i++) {
    const aa_obj_status_t *s = &r->objs[i];
    if ((s->invalid_msg && strstr(s->invalid_msg, text)) ||
        (s->conflict_msg && strstr(s->conflict_msg, text)))
      return true;
    size_t j;
    json_t *w;
    json_array_foreach(s->warnings, j, w) {
      if (strstr(json_string_value(w), text))
        return true;
    }
  }
  return false;
}

static void check_flags(const merge_case_t *c, const aa_result_t *r) {
  const char *f = c->flags ? c->flags : "";
  for (size_t i = 0; i < r->nobjs; i++) {
    const aa_obj_status_t *s = &r->objs[i];
    char got[16];
    size_t n = 0;
    got[n++] = s->valid ? 'V' : 'I';
    if (s->conflicted) got[n++] = 'C';
    if (s->suspended) got[n++] = 'S';
    if (s->deleting) got[n++] = 'D';
    if (s->release_after_write) got[n++] = 'R';
    if (s->release_now) got[n++] = 'N';
    if (json_array_size(s->warnings)) got[n++] = 'W';
    got[n] = '\0';
    size_t wl = strcspn(f, ",");
    cr_assert(wl == n && memcmp(f, got, n) == 0, "%s: object %zu flags %s, want %.*s (%s %s)",
              c->name, i, got, (int)wl, f, s->invalid_msg ? s->invalid_msg : "",
              s->conflict_msg ? s->conflict_msg : "");
    f += wl + (f[wl] == ',');
  }
  cr_assert_eq(*f, '\0', "%s: flags for more objects than given", c->name);
}

static void check_out(const char *name, const char *what, const char *got, const char *want) {
  if (want == ANY)
    return;
  if (!want)
    cr_assert_null(got, "%s: %s rewritten:\n%s", name, what, got);
  else
    cr_assert(got && !strcmp(got, want), "%s: %s is\n%s\nwant\n%s", name, what, got ? got : "(null)",
              want);
}

static json_t *reversed(const json_t *a) {
  json_t *r = json_array();
  for (size_t i = json_array_size(a); i-- > 0;)
    json_array_append(r, json_array_get(a, i));
  return r;
}

static void run_merge_case(const merge_case_t *c) {
  case_cache = aa_cache_new();
  cr_assert_not_null(case_cache);
  json_t *live = c->live_absent ? NULL : make_cm(c);
  if (c->stage1) {
    json_t *o1 = quotes(c->stage1);
    aa_result_t *r1 = reconcile_ok(live, o1, NULL);
    cr_assert_eq(r1->blocked, AA_BLOCK_NONE, "%s: stage 1 blocked: %s", c->name, r1->blocked_msg);
    json_t *next = apply_ok(live, r1);
    json_decref(live);
    live = next;
    aa_result_free(r1);
    json_decref(o1);
    if (c->edit_roles)
      json_object_set_new(json_object_get(live, "data"), "mapRoles", json_string(c->edit_roles));
  }
  json_t *objs = quotes(c->objects);
  aa_result_t *r = reconcile_ok(live, objs, &c->opts);
  cr_assert_eq(r->blocked, c->blocked, "%s: blocked %s (%s), want %s", c->name,
               aa_block_reason(r->blocked), r->blocked_msg ? r->blocked_msg : "",
               aa_block_reason(c->blocked));
  check_flags(c, r);
  if (c->text)
    cr_assert(status_has(r, c->text), "%s: no message with \"%s\"", c->name, c->text);
  if (c->drifted >= 0 && c->stage1)
    cr_assert_eq(r->drifted, (size_t)c->drifted, "%s: drifted %zu", c->name, r->drifted);
  if (c->blocked) {
    cr_assert(!r->write_needed && !r->map_roles && !r->map_users, "%s: blocked but writes", c->name);
    cr_assert_not_null(r->blocked_msg);
  } else {
    check_out(c->name, "mapRoles", r->map_roles, c->want_roles);
    check_out(c->name, "mapUsers", r->map_users, c->want_users);
    cr_assert_eq(r->write_needed, c->write, "%s: write_needed %d", c->name, r->write_needed);
    /* Determinism: the objects in another order give the same bytes. */
    json_t *rev = reversed(objs);
    aa_result_t *r2 = reconcile_ok(live, rev, &c->opts);
    cr_assert_str_eq(r2->owners, r->owners, "%s: owners differ by input order", c->name);
    check_out(c->name, "mapRoles (reversed input)", r2->map_roles, r->map_roles);
    check_out(c->name, "mapUsers (reversed input)", r2->map_users, r->map_users);
    aa_result_free(r2);
    json_decref(rev);
    if (r->write_needed && live) {
      /* Other keys, labels and binaryData survive; a second pass is a no-op. */
      json_t *after = apply_ok(live, r);
      json_t *d = json_object_get(after, "data");
      cr_assert_str_eq(json_string_value(json_object_get(d, "mapAccounts")), "- \"" ACCT "\"\n");
      cr_assert_str_eq(json_string_value(json_object_get(d, "other")), "x");
      cr_assert_str_eq(cktest_jstr(after, "binaryData.blob"), "AAEC");
      cr_assert_str_eq(cktest_jstr(after, "metadata.labels.keep"), "me");
      cr_assert_str_eq(cktest_jstr(after, "metadata.resourceVersion"), "7");
      cr_assert_null(json_object_get(json_object_get(after, "metadata"), "ownerReferences"));
      aa_result_t *r3 = reconcile_ok(after, objs, &c->opts);
      cr_assert(!r3->write_needed && !r3->blocked, "%s: second pass writes again (%s)", c->name,
                r3->blocked_msg ? r3->blocked_msg : "");
      aa_result_free(r3);
      json_decref(after);
    }
  }
  aa_result_free(r);
  json_decref(objs);
  json_decref(live);
  cache_hits_total += aa_cache_hits(case_cache);
  object_hits_total += aa_cache_object_hits(case_cache);
  aa_cache_free(case_cache);
  case_cache = NULL;
}

CK_TEST(awsauth, merge_table) {
  for (size_t i = 0; i < sizeof merge_cases / sizeof *merge_cases; i++)
    run_merge_case(&merge_cases[i]);
  /* The cached runs did take lists from the cache (else they prove nothing). */
  cr_assert_gt(cache_hits_total, sizeof merge_cases / sizeof *merge_cases / 2,
               "%zu cache hits", cache_hits_total);
  /* ... and objects read by the merge before (the same json_t again). */
  cr_assert_gt(object_hits_total, sizeof merge_cases / sizeof *merge_cases,
               "%zu objects from the cache", object_hits_total);
}

/* ---- cases that need more than a table row ------------------------------- */

/* An object mapping `n` roles named <prefix>N, with `pad` bytes of username. */
static json_t *many_roles(const char *name, const char *ts, size_t n, const char *prefix,
                          size_t pad, const char *mdextra) {
  json_t *roles = json_array();
  char *user = malloc(pad + 2);
  memset(user, 'u', pad + 1);
  user[pad + 1] = '\0';
  for (size_t i = 0; i < n; i++) {
    char arn[128];
    snprintf(arn, sizeof arn, IAM "role/%s%zu", prefix, i);
    json_array_append_new(roles, json_pack("{s:s,s:s,s:[s]}", "rolearn", arn, "username", user,
                                           "groups", "view"));
  }
  free(user);
  char meta[512];
  snprintf(meta, sizeof meta,
           "{\"namespace\":\"kube-system\",\"name\":\"%s\",\"uid\":\"uid-%s\","
           "\"creationTimestamp\":\"%s\"%s}",
           name, name, ts, mdextra);
  json_t *o = json_pack("{s:o,s:{s:o}}", "metadata", cktest_json(meta), "spec", "mapRoles", roles);
  return o;
}

CK_TEST(awsauth, missing_or_null_data) {
  static const char *const cms[] = {
      "{\"metadata\":{\"name\":\"aws-auth\",\"namespace\":\"kube-system\"}}",
      "{\"metadata\":{\"name\":\"aws-auth\",\"namespace\":\"kube-system\"},\"data\":null}",
      "{\"metadata\":{\"name\":\"aws-auth\"},\"data\":{\"mapAccounts\":\"[]\"},"
      "\"binaryData\":{\"b\":\"AAAA\"}}",
  };
  for (size_t i = 0; i < sizeof cms / sizeof *cms; i++) {
    json_t *live = cktest_json(cms[i]);
    json_t *objs = quotes("[" ROLE("a", T1, "admin", "admin", "system:masters") "]");
    aa_result_t *r = reconcile_ok(live, objs, NULL);
    cr_assert_eq(r->blocked, AA_BLOCK_NONE, "cm %zu: %s", i, r->blocked_msg);
    cr_assert_str_eq(r->map_roles, OWN("admin", "admin", "system:masters"));
    cr_assert_null(r->map_users);
    json_t *after = apply_ok(live, r);
    cr_assert_str_eq(cktest_jstr(after, "data.mapRoles"), r->map_roles);
    aa_result_free(r);
    json_decref(after);
    json_decref(objs);
    json_decref(live);
  }
}

CK_TEST(awsauth, non_string_data_value_is_unparsable) {
  json_t *live = cktest_json("{\"data\":{\"mapRoles\":5}}");
  aa_result_t *r = reconcile_ok(live, NULL, NULL);
  cr_assert_eq(r->blocked, AA_BLOCK_UNPARSABLE);
  cr_assert(strstr(r->parse_error, "not a string"));
  aa_result_free(r);
  json_decref(live);
}

CK_TEST(awsauth, ownership_annotation_shape) {
  json_t *objs = quotes("[" ROLE("a", T1, "Admin", "admin", "system:masters") "]");
  aa_result_t *r = reconcile_ok(NULL, objs, NULL);
  json_t *ann = cktest_json(r->owners);
  json_t *rec = json_object_get(ann, IAM "role/admin"); /* key lower-cased */
  cr_assert(json_is_object(rec), "%s", r->owners);
  cr_assert_str_eq(json_string_value(json_object_get(rec, "owner")), "kube-system/a");
  cr_assert_str_eq(json_string_value(json_object_get(rec, "uid")), "uid-a");
  cr_assert_eq(strlen(json_string_value(json_object_get(rec, "hash"))), 16);
  cr_assert_eq(r->objs[0].entries, 1);
  cr_assert_str_eq(json_string_value(json_array_get(r->objs[0].arns, 0)), IAM "role/Admin");
  cr_assert_eq(r->objs[0].generation, 3);
  cr_assert(r->objs[0].has_finalizer);
  cr_assert(r->recreate && r->write_needed && r->added == 1);
  json_t *cm = apply_ok(NULL, r);
  cr_assert_str_eq(cktest_jstr(cm, "metadata.name"), "aws-auth");
  cr_assert_str_eq(cktest_jstr(cm, "metadata.namespace"), "kube-system");
  json_decref(cm);
  json_decref(ann);
  aa_result_free(r);
  json_decref(objs);
}

CK_TEST(awsauth, max_removals_interlock) {
  json_t *o1 = json_array();
  json_array_append_new(o1, many_roles("a", T1, 12, "r", 4, ""));
  aa_result_t *r1 = reconcile_ok(NULL, o1, NULL);
  cr_assert_eq(r1->added, 12);
  json_t *live = apply_ok(NULL, r1);
  json_t *o2 = json_array();
  json_array_append_new(o2, many_roles("a", T1, 12, "r", 4, ",\"deletionTimestamp\":\"" T3 "\""));
  aa_result_t *r2 = reconcile_ok(live, o2, NULL);
  cr_assert_eq(r2->blocked, AA_BLOCK_REMOVALS);
  cr_assert_eq(r2->removed, 12);
  cr_assert(!r2->objs[0].release_after_write && !r2->objs[0].release_now);
  aa_opts_t unlimited = {.max_removals = -1};
  aa_result_t *r3 = reconcile_ok(live, o2, &unlimited);
  cr_assert_eq(r3->blocked, AA_BLOCK_NONE);
  cr_assert_str_eq(r3->map_roles, "[]\n");
  cr_assert(r3->objs[0].release_after_write);
  aa_opts_t twelve = {.max_removals = 12};
  aa_result_t *r4 = reconcile_ok(live, o2, &twelve);
  cr_assert_eq(r4->blocked, AA_BLOCK_NONE);
  aa_result_free(r1);
  aa_result_free(r2);
  aa_result_free(r3);
  aa_result_free(r4);
  json_decref(o1);
  json_decref(o2);
  json_decref(live);
}

CK_TEST(awsauth, result_over_one_mib_refused) {
  json_t *objs = json_array();
  for (int i = 0; i < 5; i++) {
    char name[16], prefix[16];
    snprintf(name, sizeof name, "big%d", i);
    snprintf(prefix, sizeof prefix, "p%d-", i);
    json_array_append_new(objs, many_roles(name, T1, 1000, prefix, 250, ""));
  }
  aa_result_t *r = reconcile_ok(NULL, objs, NULL);
  cr_assert_eq(r->blocked, AA_BLOCK_TOO_BIG, "%s", aa_block_reason(r->blocked));
  cr_assert(strstr(r->blocked_msg, "1 MiB"), "%s", r->blocked_msg);
  cr_assert(!r->write_needed && !r->map_roles);
  aa_result_free(r);
  json_decref(objs);
}

/* Correctness at scale only: speed is measured in bench/, never asserted. */
CK_TEST(awsauth, thousands_of_entries_deterministic) {
  json_t *objs = json_array();
  for (int i = 0; i < 2000; i++) {
    char name[16], ts[32];
    snprintf(name, sizeof name, "o%04d", (i * 7919) % 2000);
    snprintf(ts, sizeof ts, "2024-01-%02dT00:00:00Z", 1 + i % 28);
    json_array_append_new(objs, many_roles(name, ts, 1, name, 4, ""));
  }
  /* One shared ARN: exactly one winner. */
  json_array_append_new(objs, many_roles("zz-dup", T1, 1, "o0000", 4, ""));
  aa_result_t *r = reconcile_ok(NULL, objs, NULL);
  cr_assert_eq(r->blocked, AA_BLOCK_NONE, "%s", r->blocked_msg);
  cr_assert_eq(r->owned, 2000);
  json_t *rev = reversed(objs);
  aa_result_t *r2 = reconcile_ok(NULL, rev, NULL);
  cr_assert_str_eq(r2->map_roles, r->map_roles);
  cr_assert_str_eq(r2->owners, r->owners);
  size_t conflicted = 0;
  for (size_t i = 0; i < r->nobjs; i++)
    conflicted += r->objs[i].conflicted;
  cr_assert_eq(conflicted, 1);
  json_t *live = apply_ok(NULL, r);
  aa_result_t *r3 = reconcile_ok(live, objs, NULL);
  cr_assert(!r3->write_needed);
  aa_result_free(r);
  aa_result_free(r2);
  aa_result_free(r3);
  json_decref(live);
  json_decref(rev);
  json_decref(objs);
}

CK_TEST(awsauth, recreate_from_last_known) {
  merge_case_t c = {.roles = NODE_LIVE};
  json_t *last = make_cm(&c);
  json_t *objs = quotes("[" ROLE("a", T1, "admin", "admin", "system:masters") "]");
  aa_opts_t o = {.last_known = last};
  aa_result_t *r = reconcile_ok(NULL, objs, &o);
  cr_assert(r->recreate && r->write_needed);
  cr_assert_str_eq(r->map_roles, NODE_EMIT OWN("admin", "admin", "system:masters"));
  json_t *cm = NULL;
  cr_assert_eq(aa_apply(NULL, last, r, &cm, NULL), 0);
  cr_assert_null(json_object_get(json_object_get(cm, "metadata"), "resourceVersion"));
  cr_assert_str_eq(cktest_jstr(cm, "data.mapAccounts"), "- \"" ACCT "\"\n");
  json_decref(cm);
  aa_result_free(r);
  json_decref(objs);
  json_decref(last);
}

CK_TEST(awsauth, blocked_result_cannot_be_applied) {
  json_t *live = cktest_json("{\"data\":{\"mapRoles\":\"- [\"}}");
  aa_result_t *r = reconcile_ok(live, NULL, NULL);
  json_t *cm = (json_t *)1;
  ck_error_t err = {0};
  cr_assert_eq(aa_apply(live, NULL, r, &cm, &err), CK_EINVAL);
  cr_assert_null(cm);
  cr_assert(strstr(err.message, "LiveDataUnparsable"), "%s", err.message);
  aa_result_free(r);
  json_decref(live);
}

/* ---- the compact (v2) ownership annotation -------------------------------- */

/* Everything below computes v2 values on its own (OpenSSL directly), so a
 * test fails when merge.c and the documented format disagree. */

static void sha256(const void *a, size_t na, const void *b, size_t nb, unsigned char out[32]) {
  EVP_MD_CTX *m = EVP_MD_CTX_new();
  unsigned int l = 0;
  cr_assert(m && EVP_DigestInit_ex(m, EVP_sha256(), NULL) && EVP_DigestUpdate(m, a, na) &&
            EVP_DigestUpdate(m, b, nb) && EVP_DigestFinal_ex(m, out, &l) && l == 32);
  EVP_MD_CTX_free(m);
}

static int cmp16(const void *a, const void *b) { return memcmp(a, b, 16); }

/* One v2 record: key, owner identity, entry hash (16 hex digits). */
static void v2_record(unsigned char p[16], const char *key, const char *owner, const char *uid,
                      const char *hash) {
  unsigned char d[32];
  sha256(key, strlen(key), "", 0, d);
  memcpy(p, d, 8);
  sha256(owner, strlen(owner) + 1, uid, strlen(uid), d);
  memcpy(p + 8, d, 5);
  for (int j = 0; j < 3; j++) {
    unsigned x = 0;
    cr_assert_eq(sscanf(hash + 2 * j, "%2x", &x), 1, "hash %s", hash);
    p[13 + j] = (unsigned char)x;
  }
}

/* "v2:" + base64 of n records (sorted first when asked). */
static char *v2_text(unsigned char *recs, size_t n, bool sort) {
  if (sort && n)
    qsort(recs, n, 16, cmp16);
  char *t = malloc(3 + (n * 16 + 2) / 3 * 4 + 1);
  memcpy(t, "v2:", 3);
  EVP_EncodeBlock((unsigned char *)t + 3, recs, (int)(n * 16));
  return t;
}

/* The v2 form of a v1 annotation. */
static char *v1_to_v2(const char *v1) {
  json_t *a = cktest_json(v1);
  size_t n = json_object_size(a), i = 0;
  unsigned char *recs = calloc(n + 1, 16);
  const char *key;
  json_t *rec;
  json_object_foreach(a, key, rec) {
    const char *uid = json_string_value(json_object_get(rec, "uid"));
    v2_record(recs + 16 * i++, key, json_string_value(json_object_get(rec, "owner")),
              uid ? uid : "", json_string_value(json_object_get(rec, "hash")));
  }
  char *t = v2_text(recs, n, true);
  free(recs);
  json_decref(a);
  return t;
}

/* The v2 records of a "v2:" text (n set), NULL when it is not one. */
static unsigned char *v2_decode(const char *t, size_t *n) {
  if (strncmp(t, "v2:", 3) != 0)
    return NULL;
  size_t len = strlen(t + 3);
  unsigned char *b = malloc(len / 4 * 3 + 1);
  int got = EVP_DecodeBlock(b, (const unsigned char *)t + 3, (int)len);
  cr_assert_geq(got, 0, "bad base64 in %.40s", t);
  size_t nb = (size_t)got - (len >= 1 && t[3 + len - 1] == '=') - (len >= 2 && t[3 + len - 2] == '=');
  cr_assert_eq(nb % 16, 0);
  *n = nb / 16;
  return b;
}

static const char *owners_of(const json_t *cm) {
  return json_string_value(json_object_get(
      json_object_get(json_object_get(cm, "metadata"), "annotations"), AA_OWNERS_ANNOTATION));
}

static void set_annotation(json_t *cm, const char *key, const char *value) {
  json_t *md = json_object_get(cm, "metadata");
  json_t *ann = json_object_get(md, "annotations");
  if (!json_is_object(ann)) {
    ann = json_object();
    json_object_set_new(md, "annotations", ann);
  }
  json_object_set_new(ann, key, json_string(value));
}

/* Another annotation that leaves `room` bytes for the ownership
 * annotation's value: 80 holds a v2 value of up to 3 records (67 bytes)
 * and no v1 record (96 bytes at least for these tests' names). */
static void pad_annotations(json_t *cm, size_t room) {
  size_t n = AA_MAX_ANNOTATIONS_BYTES - strlen("pad") - strlen(AA_OWNERS_ANNOTATION) - room;
  char *p = malloc(n + 1);
  memset(p, 'p', n);
  p[n] = '\0';
  set_annotation(cm, "pad", p);
  free(p);
}

static bool str_same(const char *a, const char *b) { return (!a && !b) || (a && b && !strcmp(a, b)); }

/* Everything a reconcile decides, but the annotation's text. */
static void same_result(const char *name, const char *what, const aa_result_t *a,
                        const aa_result_t *b) {
  cr_assert_eq(a->blocked, b->blocked, "%s (%s): blocked %s vs %s (%s)", name, what,
               aa_block_reason(a->blocked), aa_block_reason(b->blocked),
               b->blocked_msg ? b->blocked_msg : "");
  cr_assert(str_same(a->blocked_msg, b->blocked_msg), "%s (%s): %s vs %s", name, what,
            a->blocked_msg, b->blocked_msg);
  cr_assert(str_same(a->map_roles, b->map_roles), "%s (%s): mapRoles\n%s\nvs\n%s", name, what,
            a->map_roles, b->map_roles);
  cr_assert(str_same(a->map_users, b->map_users), "%s (%s): mapUsers", name, what);
  cr_assert_eq(a->data_changed, b->data_changed, "%s (%s)", name, what);
  cr_assert(a->owned == b->owned && a->foreign == b->foreign && a->added == b->added &&
                a->updated == b->updated && a->removed == b->removed &&
                a->drifted == b->drifted && a->repaired == b->repaired,
            "%s (%s): counts %zu/%zu/%zu/%zu/%zu/%zu/%zu vs %zu/%zu/%zu/%zu/%zu/%zu/%zu", name, what,
            a->owned, a->foreign, a->added, a->updated, a->removed, a->drifted, a->repaired,
            b->owned, b->foreign, b->added, b->updated, b->removed, b->drifted, b->repaired);
  cr_assert(json_equal(a->drift, b->drift), "%s (%s): drift differs", name, what);
  cr_assert_eq(a->nobjs, b->nobjs);
  for (size_t i = 0; i < a->nobjs; i++) {
    const aa_obj_status_t *x = &a->objs[i], *y = &b->objs[i];
    cr_assert(x->valid == y->valid && x->conflicted == y->conflicted &&
                  x->suspended == y->suspended && x->release_now == y->release_now &&
                  x->release_after_write == y->release_after_write && x->entries == y->entries,
              "%s (%s): object %zu: entries %zu vs %zu, release now %d/%d, after write %d/%d",
              name, what, i, x->entries, y->entries, x->release_now, y->release_now,
              x->release_after_write, y->release_after_write);
    cr_assert(str_same(x->conflict_msg, y->conflict_msg), "%s (%s): object %zu", name, what, i);
  }
}

/* A second reconcile of what `r` writes changes nothing. */
static void stable_after(const char *name, const json_t *live, const aa_result_t *r,
                         const json_t *objs, const aa_opts_t *o) {
  if (r->blocked || !r->write_needed)
    return;
  json_t *after = apply_ok(live, r);
  aa_result_t *r2 = reconcile_ok(after, objs, o);
  cr_assert(!r2->blocked && !r2->write_needed, "%s: second pass %s, writes %d (%s)", name,
            aa_block_reason(r2->blocked), r2->write_needed, r2->blocked_msg ? r2->blocked_msg : "");
  cr_assert_str_eq(r2->owners, r->owners, "%s: annotation changes on the second pass", name);
  aa_result_free(r2);
  json_decref(after);
}

/* Every merge case with a first stage, with the annotation it wrote read
 * as v1 and as v2, written as v1 and (other annotations padded) as v2:
 * the same decisions each time. */
CK_TEST(awsauth, annotation_v2_reads_like_v1) {
  size_t compared = 0;
  for (size_t i = 0; i < sizeof merge_cases / sizeof *merge_cases; i++) {
    const merge_case_t *c = &merge_cases[i];
    if (!c->stage1 || c->live_absent)
      continue;
    json_t *live = make_cm(c);
    json_t *o1 = quotes(c->stage1);
    aa_result_t *r1 = reconcile_ok(live, o1, NULL);
    json_t *next = apply_ok(live, r1);
    json_decref(live);
    live = next;
    aa_result_free(r1);
    json_decref(o1);
    if (c->edit_roles)
      json_object_set_new(json_object_get(live, "data"), "mapRoles", json_string(c->edit_roles));
    const char *v1 = owners_of(live);
    if (!strcmp(v1, "{}"))
      continue;
    char *v2 = v1_to_v2(v1);
    json_t *objs = quotes(c->objects);
    for (int pad = 0; pad < 2; pad++) {
      const char *what = pad ? "written as v2" : "written as v1";
      json_t *l1 = json_deep_copy(live), *l2 = json_deep_copy(live);
      set_annotation(l2, AA_OWNERS_ANNOTATION, v2);
      if (pad) {
        pad_annotations(l1, 80);
        pad_annotations(l2, 80);
      }
      aa_result_t *a = reconcile_ok(l1, objs, &c->opts);
      aa_result_t *b = reconcile_ok(l2, objs, &c->opts);
      same_result(c->name, what, a, b);
      if (!a->blocked) {
        bool reported = a->drifted && c->opts.drift == AA_DRIFT_REPORT;
        if (pad) {
          cr_assert(!strncmp(a->owners, "v2:", 3) || !strcmp(a->owners, "{}"), "%s: %s",
                    c->name, a->owners);
          /* Carried records keep their bytes; new ones are the same. */
          cr_assert_str_eq(b->owners, a->owners, "%s (%s): %s vs %s", c->name, what, a->owners, b->owners);
          cr_assert_eq(b->annotation_changed, strcmp(b->owners, v2) != 0, "%s", c->name);
        } else if (!reported) {
          cr_assert_str_eq(b->owners, a->owners, "%s (%s)", c->name, what);
        } else {
          /* A record reported as drifted, back in v1: its 24 bits. */
          json_t *ja = cktest_json(a->owners), *jb = cktest_json(b->owners);
          const char *key;
          json_t *ra;
          json_object_foreach(ja, key, ra) {
            const char *ha = json_string_value(json_object_get(ra, "hash"));
            const char *hb = json_string_value(json_object_get(json_object_get(jb, key), "hash"));
            cr_assert(hb && (!strcmp(ha, hb) || (strlen(hb) == 6 && !strncmp(ha, hb, 6))),
                      "%s: %s vs %s", c->name, ha, hb ? hb : "(none)");
          }
          json_decref(ja);
          json_decref(jb);
        }
        if (!pad)
          cr_assert(!strncmp(b->owners, "{", 1), "%s: not back to v1: %.20s", c->name, b->owners);
      }
      stable_after(c->name, l1, a, objs, &c->opts);
      stable_after(c->name, l2, b, objs, &c->opts);
      aa_result_free(a);
      aa_result_free(b);
      json_decref(l1);
      json_decref(l2);
    }
    compared++;
    free(v2);
    json_decref(objs);
    json_decref(live);
  }
  cr_assert_geq(compared, 10, "only %zu cases compared", compared);
}

/* n objects o00000.. with one role each (role/o00000<i>, 1-byte pad). */
static json_t *n_objects(size_t from, size_t n, const char *mdextra) {
  json_t *objs = json_array();
  for (size_t i = from; i < from + n; i++) {
    char name[16];
    snprintf(name, sizeof name, "o%05zu", i);
    json_array_append_new(objs, many_roles(name, T1, 1, name, 1, mdextra));
  }
  return objs;
}

static json_t *empty_cm(void) {
  merge_case_t c = {0};
  return make_cm(&c);
}

/* v1 up to AA_V1_MAX_BYTES of text, v2 from the record that passes it. */
CK_TEST(awsauth, annotation_v1_up_to_its_bound) {
  json_t *live = empty_cm();
  size_t last_v1 = 0, last_len = 0, rec_len = 0;
  for (size_t n = 100; n <= 600 && !last_v1; n += 1) {
    json_t *objs = n_objects(0, n, "");
    aa_result_t *r = reconcile_ok(live, objs, NULL);
    cr_assert_eq(r->blocked, AA_BLOCK_NONE, "%zu: %s", n, r->blocked_msg);
    if (r->owners[0] == '{') {
      cr_assert_leq(strlen(r->owners), AA_V1_MAX_BYTES, "%zu records", n);
      rec_len = (strlen(r->owners) - last_len);
      last_len = strlen(r->owners);
    } else {
      cr_assert(!strncmp(r->owners, "v2:", 3), "%zu records: %.20s", n, r->owners);
      cr_assert_gt(n, 100, "100 records are v1");
      last_v1 = n - 1;
    }
    aa_result_free(r);
    json_decref(objs);
  }
  cr_assert_gt(last_v1, 0, "v1 for 600 records (over %zu bytes)", AA_V1_MAX_BYTES);
  /* The switch is at the bound: one more record would not fit. */
  cr_assert_gt(last_len + rec_len, AA_V1_MAX_BYTES, "v2 after %zu records, v1 of %zu bytes",
               last_v1 + 1, last_len);
  json_decref(live);
}

/* A long v1 annotation (written before the bound) is read as before, and
 * the next write makes it v2 without changing what anyone owns. */
CK_TEST(awsauth, annotation_long_v1_becomes_v2) {
  json_t *live = empty_cm();
  json_t *objs = n_objects(0, 1000, "");
  json_t *recs = json_object();
  ck_buf_t roles = {0};
  for (size_t i = 0; i < 1000; i++) {
    char arn[96], owner[48], uid[32], h[17];
    snprintf(arn, sizeof arn, IAM "role/o%05zu0", i);
    snprintf(owner, sizeof owner, "kube-system/o%05zu", i);
    snprintf(uid, sizeof uid, "uid-o%05zu", i);
    json_t *entry = json_pack("{s:s,s:s,s:[s]}", "rolearn", arn, "username", "uu", "groups", "view");
    aa_entry_hash(entry, h);
    json_decref(entry);
    json_object_set_new(recs, arn, json_pack("{s:s,s:s,s:s}", "hash", h, "owner", owner, "uid", uid));
    ck_buf_printf(&roles, "- rolearn: \"%s\"\n  username: \"uu\"\n  groups:\n    - \"view\"\n", arn);
  }
  char *v1 = json_dumps(recs, JSON_COMPACT | JSON_SORT_KEYS);
  cr_assert_gt(strlen(v1), AA_V1_MAX_BYTES);
  set_annotation(live, AA_OWNERS_ANNOTATION, v1);
  json_object_set_new(json_object_get(live, "data"), "mapRoles", json_string(roles.data));
  aa_result_t *r = reconcile_ok(live, objs, NULL);
  cr_assert_eq(r->blocked, AA_BLOCK_NONE, "%s", r->blocked_msg);
  cr_assert(r->owned == 1000 && r->foreign == 0 && r->added == 0 && r->updated == 0 &&
                r->removed == 0 && r->drifted == 0,
            "owned %zu foreign %zu +%zu ~%zu -%zu drifted %zu", r->owned, r->foreign, r->added,
            r->updated, r->removed, r->drifted);
  cr_assert(!r->data_changed && r->annotation_changed && r->write_needed);
  size_t n = 0;
  unsigned char *b = v2_decode(r->owners, &n);
  cr_assert_not_null(b, "not v2: %.20s", r->owners);
  cr_assert_eq(n, 1000);
  free(b);
  stable_after("long v1 to v2", live, r, objs, NULL);
  aa_result_free(r);
  free(v1);
  ck_buf_free(&roles);
  json_decref(recs);
  json_decref(objs);
  json_decref(live);
}

CK_TEST(awsauth, annotation_v2_only_above_the_limit) {
  json_t *live = empty_cm();
  aa_result_t *r;

  json_t *objs = n_objects(0, 3000, "");
  r = reconcile_ok(live, objs, NULL);
  cr_assert_eq(r->blocked, AA_BLOCK_NONE, "%s", r->blocked_msg);
  cr_assert_eq(r->added, 3000);
  cr_assert_eq(strlen(r->owners), 3 + 3000 * 16 / 3 * 4, "%zu", strlen(r->owners));
  size_t n = 0;
  unsigned char *b = v2_decode(r->owners, &n);
  cr_assert_not_null(b, "not v2: %.20s", r->owners);
  cr_assert_eq(n, 3000);
  for (size_t i = 1; i < n; i++)
    cr_assert_lt(memcmp(b + 16 * (i - 1), b + 16 * i, 8), 0, "record %zu not after %zu", i, i - 1);
  /* The record of o00042, built here from the documented format. */
  json_t *entry = json_pack("{s:s,s:s,s:[s]}", "rolearn", IAM "role/o000420", "username", "uu",
                            "groups", "view");
  char h[17];
  aa_entry_hash(entry, h);
  unsigned char want[16];
  v2_record(want, IAM "role/o000420", "kube-system/o00042", "uid-o00042", h);
  cr_assert_not_null(bsearch(want, b, n, 16, cmp16), "record of o00042 missing or different");
  free(b);
  json_decref(entry);
  for (size_t i = 0; i < r->nobjs; i++)
    cr_assert_eq(r->objs[i].entries, 1, "object %zu", i);
  json_t *v2live = apply_ok(live, r);
  aa_result_t *r2 = reconcile_ok(v2live, objs, NULL);
  cr_assert(!r2->blocked && !r2->write_needed, "%s", r2->blocked_msg ? r2->blocked_msg : "writes");
  cr_assert_eq(r2->owned, 3000);
  cr_assert_str_eq(r2->owners, r->owners);

  /* A foreign entry among them, whose key no record has, stays foreign;
   * an object asking for it is told so and takes nothing. */
  json_t *d = json_object_get(v2live, "data");
  char *roles = cktest_asprintf("- rolearn: " IAM "role/hand\n  username: hand\n%s",
                                json_string_value(json_object_get(d, "mapRoles")));
  json_object_set_new(d, "mapRoles", json_string(roles));
  free(roles);
  json_array_append_new(objs, quotes(ROLE("zz", T2, "hand", "z", "view")));
  aa_result_t *r3 = reconcile_ok(v2live, objs, NULL);
  cr_assert_eq(r3->blocked, AA_BLOCK_NONE, "%s", r3->blocked_msg);
  cr_assert(!r3->write_needed && r3->foreign == 1 && r3->owned == 3000, "write %d foreign %zu",
            r3->write_needed, r3->foreign);
  cr_assert(r3->objs[3000].conflicted && strstr(r3->objs[3000].conflict_msg, "takeOver"));
  cr_assert_eq(r3->objs[3000].entries, 0);
  aa_result_free(r3);

  aa_result_free(r);
  aa_result_free(r2);
  json_decref(v2live);
  json_decref(objs);
  json_decref(live);
}

CK_TEST(awsauth, annotation_v2_back_to_v1_when_it_fits) {
  json_t *live = empty_cm();
  json_t *objs = n_objects(0, 3000, "");
  aa_result_t *r = reconcile_ok(live, objs, NULL);
  json_t *v2live = apply_ok(live, r);
  cr_assert(!strncmp(owners_of(v2live), "v2:", 3));
  /* 2900 of them are being deleted: their entries go, the finalizers can
   * go after the write (not before: the v2 records name them). */
  json_t *next = n_objects(0, 100, "");
  json_t *going = n_objects(100, 2900, ",\"deletionTimestamp\":\"" T3 "\"");
  json_array_extend(next, going);
  aa_opts_t o = {.max_removals = -1};
  aa_result_t *r2 = reconcile_ok(v2live, next, &o);
  cr_assert_eq(r2->blocked, AA_BLOCK_NONE, "%s", r2->blocked_msg);
  cr_assert_eq(r2->removed, 2900);
  cr_assert_eq(r2->owned, 100);
  json_t *ann = cktest_json(r2->owners);
  cr_assert(json_is_object(ann), "not v1: %.20s", r2->owners);
  cr_assert_eq(json_object_size(ann), 100);
  cr_assert_str_eq(json_string_value(json_object_get(json_object_get(ann, IAM "role/o000000"),
                                                     "owner")),
                   "kube-system/o00000");
  for (size_t i = 0; i < 3000; i++) {
    const aa_obj_status_t *s = &r2->objs[i];
    if (i < 100)
      cr_assert(s->entries == 1 && !s->release_now && !s->release_after_write, "object %zu", i);
    else
      cr_assert(s->entries == 0 && !s->release_now && s->release_after_write, "object %zu", i);
  }
  stable_after("back to v1", v2live, r2, next, &o);
  /* Still too many removals without the override. */
  aa_result_t *r3 = reconcile_ok(v2live, next, NULL);
  cr_assert_eq(r3->blocked, AA_BLOCK_REMOVALS);
  cr_assert(!r3->objs[2000].release_now && !r3->objs[2000].release_after_write);
  aa_result_free(r3);
  json_decref(ann);
  aa_result_free(r);
  aa_result_free(r2);
  json_decref(next);
  json_decref(going);
  json_decref(v2live);
  json_decref(objs);
  json_decref(live);
}

/* A v2 record with no live entry: dropped when its owner is gone, kept
 * (its v2 bytes) for an invalid owner, dropped when the output is v1. */
CK_TEST(awsauth, annotation_v2_record_without_live_entry) {
  json_t *live = empty_cm();
  pad_annotations(live, 80);
  json_t *objs = quotes("[" ROLE("a", T1, "admin", "admin", "system:masters") "," ROLE("b", T1, "bee", "b", "view") "," ROLE("c", T1, "cee", "c", "view") "]");
  aa_result_t *r = reconcile_ok(live, objs, NULL);
  cr_assert_eq(r->blocked, AA_BLOCK_NONE, "%s", r->blocked_msg);
  json_t *v2live = apply_ok(live, r);
  size_t n = 0;
  unsigned char *b = v2_decode(owners_of(v2live), &n);
  cr_assert(b && n == 3, "%.40s", owners_of(v2live));
  /* The entries of a and b removed by hand; a turns invalid, b is gone. */
  json_object_set_new(json_object_get(v2live, "data"), "mapRoles",
                      json_string(OWN("cee", "c", "view")));
  json_t *objs2 = quotes("[" ROLE("a", T1, "ad*min", "admin", "system:masters") "," ROLE("c", T1, "cee", "c", "view") "]");
  aa_result_t *r2 = reconcile_ok(v2live, objs2, NULL);
  cr_assert_eq(r2->blocked, AA_BLOCK_NONE, "%s", r2->blocked_msg);
  cr_assert(r2->removed == 0 && r2->drifted == 0 && !r2->map_roles, "removed %zu", r2->removed);
  size_t n2 = 0;
  unsigned char *b2 = v2_decode(r2->owners, &n2);
  cr_assert(b2 && n2 == 2, "%.40s", r2->owners);
  /* a's record is kept byte for byte. */
  json_t *aentry = json_pack("{s:s,s:s,s:[s]}", "rolearn", IAM "role/admin", "username", "admin",
                             "groups", "system:masters");
  char h[17];
  aa_entry_hash(aentry, h);
  unsigned char want[16];
  v2_record(want, IAM "role/admin", "kube-system/a", "uid-a", h);
  cr_assert_not_null(bsearch(want, b, n, 16, cmp16));
  cr_assert_not_null(bsearch(want, b2, n2, 16, cmp16));
  json_decref(aentry);
  free(b);
  free(b2);
  cr_assert(r2->objs[0].entries == 1 && r2->objs[1].entries == 1);
  cr_assert(r2->write_needed && r2->annotation_changed);
  stable_after("v2 record of an invalid owner", v2live, r2, objs2, NULL);
  /* Without the padding it is written as v1, where a record needs its key. */
  json_t *l3 = json_deep_copy(v2live);
  json_object_del(json_object_get(json_object_get(l3, "metadata"), "annotations"), "pad");
  aa_result_t *r3 = reconcile_ok(l3, objs2, NULL);
  cr_assert_eq(r3->blocked, AA_BLOCK_NONE, "%s", r3->blocked_msg);
  json_t *ann = cktest_json(r3->owners);
  cr_assert(json_object_size(ann) == 1 && json_object_get(ann, IAM "role/cee"), "%s", r3->owners);
  json_decref(ann);
  cr_assert(r3->objs[0].entries == 0 && r3->objs[1].entries == 1);
  stable_after("v2 back to v1 without the unknown key", l3, r3, objs2, NULL);
  /* a becomes valid again: its entry is put back, as a drift repair (the
   * record learns its key once a claim names it). */
  aa_result_t *r4 = reconcile_ok(v2live, objs, NULL);
  cr_assert_eq(r4->blocked, AA_BLOCK_NONE, "%s", r4->blocked_msg);
  cr_assert_str_eq(r4->map_roles, OWN("admin", "admin", "system:masters") OWN("bee", "b", "view")
                                      OWN("cee", "c", "view"));
  cr_assert_eq(r4->drifted, 2, "a's and b's entries removed by hand: %zu", r4->drifted);
  cr_assert_eq(r4->repaired, 2);
  aa_result_free(r4);
  json_decref(l3);
  aa_result_free(r);
  aa_result_free(r2);
  aa_result_free(r3);
  json_decref(objs);
  json_decref(objs2);
  json_decref(v2live);
  json_decref(live);
}

/* A v1 record that says "drifted" still says so in v2, even when its hash
 * and the edited live entry's share their first 24 bits. */
CK_TEST(awsauth, annotation_v1_to_v2_keeps_drift) {
  json_t *live = empty_cm();
  json_t *objs = quotes("[" ROLE("a", T1, "admin", "admin", "system:masters") "]");
  aa_result_t *r = reconcile_ok(live, objs, NULL);
  json_t *after = apply_ok(live, r);
  /* Someone edits the entry; the record's hash shares 24 bits with it. */
  const char *edited = "- rolearn: " IAM "role/admin\n  username: evil\n  groups: [system:masters]\n";
  json_object_set_new(json_object_get(after, "data"), "mapRoles", json_string(edited));
  aa_list_t l;
  cr_assert_eq(aa_list_parse(AA_ROLES, edited, strlen(edited), &l), 0);
  char h[17];
  aa_entry_hash(l.v[0].raw, h);
  aa_list_free(&l);
  memcpy(h + 6, h[6] == '0' ? "1111111111" : "0000000000", 10);
  json_t *ann = cktest_json(owners_of(after));
  json_t *rec = json_object_get(ann, IAM "role/admin");
  json_object_set_new(rec, "hash", json_string(h));
  char *text = json_dumps(ann, JSON_COMPACT | JSON_SORT_KEYS);
  set_annotation(after, AA_OWNERS_ANNOTATION, text);
  pad_annotations(after, 80);
  aa_opts_t report = {.drift = AA_DRIFT_REPORT};
  aa_result_t *r2 = reconcile_ok(after, objs, &report);
  cr_assert_eq(r2->blocked, AA_BLOCK_NONE, "%s", r2->blocked_msg);
  cr_assert_eq(r2->drifted, 1);
  cr_assert(!strncmp(r2->owners, "v2:", 3), "%s", r2->owners);
  json_t *next = apply_ok(after, r2);
  aa_result_t *r3 = reconcile_ok(next, objs, &report);
  cr_assert_eq(r3->drifted, 1, "the drift is forgotten in v2");
  cr_assert(!r3->write_needed);
  aa_result_free(r3);
  json_decref(next);
  aa_result_free(r2);
  free(text);
  json_decref(ann);
  json_decref(after);
  aa_result_free(r);
  json_decref(objs);
  json_decref(live);
}

static void expect_bad_annotation(const char *name, json_t *value, const char *why) {
  json_t *live = empty_cm();
  json_object_set_new(json_object_get(live, "data"), "mapRoles",
                      json_string("- rolearn: " IAM "role/admin\n  username: admin\n"));
  json_object_set_new(json_object_get(live, "metadata"), "annotations",
                      json_pack("{s:o}", AA_OWNERS_ANNOTATION, value));
  json_t *objs = quotes("[" ROLE("a", T1, "admin", "admin", "system:masters") "," ROLE_X("d", T1, DEL, "other", "o", "view", "") "]");
  aa_result_t *r = reconcile_ok(live, objs, NULL);
  cr_assert_eq(r->blocked, AA_BLOCK_ANNOTATION, "%s: %s", name, aa_block_reason(r->blocked));
  cr_assert(strstr(r->blocked_msg, AA_OWNERS_ANNOTATION) && strstr(r->blocked_msg, why),
            "%s: \"%s\" lacks \"%s\"", name, r->blocked_msg, why);
  cr_assert(!r->write_needed && !r->map_roles && !r->map_users, "%s", name);
  cr_assert(!r->objs[1].release_now && !r->objs[1].release_after_write, "%s", name);
  cr_assert_str_eq(r->owners, "{}", "%s", name);
  aa_result_free(r);
  json_decref(objs);
  json_decref(live);
}

CK_TEST(awsauth, annotation_v2_hostile_values) {
  static const struct {
    const char *text;
    const char *why;
  } cases[] = {
      {"v2:", "no records"},
      {"v2:!!!!", "not standard base64"},
      {"v2:====", "not standard base64"},
      {"v2:AA=A", "not standard base64"},
      {"v2:AAA", "multiple of 4"},
      {"v2:AAAAAAAAAAAAAAAAAAAAAA", "multiple of 4"},
      {"v2:AAAA", "3 bytes of records, not a multiple of 16"},
      {"v2:AAAAAAAAAAAAAAAAAAAAAB==", "canonical"},             /* stray bits */
      {"v2:AAAAAAAAAAAA\nAAAAAAAAAA==   ", "canonical"},         /* whitespace */
      {"v2:AAAAAAAAAAAAAAAAAAAAAA==AAAA", "not standard base64"}, /* padding inside */
      {"v2:AAAAAAAAAAAAAAAAAAAAAAAA", "18 bytes"},
      {"v2", "not the JSON"},
      {"V2:AAAA", "not the JSON"},
      {" v2:AAAA", "not the JSON"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    expect_bad_annotation(cases[i].text, json_string(cases[i].text), cases[i].why);
  expect_bad_annotation("NUL inside", json_stringn("v2:AAAA\0AAAA", 12), "NUL");
  expect_bad_annotation("not a string", json_integer(2), "not the JSON");

  /* Unsorted and duplicated key hashes. */
  unsigned char recs[3 * 16];
  memset(recs, 0, sizeof recs);
  recs[0] = 2;
  recs[16] = 1;
  char *t = v2_text(recs, 2, false);
  expect_bad_annotation("unsorted", json_string(t), "not sorted");
  free(t);
  memset(recs, 0, sizeof recs);
  recs[16 + 15] = 1; /* same key hash, another entry hash */
  recs[32] = 9;
  t = v2_text(recs, 3, false);
  expect_bad_annotation("duplicate", json_string(t), "records 0 and 1 have the same key hash");
  free(t);
  /* 20,000 random records, unsorted. */
  size_t big = 20000;
  unsigned char *rb = malloc(big * 16);
  for (size_t i = 0; i < big * 16; i++)
    rb[i] = (unsigned char)cktest_rand32();
  t = v2_text(rb, big, false);
  expect_bad_annotation("random", json_string(t), "not sorted");
  free(t);

  /* The same records sorted are a valid v2 value that names nothing here:
   * no key matches, no owner exists; they are dropped, nothing is removed. */
  t = v2_text(rb, big, true);
  json_t *live = empty_cm();
  json_object_set_new(json_object_get(live, "data"), "mapRoles",
                      json_string("- rolearn: " IAM "role/hand\n  username: hand\n"));
  set_annotation(live, AA_OWNERS_ANNOTATION, t);
  json_t *objs = quotes("[" ROLE("a", T1, "admin", "admin", "system:masters") "]");
  aa_result_t *r = reconcile_ok(live, objs, NULL);
  cr_assert_eq(r->blocked, AA_BLOCK_NONE, "%s", r->blocked_msg);
  cr_assert(r->removed == 0 && r->foreign == 1 && r->owned == 1 && r->added == 1);
  json_t *ann = cktest_json(r->owners);
  cr_assert_eq(json_object_size(ann), 1, "%.60s", r->owners);
  json_decref(ann);
  aa_result_free(r);
  /* And with no object at all they still look like owned entries. */
  aa_result_t *r2 = reconcile_ok(live, NULL, NULL);
  cr_assert_eq(r2->blocked, AA_BLOCK_NO_OBJECTS);
  aa_result_free(r2);
  json_decref(objs);
  json_decref(live);
  free(t);
  free(rb);
}

CK_TEST(awsauth, annotation_too_big_even_as_v2) {
  json_t *live = empty_cm();
  pad_annotations(live, 60000); /* 3000 records need 64,003 bytes */
  json_t *objs = n_objects(0, 3000, "");
  aa_result_t *r = reconcile_ok(live, objs, NULL);
  cr_assert_eq(r->blocked, AA_BLOCK_TOO_BIG, "%s", aa_block_reason(r->blocked));
  char v1[64], v2[64];
  snprintf(v2, sizeof v2, "%zu bytes with its compact form (v2)",
           AA_MAX_ANNOTATIONS_BYTES - 60000 + 64003);
  snprintf(v1, sizeof v1, " bytes with the ownership annotation as JSON (v1)");
  cr_assert(strstr(r->blocked_msg, v1) && strstr(r->blocked_msg, v2) &&
                strstr(r->blocked_msg, "256 KiB"),
            "%s", r->blocked_msg);
  cr_assert(!r->write_needed && !r->map_roles);
  aa_result_free(r);
  json_decref(objs);
  json_decref(live);
}

CK_TEST(awsauth, ten_thousand_objects) {
  json_t *live = empty_cm();
  json_t *objs = n_objects(0, 10000, "");
  aa_result_t *r = reconcile_ok(live, objs, NULL);
  cr_assert_eq(r->blocked, AA_BLOCK_NONE, "%s", r->blocked_msg);
  cr_assert_eq(r->added, 10000);
  cr_assert_eq(r->owned, 10000);
  cr_assert_leq(r->data_bytes, AA_MAX_DATA_BYTES);
  cr_assert(!strncmp(r->owners, "v2:", 3));
  cr_assert_eq(strlen(r->owners), 3 + (10000 * 16 + 2) / 3 * 4);
  json_t *after = apply_ok(live, r);
  aa_result_t *r2 = reconcile_ok(after, objs, NULL);
  cr_assert(!r2->blocked && !r2->write_needed, "%s", r2->blocked_msg ? r2->blocked_msg : "writes");
  size_t entries = 0;
  for (size_t i = 0; i < r2->nobjs; i++)
    entries += r2->objs[i].entries;
  cr_assert_eq(entries, 10000);
  /* Each status is at its object's index. */
  for (size_t i = 0; i < r2->nobjs; i++)
    cr_assert_str_eq(r2->objs[i].name,
                     json_string_value(json_object_get(
                         json_object_get(json_array_get(objs, i), "metadata"), "name")));
  aa_result_free(r);
  aa_result_free(r2);
  json_decref(after);
  json_decref(objs);
  json_decref(live);
}

/* Two entries of one object with the same ARN (in any case) make it
 * Invalid, naming both indexes; AA_MAX_ENTRIES distinct ones are valid. */
CK_TEST(awsauth, spec_duplicate_arns) {
  json_t *o = many_roles("dups", "2024-01-01T00:00:00Z", AA_MAX_ENTRIES, "r", 1, "");
  aa_obj_status_t st = {0};
  json_t *desired = NULL;
  cr_assert_eq(aa_object_parse(o, AA_DEFAULT_FINALIZER, &st, &desired), 0);
  cr_assert(st.valid, "%s", st.invalid_msg ? st.invalid_msg : "");
  cr_assert_eq(json_array_size(desired), (size_t)AA_MAX_ENTRIES);
  cr_assert_eq(json_array_size(st.arns), (size_t)AA_MAX_ENTRIES);
  json_decref(desired);
  aa_obj_status_clear(&st);

  json_t *roles = json_object_get(json_object_get(o, "spec"), "mapRoles");
  json_object_set_new(json_array_get(roles, AA_MAX_ENTRIES - 1), "rolearn",
                      json_string(IAM "role/R7"));
  json_object_set_new(json_array_get(roles, AA_MAX_ENTRIES - 2), "rolearn",
                      json_string(IAM "role/r3"));
  desired = NULL;
  memset(&st, 0, sizeof st);
  cr_assert_eq(aa_object_parse(o, AA_DEFAULT_FINALIZER, &st, &desired), 0);
  cr_assert(!st.valid);
  cr_assert_null(desired);
  char want[128];
  snprintf(want, sizeof want, "spec.mapRoles[%d]: same ARN as spec.mapRoles[3]",
           AA_MAX_ENTRIES - 2);
  cr_assert(st.invalid_msg && strstr(st.invalid_msg, want), "%s", st.invalid_msg);
  cr_assert_eq(json_array_size(st.arns), 0);
  aa_obj_status_clear(&st);
  json_decref(o);
}

/* The entry hash is stored in ownership annotations: its bytes must not
 * change between versions. Expected values: SHA-256 of the compact,
 * key-sorted JSON, computed independently (Python's hashlib). */
CK_TEST(awsauth, entry_hash_is_stable) {
  char h[17];
  json_t *e = cktest_json("{\"rolearn\":\"" IAM "role/admin\",\"username\":\"admin\","
                          "\"groups\":[\"system:masters\"]}");
  aa_entry_hash(e, h);
  cr_assert_str_eq(h, "b5c99470970fcc33");
  json_decref(e);
  e = cktest_json("{\"userarn\":\"" IAM "user/z\xc3\xa9\",\"username\":\"z\\\"q\",\"groups\":[]}");
  aa_entry_hash(e, h);
  cr_assert_str_eq(h, "c25433c3b302e671");
  json_decref(e);
  /* Longer than the stack buffer: the same hash as its canonical text. */
  json_t *groups = json_array();
  for (int i = 0; i < 100; i++)
    json_array_append_new(groups, json_sprintf("group-%03d", i));
  e = json_pack("{s:s,s:s,s:o}", "rolearn", IAM "role/many", "username", "many", "groups", groups);
  char *canon = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS);
  cr_assert_gt(strlen(canon), 512);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  cr_assert(EVP_Digest(canon, strlen(canon), md, &mdlen, EVP_sha256(), NULL));
  char want[17];
  for (int i = 0; i < 8; i++)
    snprintf(want + 2 * i, 3, "%02x", md[i]);
  aa_entry_hash(e, h);
  cr_assert_str_eq(h, want);
  free(canon);
  json_decref(e);
}

/* The hash's fast path writes the canonical JSON itself: for every shape
 * (key order, empty arrays, many keys, strings that need escaping or are
 * not ASCII, values that are not strings) it must equal jansson's. */
CK_TEST(awsauth, entry_hash_matches_jansson_canonical_text) {
  static const char *const entries[] = {
      "{\"username\":\"u\",\"groups\":[],\"rolearn\":\"" IAM "role/a\"}",
      "{\"groups\":[\"a\",\"b\",\"c\"],\"userarn\":\"" IAM "user/b\",\"username\":\"b\"}",
      "{\"h\":\"1\",\"g\":\"2\",\"f\":\"3\",\"e\":\"4\",\"d\":\"5\",\"c\":\"6\",\"b\":\"7\",\"a\":[]}",
      "{\"i\":\"1\",\"h\":\"1\",\"g\":\"2\",\"f\":\"3\",\"e\":\"4\",\"d\":\"5\",\"c\":\"6\",\"b\":\"7\",\"a\":[]}",
      "{\"username\":\"tab\\there\",\"groups\":[]}",
      "{\"username\":\"slash/and\\\\back\",\"groups\":[\"q\\\"uote\"]}",
      "{\"username\":\"\\u00e9t\\u00e9\",\"groups\":[\"\\u2028\"]}",
      "{\"username\":\"del\\u007f\",\"groups\":[1, null, true]}",
      "{\"username\":7,\"groups\":{\"a\":\"b\"}}",
      "{\"k\\u00e9y\":\"v\"}",
      "{}",
      "[\"not an object\"]",
  };
  for (size_t i = 0; i < sizeof entries / sizeof *entries; i++) {
    json_t *e = cktest_json(entries[i]);
    char *canon = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    cr_assert(EVP_Digest(canon, strlen(canon), md, &mdlen, EVP_sha256(), NULL));
    char want[17], h[17];
    for (int j = 0; j < 8; j++)
      snprintf(want + 2 * j, 3, "%02x", md[j]);
    aa_entry_hash(e, h);
    cr_assert_str_eq(h, want, "%s", entries[i]);
    free(canon);
    json_decref(e);
  }
}
