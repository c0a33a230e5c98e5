/*
 * frame_check.c - codec invariants over arbitrary bytes. See frame_check.h.
 *
 * The expectations here are derived from PROTOCOL.md independently of
 * proto/: the CRC is a plain table CRC-32, magic, version and length are
 * read with explicit byte arithmetic, and the AUTH and ERROR shapes are
 * re-stated, so a bug in the codec cannot hide behind itself.
 */
#include "frame_check.h"

#include <errno.h>
#include <sanitizer/asan_interface.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"
#include "proto/msg.h"

/* Decoder limits each input is walked with: the protocol's own (0), the
 * PING size, and one in between so both sides of it are reachable by small
 * inputs. */
static const uint32_t limits[] = { 0, 8, 300 };

enum walk_mode {
	ONE_BYTE_EAGER,   /* append one byte, decode after each */
	ONE_BYTE_HONOUR,  /* append one byte, decode once `need` has arrived */
	CHUNKS_EAGER,     /* random chunk sizes */
	CHUNKS_HONOUR,
};

struct event {
	size_t off;    /* stream offset the answer is for */
	int rc;
	uint32_t size;
	uint8_t type;
};

struct check {
	char *why;
	size_t why_len;
	uint32_t limit;       /* current decoder setting */
	uint32_t table[256];  /* reference CRC-32 table */
	uint8_t *scratch;     /* n + 16 bytes */
	uint8_t *scratch2;    /* as many */
	struct event *ev;     /* the whole walk's answers, up to n + 1 */
	size_t nev;
	size_t consumed;      /* where the whole walk stopped */
};

__attribute__((format(printf, 2, 3)))
static int fail(struct check *c, const char *fmt, ...)
{
	va_list ap;
	int k = snprintf(c->why, c->why_len, "max_payload %u: ", c->limit);
	if (k < 0 || (size_t)k >= c->why_len)
		return -EPROTO;
	va_start(ap, fmt);
	vsnprintf(c->why + k, c->why_len - (size_t)k, fmt, ap);
	va_end(ap);
	return -EPROTO;
}

#define CHECK(c, cond, ...) \
	do { \
		if (!(cond)) \
			return fail((c), __VA_ARGS__); \
	} while (0)

#define TRY(expr) \
	do { \
		int rc_ = (expr); \
		if (rc_ < 0) \
			return rc_; \
	} while (0)

static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15u);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
	return z ^ (z >> 31);
}

static void ref_crc_init(uint32_t t[256])
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t v = i;
		for (int k = 0; k < 8; k++)
			v = (v >> 1) ^ (0xEDB88320u & (0u - (v & 1)));
		t[i] = v;
	}
}

static uint32_t ref_crc(const uint32_t t[256], const uint8_t *p, size_t n)
{
	uint32_t v = 0xFFFFFFFFu;
	for (size_t i = 0; i < n; i++)
		v = t[(v ^ p[i]) & 0xFF] ^ (v >> 8);
	return ~v;
}

static bool is_cont(uint8_t b)
{
	return (b & 0xC0) == 0x80;
}

/* ---- payloads ------------------------------------------------------------ */

static int check_auth(struct check *c, const uint8_t *p, size_t n)
{
	struct msg_auth a;
	int rc = msg_auth_parse(p, n, &a);
	size_t ulen = n ? p[0] : 0;
	bool ok = n >= 1 && ulen >= 1 && ulen <= 64 && n >= 1 + ulen &&
	          n - 1 - ulen >= 1 && n - 1 - ulen <= 256;

	CHECK(c, rc == 0 || rc == -EINVAL, "msg_auth_parse returned %d", rc);
	CHECK(c, (rc == 0) == ok, "msg_auth_parse(%zu bytes, ulen %zu) = %d", n, ulen, rc);
	if (!ok)
		return 0;
	CHECK(c, a.user == p + 1 && a.user_len == ulen, "AUTH username view");
	CHECK(c, a.token == p + 1 + ulen && a.token_len == n - 1 - ulen, "AUTH token view");

	int m = msg_auth_build(c->scratch, a.user, a.user_len, a.token, a.token_len);
	CHECK(c, m >= 0 && (size_t)m == n && memcmp(c->scratch, p, n) == 0,
	      "msg_auth_build does not reproduce the AUTH payload");
	return 0;
}

