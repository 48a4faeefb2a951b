/* ARN normalisation and username/group validation for AWSAuth specs.
 * Everything an object asks for passes here before it can reach aws-auth:
 * a value that the authenticator would never match, or that could be read
 * differently by a human and by the authenticator, is refused with a
 * message naming the problem. */
#include "awsauth.h"

#include "util/utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

size_t aa_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
  return ck_utf8_decode(s, n, cp);
}

static int fail(char *why, size_t nwhy, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t nwhy, const char *fmt, ...) {
  if (why && nwhy) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, nwhy, fmt, ap);
    va_end(ap);
  }
  return CK_EINVAL;
}

/* Append a warning, "; "-separated, so one buffer can carry several. */
static void warn_add(char *warn, size_t nwarn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void warn_add(char *warn, size_t nwarn, const char *fmt, ...) {
  if (!warn || !nwarn)
    return;
  size_t used = strlen(warn);
  if (used && used + 2 < nwarn) {
    memcpy(warn + used, "; ", 3);
    used += 2;
  }
  if (used + 1 >= nwarn)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(warn + used, nwarn - used, fmt, ap);
  va_end(ap);
}

static const char *const partitions[] = {"aws",       "aws-cn",    "aws-us-gov", "aws-iso",
                                         "aws-iso-b", "aws-iso-e", "aws-iso-f",  "aws-eusc"};

/* IAM role/user names: [\w+=,.@-]{1,64}. */
static const char *iam_name_problem(const char *s, size_t len, size_t min) {
  if (len < min)
    return len ? "is too short" : "is empty";
  if (len > 64)
    return "is longer than 64 characters";
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          strchr("+=,.@_-", c)))
      return "has a character IAM does not allow in names";
  }
  return NULL;
}

