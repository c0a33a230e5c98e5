/*
 * benchlive.c - see benchlive.h.
 */
#include "perf/benchlive.h"

#include <string.h>

void bench_counts_add(struct bench_counts *d, const struct bench_counts *s)
{
	d->msgs += s->msgs;
	d->payload_bytes += s->payload_bytes;
	d->sent += s->sent;
	d->sends += s->sends;
	d->deliveries += s->deliveries;
	d->sent_total += s->sent_total;
	d->checked += s->checked;
	d->late += s->late;
	for (int k = 0; k < MM_KINDS; k++)
		d->mismatch[k] += s->mismatch[k];
	for (int k = 0; k <= ERR_MAX; k++) {
		d->errors[k] += s->errors[k];
		d->errors_other[k] += s->errors_other[k];
	}
	d->connect_failed += s->connect_failed;
	d->closed += s->closed;
	d->open_at_end += s->open_at_end;
	if (!d->first_connect_err)
		d->first_connect_err = s->first_connect_err;
}

void bench_live_init(struct bench_live *l)
{
	memset(l, 0, sizeof *l);
	pthread_mutex_init(&l->lock, NULL);
}

void bench_live_destroy(struct bench_live *l)
{
	pthread_mutex_destroy(&l->lock);
}

void bench_live_publish(struct bench_live *l, const struct bench_counts *c,
                        const struct lathist *h)
{
	pthread_mutex_lock(&l->lock);
	l->c = *c;
	l->hist = *h;
	pthread_mutex_unlock(&l->lock);
}

void bench_live_read(struct bench_live *l, struct bench_counts *c, struct lathist *h)
{
	pthread_mutex_lock(&l->lock);
	bench_counts_add(c, &l->c);
	lathist_merge(h, &l->hist);
	pthread_mutex_unlock(&l->lock);
}
