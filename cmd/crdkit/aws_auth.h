/* crdkit aws-auth <command>: see aws_auth.c. */
#ifndef CRDKIT_CMD_AWS_AUTH_H
#define CRDKIT_CMD_AWS_AUTH_H

/* argv[0] is "aws-auth". Returns the process exit status. */
int aws_auth_main(int argc, char **argv);

#endif