static int check_error_build(struct check *c, uint16_t code, const char *text,
                             size_t slen, size_t cap)
{
	size_t m = msg_error_build(c->scratch, cap, code, text);
	if (cap < 2) {
		CHECK(c, m == 0, "msg_error_build with cap %zu returned %zu", cap, m);
		return 0;
	}
	CHECK(c, m >= 2 && m <= cap, "msg_error_build(cap %zu) returned %zu", cap, m);
	CHECK(c, frame_get_u16(c->scratch) == code, "msg_error_build code");
	size_t kept = m - 2;
	CHECK(c, memcmp(c->scratch + 2, text, kept) == 0, "msg_error_build text");
	if (slen <= cap - 2) {
		CHECK(c, kept == slen, "msg_error_build dropped text that fits");
		return 0;
	}
	/* Truncated: kept is the last character boundary at or before the
	 * room left. */
	CHECK(c, kept == 0 || !is_cont((uint8_t)text[kept]),
	      "msg_error_build split a UTF-8 sequence (cap %zu, kept %zu)", cap, kept);
	for (size_t j = kept + 1; j <= cap - 2; j++)
		CHECK(c, is_cont((uint8_t)text[j]),
		      "msg_error_build cut more than needed (cap %zu, kept %zu)", cap, kept);
	return 0;
}

static int check_error(struct check *c, const uint8_t *p, size_t n)
{
	uint16_t code = 0;
	const uint8_t *text = NULL;
	size_t tlen = 0;
	int rc = msg_error_parse(p, n, &code, &text, &tlen);

	if (n < 2) {
		CHECK(c, rc == -EINVAL, "msg_error_parse(%zu bytes) = %d", n, rc);
		return 0;
	}
	CHECK(c, rc == 0, "msg_error_parse(%zu bytes) = %d", n, rc);
	CHECK(c, code == ((p[0] << 8) | p[1]), "ERROR code");
	CHECK(c, text == p + 2 && tlen == n - 2, "ERROR text view");

	bool known = code >= 1 && code <= 14;
	CHECK(c, (msg_error_name(code) != NULL) == known, "msg_error_name(%u)", code);
	CHECK(c, (msg_error_label(code) != NULL) == known, "msg_error_label(%u)", code);
	CHECK(c, msg_error_text(code) != NULL, "msg_error_text(%u) is NULL", code);
	if (!known)
		CHECK(c, msg_error_closes(code), "unknown code %u must close", code);

	/* The builder takes a C string: the text up to its first NUL. */
	char *s = (char *)c->scratch2;
	memcpy(s, text, tlen);
	s[tlen] = '\0';
	size_t slen = strlen(s);
	size_t caps[] = { n, 2 + tlen / 2, 2 + tlen / 3 + 1, 2, 1 };
	for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++)
		TRY(check_error_build(c, code, s, slen, caps[i]));
	return 0;
}

/* ---- one decoder answer -------------------------------------------------- */

static bool magic_prefix_ok(const uint8_t *p, size_t n)
{
	static const uint8_t m[4] = { 0xDE, 0xAD, 0xBE, 0xEF };
	return memcmp(p, m, n < 4 ? n : 4) == 0;
}

/* Everything about a valid frame that takes more than a glance: its CRC,
 * re-encoding it three ways, its prefixes, its payload. */
