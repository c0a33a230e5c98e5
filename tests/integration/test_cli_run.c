/*
 * test_cli_run.c - see test_cli_run.h.
 */
#include "test_cli_run.h"

#include <stdlib.h>

const char *cli_binary(void)
{
	const char *p = getenv("NET001_CLI");
	return p && *p ? p : "build/net001-cli";
}

int cli_spawn(struct run *r, const char *const *args, const char *stdin_path)
{
	return run_spawn(r, cli_binary(), args, stdin_path);
}

int cli_run(struct run *r, const char *const *args)
{
	return run_program(r, cli_binary(), args, 20000);
}