int aa_arn_normalize(aa_kind_t kind, const char *arn, char **norm, char *warn, size_t nwarn,
                     char *why, size_t nwhy) {
  *norm = NULL;
  if (warn && nwarn)
    warn[0] = '\0';
  size_t len = strlen(arn);
  if (len == 0)
    return fail(why, nwhy, "ARN is empty");
  if (len > AA_MAX_ARN_LEN)
    return fail(why, nwhy, "ARN is longer than %d bytes", AA_MAX_ARN_LEN);
  /* The authenticator compares bytes: a trailing newline or space makes
   * an entry that silently never matches. */
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)arn[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
      return fail(why, nwhy, "ARN contains whitespace at offset %zu", i);
    if (c < 0x20 || c == 0x7f)
      return fail(why, nwhy, "ARN contains a control character at offset %zu", i);
    if (c >= 0x80)
      return fail(why, nwhy, "ARN contains a non-ASCII character at offset %zu", i);
    if (c == '*' || c == '?')
      return fail(why, nwhy, "ARN contains a wildcard '%c': aws-auth matches exact ARNs only",
                  c);
  }
  if (strncmp(arn, "arn:", 4) != 0) {
    if (strncasecmp(arn, "arn:", 4) == 0)
      return fail(why, nwhy, "ARN must start with lower-case \"arn:\"");
    return fail(why, nwhy, "not an ARN (must start with \"arn:\")");
  }
  /* arn:partition:service:region:account:resource */
  const char *f[6];
  size_t fl[6];
  const char *p = arn;
  for (int i = 0; i < 5; i++) {
    const char *c = strchr(p, ':');
    if (!c)
      return fail(why, nwhy, "ARN has fewer than 6 ':'-separated fields");
    f[i] = p;
    fl[i] = (size_t)(c - p);
    p = c + 1;
  }
  f[5] = p;
  fl[5] = strlen(p);
  bool part_ok = false;
  for (size_t i = 0; i < sizeof partitions / sizeof *partitions; i++)
    if (fl[1] == strlen(partitions[i]) && memcmp(f[1], partitions[i], fl[1]) == 0)
      part_ok = true;
  if (!part_ok)
    return fail(why, nwhy, "unknown partition \"%.*s\"", (int)fl[1], f[1]);
  bool iam = fl[2] == 3 && memcmp(f[2], "iam", 3) == 0;
  bool sts = fl[2] == 3 && memcmp(f[2], "sts", 3) == 0;
  if (!iam && !sts)
    return fail(why, nwhy, "service \"%.*s\" is not iam (or sts for assumed-role)", (int)fl[2],
                f[2]);
  if (fl[3] != 0)
    return fail(why, nwhy, "IAM ARNs have no region (found \"%.*s\")", (int)fl[3], f[3]);
  if (fl[4] != 12 || strspn(f[4], "0123456789") < 12)
    return fail(why, nwhy, "account id \"%.*s\" is not 12 digits", (int)fl[4], f[4]);
  const char *res = f[5];
  if (strchr(res, ':'))
    return fail(why, nwhy, "resource \"%s\" contains ':'", res);
  char acct[13];
  memcpy(acct, f[4], 12);
  acct[12] = '\0';
  int plen = (int)fl[1];

  if (iam && strcmp(res, "root") == 0)
    return fail(why, nwhy, "the account root user (:root) must not be mapped");
  if (iam && strncmp(res, "user/", 5) == 0) {
    if (kind == AA_ROLES)
      return fail(why, nwhy, "a user ARN under mapRoles: put it under mapUsers");
    const char *name = strrchr(res, '/') + 1;
    const char *prob = iam_name_problem(name, strlen(name), 1);
    if (prob)
      return fail(why, nwhy, "user name \"%s\" %s", name, prob);
    if (strstr(res, "//"))
      return fail(why, nwhy, "user path has an empty segment");
    *norm = strdup(arn);
    return *norm ? 0 : CK_ENOMEM;
  }
  const char *rname;
  size_t rlen;
  if (iam && strncmp(res, "role/", 5) == 0) {
    if (kind == AA_USERS)
      return fail(why, nwhy, "a role ARN under mapUsers: put it under mapRoles");
    rname = strrchr(res, '/') + 1;
    rlen = strlen(rname);
    size_t pathlen = (size_t)(rname - (res + 5));
    if (memmem(res, (size_t)(rname - res), "//", 2))
      return fail(why, nwhy, "role path has an empty segment");
    if (pathlen > 512)
      return fail(why, nwhy, "role path is longer than 512 characters");
    if (pathlen) {
      /* The caller's canonical ARN has no path, so a pathed rolearn never
       * matches: strip it, and say so. */
      if (strncmp(res + 5, "aws-service-role/", 17) == 0)
        warn_add(warn, nwarn,
                 "service-linked role path \"%.*s\" stripped: only the AWS service can assume "
                 "this role",
                 (int)pathlen, res + 5);
      else if (strncmp(res + 5, "aws-reserved/sso.amazonaws.com/", 31) == 0)
        warn_add(warn, nwarn, "IAM Identity Center path \"%.*s\" stripped", (int)pathlen,
                 res + 5);
      else
        warn_add(warn, nwarn,
                 "role path \"%.*s\" stripped: the authenticator matches role ARNs without path",
                 (int)pathlen, res + 5);
    }
  } else if (sts && strncmp(res, "assumed-role/", 13) == 0) {
    if (kind == AA_USERS)
      return fail(why, nwhy, "an assumed-role ARN under mapUsers: put the role under mapRoles");
    rname = res + 13;
    const char *slash = strchr(rname, '/');
    if (!slash)
      return fail(why, nwhy, "assumed-role ARN without a session name");
    rlen = (size_t)(slash - rname);
    const char *prob = iam_name_problem(slash + 1, strlen(slash + 1), 2);
    if (prob)
      return fail(why, nwhy, "session name \"%s\" %s", slash + 1, prob);
    warn_add(warn, nwarn,
             "STS assumed-role ARN converted to the role ARN: every session of the role is "
             "mapped");
  } else if (sts) {
    return fail(why, nwhy, "STS ARN \"%s\" is not an assumed-role session", res);
  } else {
    return fail(why, nwhy, "resource \"%s\" is not a %s", res,
                kind == AA_ROLES ? "role (role/NAME)" : "user (user/NAME)");
  }
  const char *prob = iam_name_problem(rname, rlen, 1);
  if (prob)
    return fail(why, nwhy, "role name \"%.*s\" %s", (int)rlen, rname, prob);
  size_t cap = 4 + (size_t)plen + 6 + 12 + 6 + rlen + 1;
  *norm = malloc(cap);
  if (!*norm)
    return CK_ENOMEM;
  snprintf(*norm, cap, "arn:%.*s:iam::%s:role/%.*s", plen, f[1], acct, (int)rlen, rname);
  return 0;
}

