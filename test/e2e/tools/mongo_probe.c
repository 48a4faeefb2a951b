/* mongo-probe: what the mongo-user e2e test asks a MongoDB-wire server.
 *   mongo-probe exists URI DB USER        exit 0 if the user exists, 1 if not
 *   mongo-probe auth URI DB USER PASSWORD exit 0 if the password logs in, 1 if not
 *   mongo-probe drop URI DB USER          drop the user (as an administrator would)
 * Exit 2 on a usage or connection error (message on stderr). */
#include "mongo.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
  char err[1024] = "";
  int rc = 2;
  if (argc == 5 && strcmp(argv[1], "exists") == 0) {
    bool exists = false;
    if (mu_user_get(argv[2], argv[3], argv[4], &exists, NULL, NULL, err, sizeof err) == 0)
      rc = exists ? 0 : 1;
  } else if (argc == 6 && strcmp(argv[1], "auth") == 0) {
    rc = mu_user_authenticate(argv[2], argv[3], argv[4], argv[5], err, sizeof err) == 0 ? 0 : 1;
    if (rc == 1)
      fprintf(stderr, "%s\n", err), err[0] = 0;
  } else if (argc == 5 && strcmp(argv[1], "drop") == 0) {
    rc = mu_user_drop(argv[2], argv[3], argv[4], err, sizeof err) == 0 ? 0 : 2;
  } else {
    fputs("usage: mongo-probe exists|drop URI DB USER | auth URI DB USER PASSWORD\n", stderr);
  }
  if (rc == 2 && err[0])
    fprintf(stderr, "mongo-probe: %s\n", err);
  mu_cleanup();
  return rc;
}
