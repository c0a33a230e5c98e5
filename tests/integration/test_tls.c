/*
 * --tls: the protocol over TLS 1.2+, the server's TLS running in user space
 * over its rings. The test makes its own self-signed certificate.
 */
#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "net/client/client.h"
#include "proto/frame.h"
#include "harness.h"
#include "proto/msg.h"
#include "test_cli_run.h"
#include "timing.h"
#include "tls_client.h"

static struct srv S;
static char cert_path[64], key_path[64];

static void make_cert(void)
{
	cr_assert_eq(tlsc_make_cert("tls", cert_path, key_path), 0);
}

static void drop_cert(void)
{
	unlink(cert_path);
	unlink(key_path);
}

static void start_tls(const char *threads)
{
	make_cert();
	const char *const args[] = { "--threads", threads, "--tls", "--cert", cert_path,
	                             "--key", key_path, "--rate-limit", "0",
	                             "--global-rate-limit", "0", NULL };
	cr_assert_eq(srv_start(&S, args), 0, "server starts with --tls");
}

static void stop_clean(void)
{
	cr_assert_eq(srv_stop(&S, 15000), 0, "server exits 0 after SIGTERM");
	drop_cert();
}

/* A TLS client with a 5 s receive timeout; NULL ssl when the handshake fails. */
static struct tlsc tls_connect(uint16_t port)
{
	struct tlsc t;
	tlsc_connect(&t, port, 5000);
	cr_assert_geq(t.fd, 0);
	return t;
}

static void tls_close(struct tlsc *t)
{
	tlsc_close(t);
}

static void tls_send(struct tlsc *t, const void *p, size_t n)
{
	cr_assert_eq(tlsc_send(t, p, n), 0);
}

static void tls_send_frame(struct tlsc *t, uint8_t type, const void *payload, size_t len)
{
	cr_assert_eq(tlsc_send_frame(t, type, payload, len), 0);
}

static bool tls_read_frame(struct tlsc *t, struct tc_frame *f)
{
	return tlsc_read_frame(t, f);
}

static struct tc_frame F;

TestSuite(tls, .timeout = 60);

Test(tls, ping_echo_and_pipelining, .fini = stop_clean)
{
	start_tls("2");
	struct tlsc t = tls_connect(S.port);
	cr_assert_not_null(t.ssl, "handshake");
	cr_assert_geq(SSL_version(t.ssl), TLS1_2_VERSION);

	tls_send_frame(&t, FRAME_PING, "12345678", 8);
	cr_assert(tls_read_frame(&t, &F));
	cr_assert_eq(F.type, FRAME_PONG);
	cr_assert_arr_eq(F.payload, "12345678", 8);

	uint8_t *p = malloc(65535);
	for (size_t i = 0; i < 65535; i++)
		p[i] = (uint8_t)(i * 13 + 1);
	static const size_t lens[] = { 0, 100, 3000, 65535 };
	for (size_t i = 0; i < 4; i++) {
		tls_send_frame(&t, FRAME_ECHO, p, lens[i]);
		cr_assert(tls_read_frame(&t, &F), "ECHO reply of %zu", lens[i]);
		cr_assert_eq(F.type, FRAME_ECHO_REPLY);
		cr_assert_eq(F.len, lens[i]);
		cr_assert_arr_eq(F.payload, p, lens[i]);
	}

	/* 500 pipelined PINGs in one write, answered in order. */
	uint8_t *buf = malloc(500 * 20);
	for (int i = 0; i < 500; i++) {
		uint8_t ts[8] = { 0, 0, 0, 0, 0, 0, (uint8_t)(i >> 8), (uint8_t)i };
		frame_encode(buf + i * 20, FRAME_PING, ts, 8);
	}
	tls_send(&t, buf, 500 * 20);
	for (int i = 0; i < 500; i++) {
		cr_assert(tls_read_frame(&t, &F));
		cr_assert_eq(F.type, FRAME_PONG);
		cr_assert_eq((F.payload[6] << 8) | F.payload[7], i);
	}
	free(buf);
	free(p);
	tls_close(&t);
}

