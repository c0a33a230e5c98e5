/*
 * no-uring - run a program with io_uring_setup refused, as a container
 * runtime's default seccomp profile or systemd's SystemCallFilter= would:
 *
 *   no-uring ENOSYS|EPERM PROGRAM [ARG]...
 *
 * Installs a seccomp filter in which io_uring_setup fails with the given
 * error (every other call is allowed), then executes PROGRAM. For the
 * tests of the server's message and exit status (tests/ops).
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int e = argc < 3 ? -1 : strcmp(argv[1], "ENOSYS") == 0 ? ENOSYS
	                        : strcmp(argv[1], "EPERM") == 0 ? EPERM : -1;
	if (e < 0) {
		fprintf(stderr, "usage: no-uring ENOSYS|EPERM PROGRAM [ARG]...\n");
		return 2;
	}
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)e & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof f / sizeof f[0], .filter = f };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
		perror("no-uring: seccomp");
		return 1;
	}
	execv(argv[2], argv + 2);
	perror("no-uring: exec");
	return 127;
}