static int check_frame_full(struct check *c, const struct frame_decoder *d,
                            const uint8_t *p, const struct frame_view *f)
{
	size_t len = f->len, size = f->size;
	uint32_t want = frame_get_u32(p + FRAME_HEADER_SIZE + len);
	CHECK(c, ref_crc(c->table, p, FRAME_HEADER_SIZE + len) == want,
	      "frame accepted with a wrong CRC");

	CHECK(c, frame_encode(c->scratch, f->type, f->payload, f->len) == size &&
	         memcmp(c->scratch, p, size) == 0,
	      "frame_encode does not reproduce a decoded frame (len %zu)", len);

	uint8_t hdr[FRAME_HEADER_SIZE], crc[FRAME_CRC_SIZE];
	frame_wrap(hdr, crc, f->type, f->payload, f->len);
	CHECK(c, memcmp(hdr, p, sizeof hdr) == 0 &&
	         memcmp(crc, p + FRAME_HEADER_SIZE + len, sizeof crc) == 0,
	      "frame_wrap does not reproduce a decoded frame (len %zu)", len);

	memcpy(c->scratch2 + FRAME_HEADER_SIZE, f->payload, len);
	CHECK(c, frame_encode(c->scratch2, f->type, c->scratch2 + FRAME_HEADER_SIZE,
	                      f->len) == size &&
	         memcmp(c->scratch2, p, size) == 0,
	      "in-place frame_encode differs (len %zu)", len);

	/* Prefixes: the header bytes one by one, then a few payload points. */
	size_t ks[FRAME_HEADER_SIZE + 3];
	size_t nk = 0;
	for (size_t k = 0; k <= FRAME_HEADER_SIZE && k < size; k++)
		ks[nk++] = k;
	ks[nk++] = FRAME_HEADER_SIZE + len / 2;
	ks[nk++] = size - 1;
	for (size_t i = 0; i < nk; i++) {
		struct frame_view g;
		size_t k = ks[i];
		int rc = frame_decode(d, p, k, &g);
		size_t need = k < FRAME_HEADER_SIZE ? FRAME_HEADER_SIZE - k : size - k;
		CHECK(c, rc == FRAME_NEED_MORE && g.need == need,
		      "prefix %zu of a %zu-byte frame: rc %d need %u, want need %zu",
		      k, size, rc, g.need, need);
	}

	if (f->type == FRAME_AUTH)
		TRY(check_auth(c, f->payload, len));
	if (f->type == FRAME_ERROR)
		TRY(check_error(c, f->payload, len));
	return 0;
}

static int check_answer(struct check *c, const struct frame_decoder *d,
                        const uint8_t *p, size_t n, int rc,
                        const struct frame_view *f, bool full)
{
	uint32_t eff = c->limit && c->limit < FRAME_MAX_PAYLOAD ? c->limit : FRAME_MAX_PAYLOAD;
	size_t len = n >= FRAME_HEADER_SIZE ? frame_get_u16(p + 6) : 0;
	bool header = n >= FRAME_HEADER_SIZE;

	CHECK(c, f->frame == p, "view does not start at the input");
	if (rc > 0 || rc == FRAME_NEED_MORE || rc == FRAME_ETOOLARGE || rc == FRAME_ECRC) {
		CHECK(c, magic_prefix_ok(p, n), "rc %d with a bad magic", rc);
		CHECK(c, n <= 4 || p[4] == FRAME_VERSION, "rc %d with a bad version", rc);
	}
	if (header && rc != FRAME_EMAGIC && rc != FRAME_EVERSION) {
		CHECK(c, f->len == len && f->size == FRAME_OVERHEAD + len && f->type == p[5],
		      "rc %d: header fields wrong (len %u size %u type %u)",
		      rc, f->len, f->size, f->type);
		CHECK(c, f->payload == p + FRAME_HEADER_SIZE, "payload view misplaced");
	}

	switch (rc) {
	case FRAME_NEED_MORE:
		if (!header) {
			CHECK(c, f->need == FRAME_HEADER_SIZE - n,
			      "%zu header bytes: need %u", n, f->need);
			CHECK(c, f->payload == NULL, "payload set before the header");
		} else {
			CHECK(c, len <= eff, "need more for a length above the limit");
			CHECK(c, n < FRAME_OVERHEAD + len,
			      "need more with the whole frame present");
			CHECK(c, f->need == FRAME_OVERHEAD + len - n,
			      "%zu of %zu bytes: need %u", n, FRAME_OVERHEAD + len, f->need);
		}
		return 0;
	case FRAME_EMAGIC:
		CHECK(c, n >= 1 && !magic_prefix_ok(p, n), "bad magic on a good prefix");
		return 0;
	case FRAME_EVERSION:
		CHECK(c, n >= 5 && magic_prefix_ok(p, n) && p[4] != FRAME_VERSION,
		      "bad version wrongly reported");
		return 0;
	case FRAME_ETOOLARGE:
		CHECK(c, header && len > eff, "too large for length %zu, limit %u", len, eff);
		return 0;
	case FRAME_ECRC:
		CHECK(c, header && len <= eff && n >= f->size, "bad CRC before the frame is whole");
		if (full) {
			uint32_t want = frame_get_u32(p + FRAME_HEADER_SIZE + len);
			CHECK(c, ref_crc(c->table, p, FRAME_HEADER_SIZE + len) != want,
			      "good frame reported as bad CRC");
		}
		return 0;
	default:
		break;
	}
	CHECK(c, rc > 0, "unknown decoder answer %d", rc);
	CHECK(c, header && (size_t)rc == f->size && (size_t)rc <= n,
	      "consumed %d of %zu bytes", rc, n);
	CHECK(c, len <= eff, "accepted length %zu above limit %u", len, eff);
	return full ? check_frame_full(c, d, p, f) : 0;
}