Test(tls, broadcast_between_tls_clients_on_all_cores, .fini = stop_clean)
{
	start_tls("2");
	struct tlsc c[6];
	for (int i = 0; i < 6; i++) {
		c[i] = tls_connect(S.port);
		cr_assert_not_null(c[i].ssl);
		tls_send_frame(&c[i], FRAME_PING, "abcdefgh", 8);
		cr_assert(tls_read_frame(&c[i], &F));
	}
	tls_send_frame(&c[0], FRAME_BROADCAST, "over tls", 8);
	for (int i = 1; i < 6; i++) {
		cr_assert(tls_read_frame(&c[i], &F), "receiver %d", i);
		cr_assert_eq(F.type, FRAME_BROADCAST);
		cr_assert_arr_eq(F.payload, "over tls", 8);
	}
	/* The sender's next frame is its PONG: no echo of its broadcast. */
	tls_send_frame(&c[0], FRAME_PING, "abcdefgh", 8);
	cr_assert(tls_read_frame(&c[0], &F));
	cr_assert_eq(F.type, FRAME_PONG);
	for (int i = 0; i < 6; i++)
		tls_close(&c[i]);
}

Test(tls, protocol_errors_inside_tls, .fini = stop_clean)
{
	start_tls("1");
	struct tlsc t = tls_connect(S.port);
	cr_assert_not_null(t.ssl);
	uint8_t buf[32];
	size_t n = frame_encode(buf, FRAME_ECHO, "abc", 3);
	buf[n - 1] ^= 1;
	tls_send(&t, buf, n);
	cr_assert(tls_read_frame(&t, &F));
	cr_assert_eq(F.type, FRAME_ERROR);
	cr_assert_eq(frame_get_u16(F.payload), ERR_BAD_CRC);
	tls_send(&t, "GARBAGE!", 8);
	cr_assert(tls_read_frame(&t, &F));
	cr_assert_eq(frame_get_u16(F.payload), ERR_BAD_MAGIC);
	cr_assert_not(tls_read_frame(&t, &F), "closed after BAD_MAGIC");
	tls_close(&t);
}

