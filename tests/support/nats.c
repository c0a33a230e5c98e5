/*
 * nats.c - nats-server for the tests: start, kill, clean up, and a raw
 * publishing connection (see nats.h).
 */
#include "nats.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "ports.h"
#include "timing.h"

static const char *nats_binary(void)
{
	if (access("/usr/sbin/nats-server", X_OK) == 0)
		return "/usr/sbin/nats-server";
	return "nats-server";
}

/* Lines of the file at path that contain needle. */
static size_t lines_with(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	char line[512];
	size_t k = 0;
	while (f && fgets(line, sizeof line, f))
		k += strstr(line, needle) != NULL;
	if (f)
		fclose(f);
	return k;
}

int nats_run(struct nats *n, uint16_t port, uint16_t cport, uint16_t route_to)
{
	for (int attempt = 0; attempt < 20; attempt++) {
		uint16_t p = port ? port : port_random();
		if (!port && !port_free(p))
			continue;
		char ps[8], cl[64], rt[64];
		snprintf(ps, sizeof ps, "%u", p);
		snprintf(cl, sizeof cl, "nats://127.0.0.1:%u", cport);
		snprintf(rt, sizeof rt, "nats://127.0.0.1:%u", route_to);
		if (!n->log[0])
			snprintf(n->log, sizeof n->log, "/tmp/net001-nats-%d-%u.log", getpid(), p);
		const char *argv[32] = { "nats-server", "-a", "127.0.0.1", "-p", ps };
		int k = 5;
		for (int a = 0; n->args[a] && k < 24; a++)
			argv[k++] = n->args[a];
		if (cport) {
			argv[k++] = "--cluster";
			argv[k++] = cl;
			argv[k++] = "--cluster_name";
			argv[k++] = "net001test";
			if (route_to) {
				argv[k++] = "--routes";
				argv[k++] = rt;
			}
		}
		argv[k] = NULL;
		/* It is up when it says it listens on p (not when something does:
		 * another test's server may hold the port). */
		char ready[80];
		snprintf(ready, sizeof ready, "Listening for client connections on 127.0.0.1:%u", p);
		size_t said = lines_with(n->log, ready);
		pid_t pid = fork();
		if (pid == 0) {
			int fd = open(n->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
			if (fd >= 0) {
				dup2(fd, 1);
				dup2(fd, 2);
			}
			execvp(nats_binary(), (char *const *)argv);
			_exit(127);
		}
		if (pid < 0)
			return -1;
		for (int i = 0; i < 500; i++) {
			if (lines_with(n->log, ready) > said && port_listening(p)) {
				n->pid = pid;
				n->port = p;
				n->cport = cport;
				return 0;
			}
			int st;
			if (waitpid(pid, &st, WNOHANG) == pid)
				break; /* the port was taken: another */
			sleep_ms(10);
		}
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		if (port)
			sleep_ms(200); /* the same port again, once it is free */
	}
	fprintf(stderr, "nats-server did not start (log %s)\n", n->log);
	return -1;
}

void nats_kill9(struct nats *n)
{
	if (n->pid > 0) {
		kill(n->pid, SIGKILL);
		waitpid(n->pid, NULL, 0);
		n->pid = 0;
	}
}

void nats_cleanup(struct nats *n)
{
	if (n->pid > 0) {
		kill(n->pid, SIGTERM);
		for (int i = 0; i < 200; i++) {
			if (waitpid(n->pid, NULL, WNOHANG) == n->pid) {
				n->pid = 0;
				break;
			}
			sleep_ms(10);
		}
		nats_kill9(n);
	}
	if (n->log[0])
		unlink(n->log);
	memset(n, 0, sizeof *n);
}

int nats_raw(uint16_t port)
{
	int fd = tc_connect(port);
	if (fd < 0)
		return -1;
	const char *c = "CONNECT {\"verbose\":false,\"pedantic\":false}\r\n";
	if (tc_send(fd, c, strlen(c)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int nats_raw_pub(int fd, const char *subject, const void *p, size_t n)
{
	char h[128];
	int k = snprintf(h, sizeof h, "PUB %s %zu\r\n", subject, n);
	if (k < 0 || (size_t)k >= sizeof h || tc_send(fd, h, (size_t)k) != 0)
		return -1;
	if (n && tc_send(fd, p, n) != 0)
		return -1;
	return tc_send(fd, "\r\n", 2) != 0 ? -1 : 0;
}