/* Where the stream continues after an answer: past a frame, past a bad
 * frame whose size is known, else one byte on (resync). */
static size_t advance(int rc, const struct frame_view *f)
{
	if (rc > 0)
		return (size_t)rc;
	if (rc == FRAME_ECRC)
		return f->size;
	return 1;
}

/* ---- stream walks -------------------------------------------------------- */

static int walk_whole(struct check *c, const struct frame_decoder *d,
                      const uint8_t *p, size_t n)
{
	size_t off = 0;
	c->nev = 0;
	while (off < n) {
		struct frame_view f;
		int rc = frame_decode(d, p + off, n - off, &f);
		TRY(check_answer(c, d, p + off, n - off, rc, &f, true));
		if (rc == FRAME_NEED_MORE)
			break;
		c->ev[c->nev++] = (struct event){ off, rc, f.size, f.type };
		off += advance(rc, &f);
	}
	c->consumed = off;
	return 0;
}

static const char *mode_name(enum walk_mode m)
{
	switch (m) {
	case ONE_BYTE_EAGER:  return "one byte, eager";
	case ONE_BYTE_HONOUR: return "one byte, honouring need";
	case CHUNKS_EAGER:    return "chunks, eager";
	default:              return "chunks, honouring need";
	}
}

struct reader {
	uint8_t *buf;
	size_t start;  /* first byte not consumed */
	size_t end;    /* one past the last byte received */
	size_t wait;   /* with honour: bytes to hold before decoding again */
	size_t idx;    /* answers so far, compared with the whole walk's */
	bool honour;
};

/* Decode what is held until the decoder needs more. */
static int drain(struct check *c, const struct frame_decoder *d,
                 struct reader *r, enum walk_mode mode)
{
	while (r->start < r->end) {
		size_t held = r->end - r->start;
		if (r->honour && held < r->wait)
			return 0;
		struct frame_view f;
		int rc = frame_decode(d, r->buf + r->start, held, &f);
		TRY(check_answer(c, d, r->buf + r->start, held, rc, &f, false));
		if (rc == FRAME_NEED_MORE) {
			r->wait = held + f.need;
			return 0;
		}
		r->wait = 0;
		CHECK(c, r->idx < c->nev, "%s: extra answer %d at %zu",
		      mode_name(mode), rc, r->start);
		const struct event *e = &c->ev[r->idx++];
		CHECK(c, e->off == r->start && e->rc == rc && e->size == f.size &&
		         e->type == f.type,
		      "%s: answer %d at %zu, whole stream said %d at %zu",
		      mode_name(mode), rc, r->start, e->rc, e->off);
		r->start += advance(rc, &f);
	}
	return 0;
}

/*
 * The same stream through a reassembly buffer, as a connection receives
 * it. The buffer mirrors the input one to one (no compaction: the decoder
 * only ever sees the window [start, end)), and everything at or after end
 * is poisoned in ASan builds so a read past the bytes held is caught.
 */