Test(tls, plaintext_client_is_dropped_others_unharmed, .fini = stop_clean)
{
	start_tls("2");
	struct tlsc good = tls_connect(S.port);
	cr_assert_not_null(good.ssl);
	for (int i = 0; i < 20; i++) {
		int fd = tc_connect(S.port);
		tc_send_frame(fd, FRAME_PING, "12345678", 8);
		/* a fatal handshake_failure alert (a plaintext record), then close */
		static const uint8_t alert[] = { 21, 3, 1, 0, 2, 2, 40 };
		uint8_t got[sizeof alert];
		struct timeval tv = { 5, 0 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		cr_assert_eq(recv(fd, got, sizeof got, MSG_WAITALL), (ssize_t)sizeof got,
		             "the alert arrives");
		cr_assert_arr_eq(got, alert, sizeof alert);
		cr_assert(tc_wait_closed(fd, 5000), "a plaintext client is closed");
		close(fd);
	}
	tls_send_frame(&good, FRAME_PING, "12345678", 8);
	cr_assert(tls_read_frame(&good, &F));
	cr_assert_eq(F.type, FRAME_PONG);
	tls_close(&good);
}

Test(tls, shutdown_reaches_tls_clients)
{
	start_tls("2");
	struct tlsc t = tls_connect(S.port);
	cr_assert_not_null(t.ssl);
	tls_send_frame(&t, FRAME_PING, "12345678", 8);
	cr_assert(tls_read_frame(&t, &F));
	kill(S.pid, SIGTERM);
	cr_assert(tls_read_frame(&t, &F));
	cr_assert_eq(F.type, FRAME_ERROR);
	cr_assert_eq(frame_get_u16(F.payload), ERR_SHUTTING_DOWN);
	uint8_t b;
	cr_assert_eq(SSL_read(t.ssl, &b, 1), 0, "then close_notify");
	cr_assert_eq(SSL_get_error(t.ssl, 0), SSL_ERROR_ZERO_RETURN);
	tls_close(&t);
	cr_assert_eq(srv_wait(&S, 10000), 0, "exit 0");
	drop_cert();
}

static void copy_file(const char *from, const char *to)
{
	static char buf[16384];
	FILE *in = fopen(from, "r"), *out = fopen(to, "w");
	cr_assert(in && out, "copy %s to %s", from, to);
	size_t n = fread(buf, 1, sizeof buf, in);
	cr_assert(n > 0 && n < sizeof buf);
	cr_assert_eq(fwrite(buf, 1, n, out), n);
	fclose(in);
	cr_assert_eq(fclose(out), 0);
}

/* Replace the server's certificate files by those of another certificate
 * (a rename, as a renewal tool does). */
static void install_cert(const char *cert, const char *key)
{
	char tmp[80];
	snprintf(tmp, sizeof tmp, "%s.new", cert_path);
	copy_file(cert, tmp);
	cr_assert_eq(rename(tmp, cert_path), 0);
	snprintf(tmp, sizeof tmp, "%s.new", key_path);
	copy_file(key, tmp);
	cr_assert_eq(rename(tmp, key_path), 0);
}

/* SIGHUP; true once the log has one more line with this text. */
static bool hup_and_wait(const char *text)
{
	size_t before = srv_log_count(&S, text);
	kill(S.pid, SIGHUP);
	for (int i = 0; i < 500; i++) {
		if (srv_log_count(&S, text) > before)
			return true;
		sleep_ms(10);
	}
	return false;
}

/* Connections (over both cores) all shown the certificate in cert. */
static void new_sessions_see(const char *cert)
{
	for (int i = 0; i < 8; i++) {
		struct tlsc t = tls_connect(S.port);
		cr_assert_not_null(t.ssl, "handshake %d", i);
		cr_assert(tlsc_peer_is(&t, cert), "connection %d shown %s", i, cert);
		tls_send_frame(&t, FRAME_PING, "renewed!", 8);
		cr_assert(tls_read_frame(&t, &F) && F.type == FRAME_PONG);
		tls_close(&t);
	}
}

/*
 * A renewed certificate without a restart: SIGHUP loads the files again;
 * new connections get the new certificate, open ones go on with theirs;
 * files that do not load (garbage, a key that does not match) keep the
 * certificate in use and say why.
 */
Test(tls, sighup_reloads_the_certificate, .fini = stop_clean)
{
	start_tls("2");
	char first_cert[80], first_key[80], next_cert[64], next_key[64];
	snprintf(first_cert, sizeof first_cert, "%s.first", cert_path);
	snprintf(first_key, sizeof first_key, "%s.first", key_path);
	copy_file(cert_path, first_cert);
	copy_file(key_path, first_key);
	cr_assert_eq(tlsc_make_cert("tls-next", next_cert, next_key), 0);

	struct tlsc open = tls_connect(S.port);
	cr_assert(tlsc_peer_is(&open, first_cert));
	install_cert(next_cert, next_key);
	cr_assert(hup_and_wait("SIGHUP: reloaded the certificate"), "the reload is logged");
	cr_assert(srv_log_contains(&S, "valid until 20"), "with the certificate's end");
	new_sessions_see(next_cert);
	/* The session opened before goes on. */
	tls_send_frame(&open, FRAME_ECHO, "still here", 10);
	cr_assert(tls_read_frame(&open, &F) && F.type == FRAME_ECHO_REPLY && F.len == 10);

	/* Garbage in the certificate file: kept, said. */
	FILE *f = fopen(cert_path, "w");
	cr_assert_not_null(f);
	fputs("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", f);
	fclose(f);
	cr_assert(hup_and_wait("keeping the previous certificate"));
	new_sessions_see(next_cert);
	/* The first certificate with the new key: they do not match. */
	install_cert(first_cert, next_key);
	cr_assert(hup_and_wait("keeping the previous certificate"));
	cr_assert(srv_log_contains(&S, "SIGHUP: --key"), "the key is named");
	new_sessions_see(next_cert);
	/* And the first pair whole again. */
	install_cert(first_cert, first_key);
	cr_assert(hup_and_wait("SIGHUP: reloaded the certificate"));
	new_sessions_see(first_cert);
	tls_send_frame(&open, FRAME_PING, "12345678", 8);
	cr_assert(tls_read_frame(&open, &F) && F.type == FRAME_PONG);
	tls_close(&open);
	unlink(first_cert);
	unlink(first_key);
	unlink(next_cert);
	unlink(next_key);
}

Test(tls, bad_certificate_files_exit_2)
{
	make_cert();
	char err[1024];
	const char *const missing[] = { "--port", "32100", "--tls", "--cert", "/nonexistent.crt",
	                                "--key", key_path, NULL };
	cr_assert_eq(srv_run_exit(missing, NULL, err, sizeof err, 10000), 2, "%s", err);
	/* A key file given as the certificate, and vice versa. */
	const char *const swapped[] = { "--port", "32100", "--tls", "--cert", key_path,
	                                "--key", cert_path, NULL };
	cr_assert_eq(srv_run_exit(swapped, NULL, err, sizeof err, 10000), 2, "%s", err);
	cr_assert_not_null(strstr(err, "--cert"), "%s", err);
	/* A key that does not belong to the certificate. */
	char other[96];
	snprintf(other, sizeof other, "%s.other", key_path);
	EVP_PKEY *k = EVP_EC_gen("P-256");
	FILE *f = fopen(other, "w");
	PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	EVP_PKEY_free(k);
	const char *const mismatch[] = { "--port", "32100", "--tls", "--cert", cert_path,
	                                 "--key", other, NULL };
	cr_assert_eq(srv_run_exit(mismatch, NULL, err, sizeof err, 10000), 2, "%s", err);
	cr_assert_not_null(strstr(err, "--key"), "%s", err);
	unlink(other);
	drop_cert();
}

Test(tls, client_library_over_tls, .fini = stop_clean)
{
	start_tls("2");
	struct n1c *a = NULL, *b = NULL;
	cr_assert_eq(n1c_connect(&a, "localhost", S.port, 5000), 0);
	cr_assert_eq(n1c_start_tls(a, "localhost", cert_path, true), 0, "trusted CA, right name");
	cr_assert_eq(n1c_connect(&b, "127.0.0.1", S.port, 5000), 0);
	cr_assert_eq(n1c_start_tls(b, NULL, NULL, false), 0, "no checks");

	uint64_t rtt = 0;
	cr_assert_eq(n1c_ping(a, &rtt), 0);
	cr_assert_gt(rtt, 0);
	static uint8_t big[65535];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (uint8_t)(i * 7);
	struct n1c_frame f;
	cr_assert_eq(n1c_echo(a, big, sizeof big, &f), 0);
	cr_assert_eq(f.len, sizeof big);
	cr_assert_arr_eq(f.payload, big, sizeof big);
	cr_assert_eq(n1c_ping(b, NULL), 0);
	cr_assert_eq(n1c_broadcast(a, "tls news", 8), 0);
	cr_assert_eq(n1c_recv(b, 5000, &f), 0);
	cr_assert_eq(f.type, FRAME_BROADCAST);
	cr_assert_arr_eq(f.payload, "tls news", 8);
	n1c_close(a);
	n1c_close(b);

	/* Certificate checks: an untrusted CA, and a name that does not match. */
	struct n1c *c = NULL;
	cr_assert_eq(n1c_connect(&c, "localhost", S.port, 5000), 0);
	cr_assert_eq(n1c_start_tls(c, "localhost", NULL, true), N1C_ETLS,
	             "self-signed certificate is not in the system's store");
	n1c_close(c);
	cr_assert_eq(n1c_connect(&c, "127.0.0.1", S.port, 5000), 0);
	cr_assert_eq(n1c_start_tls(c, "example.org", cert_path, true), N1C_ETLS, "wrong name");
	n1c_close(c);
}

Test(tls, cli_over_tls, .fini = stop_clean)
{
	start_tls("2");
	char port[8];
	snprintf(port, sizeof port, "%u", S.port);
	static struct run r;
	cr_assert_eq(cli_run(&r, CLI_ARGS("--host", "localhost", "--port", port, "--tls-ca",
	                                  cert_path, "ping", "-c", "3", "-i", "0")), 0, "%s",
	             r.err);
	cr_assert_not_null(strstr(r.out, "3 received"), "%s", r.out);
	cr_assert_eq(cli_run(&r, CLI_ARGS("--port", port, "--tls-insecure", "echo", "secret")), 0,
	             "%s", r.err);
	cr_assert_str_eq(r.out, "secret\n");
	cr_assert_eq(cli_run(&r, CLI_ARGS("--host", "localhost", "--port", port, "--tls", "echo",
	                                  "x")), 3, "untrusted: connection failure exit");
	cr_assert_not_null(strstr(r.err, "TLS"), "%s", r.err);
	cr_assert_eq(cli_run(&r, CLI_ARGS("--port", port, "echo", "plain")), 3,
	             "a plaintext client of a TLS server fails: %s", r.err);
	cr_assert_not_null(strstr(r.err, "TLS"), "and is told it met TLS: %s", r.err);
}

static void on_usr1(int sig)
{
	(void)sig;
}

struct blocked_writer {
	struct n1c *c;
	int result;
	_Atomic bool done;
};

/* Broadcast 64 KiB frames to a server that reads nothing until a write
 * blocks; a signal must end it. */
static void *blocked_writer_run(void *arg)
{
	struct blocked_writer *w = arg;
	static uint8_t big[65535];
	int r;
	do
		r = n1c_broadcast(w->c, big, sizeof big);
	while (r == 0);
	w->result = r;
	atomic_store(&w->done, true);
	return NULL;
}

/* A TLS write blocked on a server that does not read returns -EINTR when
 * a signal arrives (Ctrl-C in net001-cli), instead of waiting forever. */
Test(tls, client_library_tls_write_interrupted_by_a_signal, .fini = stop_clean)
{
	start_tls("1");
	struct n1c *c = NULL;
	cr_assert_eq(n1c_connect(&c, "127.0.0.1", S.port, 5000), 0);
	cr_assert_eq(n1c_start_tls(c, NULL, NULL, false), 0);
	n1c_set_timeout(c, 60000);
	struct sigaction sa = { .sa_handler = on_usr1 }; /* no SA_RESTART */
	sigaction(SIGUSR1, &sa, NULL);
	cr_assert_eq(srv_freeze(&S, 5000), 0);
	struct blocked_writer w = { .c = c };
	pthread_t t;
	pthread_create(&t, NULL, blocked_writer_run, &w);
	sleep_ms(1000);
	cr_assert(!atomic_load(&w.done), "the writer is blocked (the server reads nothing)");
	pthread_kill(t, SIGUSR1);
	for (int i = 0; i < 100 && !atomic_load(&w.done); i++)
		sleep_ms(20);
	bool done = atomic_load(&w.done);
	kill(S.pid, SIGCONT);
	cr_assert(done, "the signal ended the blocked TLS write");
	pthread_join(t, NULL);
	cr_assert_eq(w.result, -EINTR, "the write reports the interruption (%d)", w.result);
	n1c_close(c);
}