/* ---- usernames and groups ------------------------------------------------ */

/* Characters that render as nothing or reorder text: with them,
 * "system:masters" can be displayed while something else is stored, or
 * the reverse. */
static bool invisible(uint32_t c) {
  return c == 0x00ad || c == 0x034f || c == 0x061c || c == 0x115f || c == 0x1160 ||
         c == 0x17b4 || c == 0x17b5 || c == 0x180e || (c >= 0x200b && c <= 0x200f) ||
         (c >= 0x202a && c <= 0x202e) || (c >= 0x2060 && c <= 0x206f) || c == 0x3164 ||
         (c >= 0xfe00 && c <= 0xfe0f) || c == 0xfeff || c == 0xffa0 ||
         (c >= 0xfff0 && c <= 0xfffb) || (c >= 0xe0000 && c <= 0xe0fff);
}

/* The ASCII letter a non-ASCII character is easily mistaken for, or 0.
 * Enough to catch look-alikes of the reserved prefixes. */
static char confusable(uint32_t c) {
  static const struct {
    uint32_t cp;
    char a;
  } t[] = {
      {0x0430, 'a'}, {0x0435, 'e'}, {0x043e, 'o'}, {0x0440, 'p'}, {0x0441, 'c'}, {0x0443, 'y'},
      {0x0445, 'x'}, {0x0455, 's'}, {0x0456, 'i'}, {0x0458, 'j'}, {0x0501, 'd'}, {0x04bb, 'h'},
      {0x04cf, 'l'}, {0x043a, 'k'}, {0x043c, 'm'}, {0x0442, 't'}, {0x0410, 'a'}, {0x0415, 'e'},
      {0x041a, 'k'}, {0x041c, 'm'}, {0x041d, 'h'}, {0x041e, 'o'}, {0x0420, 'p'}, {0x0421, 'c'},
      {0x0422, 't'}, {0x0425, 'x'}, {0x0405, 's'}, {0x0406, 'i'}, {0x0408, 'j'}, {0x03b1, 'a'},
      {0x03b5, 'e'}, {0x03b9, 'i'}, {0x03ba, 'k'}, {0x03bd, 'v'}, {0x03bf, 'o'}, {0x03c1, 'p'},
      {0x03c4, 't'}, {0x03c5, 'u'}, {0x03c7, 'x'}, {0x0391, 'a'}, {0x0395, 'e'}, {0x0399, 'i'},
      {0x039a, 'k'}, {0x039c, 'm'}, {0x039f, 'o'}, {0x03a1, 'p'}, {0x03a4, 't'}, {0x03a7, 'x'},
      {0x017f, 's'}, {0x212a, 'k'}, {0x0131, 'i'}, {0x0261, 'g'}, {0x0251, 'a'}, {0x1d00, 'a'},
      {0x0274, 'n'}, {0x0280, 'r'}, {0x0282, 's'}, {0xff1a, ':'}, {0x2236, ':'}, {0x02d0, ':'},
      {0xa789, ':'}, {0x0589, ':'}, {0x05c3, ':'}, {0xfe55, ':'}, {0xfe13, ':'}, {0x1361, ':'},
      {0x0703, ':'}, {0x0704, ':'}, {0x16ec, ':'}, {0x205a, ':'}, {0x02f8, ':'}, {0x0903, ':'},
  };
  if (c >= 0xff01 && c <= 0xff5e) /* fullwidth ASCII */
    c -= 0xfee0;
  if (c < 0x80)
    return (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
  for (size_t i = 0; i < sizeof t / sizeof *t; i++)
    if (t[i].cp == c)
      return t[i].a;
  return 0;
}

static const char *const known_placeholders[] = {"EC2PrivateDNSName", "AccountID", "SessionName",
                                                 "SessionNameRaw", "AccessKeyID"};

/* Placeholders the caller controls: in a group they would let whoever
 * assumes the role pick a group. */
static bool caller_chosen(const char *name, size_t len) {
  return (len == 11 && memcmp(name, "SessionName", 11) == 0) ||
         (len == 14 && memcmp(name, "SessionNameRaw", 14) == 0) ||
         (len == 11 && memcmp(name, "AccessKeyID", 11) == 0);
}

static int check_templates(const char *s, size_t len, bool is_group, char *warn, size_t nwarn,
                           char *why, size_t nwhy) {
  const char *what = is_group ? "group" : "username";
  for (size_t i = 0; i + 1 < len; i++) {
    if (s[i] != '{' || s[i + 1] != '{')
      continue;
    const char *end = memmem(s + i + 2, len - i - 2, "}}", 2);
    if (!end) {
      warn_add(warn, nwarn, "%s has an unterminated \"{{\": it stays literal", what);
      return 0;
    }
    const char *name = s + i + 2;
    size_t nl = (size_t)(end - name);
    if (memchr(name, '{', nl)) {
      warn_add(warn, nwarn, "%s has a nested placeholder: it stays literal", what);
      i = (size_t)(end - s) + 1;
      continue;
    }
    bool known = false;
    for (size_t k = 0; k < sizeof known_placeholders / sizeof *known_placeholders; k++)
      if (nl == strlen(known_placeholders[k]) && memcmp(name, known_placeholders[k], nl) == 0)
        known = true;
    if (!known)
      warn_add(warn, nwarn, "unknown placeholder {{%.*s}} in %s stays literal",
               (int)(nl > 64 ? 64 : nl), name, what);
    else if (is_group && caller_chosen(name, nl))
      return fail(why, nwhy,
                  "group uses {{%.*s}}, which the caller chooses: anyone who can assume the role "
                  "would pick its own group",
                  (int)nl, name);
    else if (!is_group && caller_chosen(name, nl) && i == 0 && nl + 4 == len)
      warn_add(warn, nwarn,
               "username is only {{%.*s}}: whoever assumes the role chooses its Kubernetes user "
               "name",
               (int)nl, name);
    i = (size_t)(end - s) + 1;
  }
  return 0;
}

int aa_name_check(const char *s, size_t len, bool is_group, char *warn, size_t nwarn, char *why,
                  size_t nwhy) {
  const char *what = is_group ? "group" : "username";
  if (len == 0)
    return fail(why, nwhy, "%s is empty", what);
  if (len > AA_MAX_NAME_LEN)
    return fail(why, nwhy, "%s is longer than %d bytes", what, AA_MAX_NAME_LEN);
  if (s[0] == ' ' || s[len - 1] == ' ')
    return fail(why, nwhy, "%s has a leading or trailing space", what);
  bool ascii = true;
  char skel[AA_MAX_NAME_LEN + 1];
  size_t sk = 0;
  for (size_t i = 0; i < len;) {
    uint32_t c;
    size_t n = aa_utf8_decode((const unsigned char *)s + i, len - i, &c);
    if (n == 0)
      return fail(why, nwhy, "%s has invalid UTF-8 at offset %zu", what, i);
    if (c == 0)
      return fail(why, nwhy, "%s contains a NUL character at offset %zu", what, i);
    if (c == 0x2028 || c == 0x2029)
      return fail(why, nwhy, "%s contains a line/paragraph separator U+%04X at offset %zu", what,
                  (unsigned)c, i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f))
      return fail(why, nwhy, "%s contains a control character U+%04X at offset %zu", what,
                  (unsigned)c, i);
    if (invisible(c))
      return fail(why, nwhy,
                  "%s contains an invisible or bidi control character U+%04X at offset %zu", what,
                  (unsigned)c, i);
    if (c >= 0x80)
      ascii = false;
    /* Combining marks are skipped so "s\u0301ystem:" still compares. */
    if (!(c >= 0x0300 && c <= 0x036f)) {
      char a = confusable(c);
      if (!a)
        a = '?';
      skel[sk++] = a;
    }
    i += n;
  }
  skel[sk] = '\0';
  if (!ascii) {
    static const char *const reserved[] = {"system:", "eks:", "kubeadm:"};
    for (size_t r = 0; r < sizeof reserved / sizeof *reserved; r++)
      if (strncmp(skel, reserved[r], strlen(reserved[r])) == 0)
        return fail(why, nwhy,
                    "%s looks like the reserved prefix \"%s\" but contains non-ASCII look-alike "
                    "characters",
                    what, reserved[r]);
  }
  return check_templates(s, len, is_group, warn, nwarn, why, nwhy);
}