static int walk_chunked_in(struct check *c, const struct frame_decoder *d,
                           const uint8_t *p, size_t n, enum walk_mode mode,
                           uint8_t *buf)
{
	bool honour = mode == ONE_BYTE_HONOUR || mode == CHUNKS_HONOUR;
	bool chunks = mode == CHUNKS_EAGER || mode == CHUNKS_HONOUR;
	uint64_t seed = ((uint64_t)n << 32) ^ c->limit ^ (uint64_t)mode;
	struct reader r = { .buf = buf, .honour = honour };

	while (r.end < n) {
		size_t k = 1;
		if (chunks) {
			uint64_t x = rnd(&seed);
			k = 1 + (x % 4 == 0 ? (x >> 8) % (n + 1) : (x >> 8) % 24);
		}
		if (k > n - r.end)
			k = n - r.end;
		ASAN_UNPOISON_MEMORY_REGION(buf + r.end, k);
		memcpy(buf + r.end, p + r.end, k);
		r.end += k;
		TRY(drain(c, d, &r, mode));
	}
	/* At the end of the stream a reader honouring `need` may still hold
	 * a short tail it never looked at (a bad magic in 3 bytes, say): look
	 * now, so its answers can be compared too. */
	r.honour = false;
	TRY(drain(c, d, &r, mode));

	CHECK(c, r.idx == c->nev, "%s: %zu answers, whole stream gave %zu",
	      mode_name(mode), r.idx, c->nev);
	CHECK(c, r.start == c->consumed, "%s: stopped at %zu, whole stream at %zu",
	      mode_name(mode), r.start, c->consumed);
	return 0;
}

static int walk_chunked(struct check *c, const struct frame_decoder *d,
                        const uint8_t *p, size_t n, enum walk_mode mode)
{
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf)
		return -ENOMEM;
	ASAN_POISON_MEMORY_REGION(buf, n ? n : 1);
	int rc = walk_chunked_in(c, d, p, n, mode, buf);
	ASAN_UNPOISON_MEMORY_REGION(buf, n ? n : 1);
	free(buf);
	return rc;
}

static int check_all(struct check *c, const uint8_t *p, size_t n)
{
	uint32_t whole = ref_crc(c->table, p, n);
	CHECK(c, frame_crc(0, p, n) == whole, "frame_crc differs from the reference over %zu bytes", n);
	size_t h = n / 3;
	CHECK(c, frame_crc(frame_crc(0, p, h), p + h, n - h) == whole,
	      "chained frame_crc differs at split %zu", h);

	TRY(check_auth(c, p, n));
	TRY(check_error(c, p, n));

	for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
		struct frame_decoder d = { .max_payload = limits[i] };
		c->limit = limits[i];
		TRY(walk_whole(c, &d, p, n));
		for (int m = ONE_BYTE_EAGER; m <= CHUNKS_HONOUR; m++)
			TRY(walk_chunked(c, &d, p, n, (enum walk_mode)m));
	}
	return 0;
}

int frame_check_input(const uint8_t *p, size_t n, char *why, size_t why_len)
{
	struct check c = { .why = why, .why_len = why_len };
	int rc = -ENOMEM;

	if (why_len)
		why[0] = '\0';
	ref_crc_init(c.table);
	/* Nothing built here is longer than the input it came from (a frame
	 * decoded from it, its payload rebuilt, the input as one ERROR
	 * payload plus a NUL); a little slack for the empty input. */
	size_t room = n + 16;
	c.scratch = malloc(room);
	if (!c.scratch)
		goto out;
	c.scratch2 = malloc(room);
	if (!c.scratch2)
		goto out_scratch;
	c.ev = malloc((n + 1) * sizeof *c.ev);
	if (!c.ev)
		goto out_scratch2;

	rc = check_all(&c, p, n);

	free(c.ev);
out_scratch2:
	free(c.scratch2);
out_scratch:
	free(c.scratch);
out:
	return rc;
}
