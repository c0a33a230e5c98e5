/*
 * wheel.c - see wheel.h.
 */
#include "core/wheel.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int wheel_init(struct wheel *w, uint32_t cap, uint32_t nslots, uint32_t now_s)
{
	uint32_t n = 1;
	while (n < nslots)
		n <<= 1;
	memset(w, 0, sizeof *w);
	w->next = malloc(sizeof(uint32_t) * cap);
	w->prev = malloc(sizeof(uint32_t) * cap);
	w->due = malloc(sizeof(uint32_t) * cap);
	w->head = malloc(sizeof(uint32_t) * n);
	if (!w->next || !w->prev || !w->due || !w->head) {
		wheel_destroy(w);
		return -ENOMEM;
	}
	memset(w->due, 0xff, sizeof(uint32_t) * cap);
	memset(w->head, 0xff, sizeof(uint32_t) * n);
	w->cap = cap;
	w->mask = n - 1;
	w->now = now_s;
	return 0;
}

void wheel_destroy(struct wheel *w)
{
	free(w->next);
	free(w->prev);
	free(w->due);
	free(w->head);
	memset(w, 0, sizeof *w);
}

static void link_in(struct wheel *w, uint32_t id)
{
	uint32_t slot = w->due[id] & w->mask;
	uint32_t h = w->head[slot];
	w->prev[id] = WHEEL_NONE;
	w->next[id] = h;
	if (h != WHEEL_NONE)
		w->prev[h] = id;
	w->head[slot] = id;
}

static void unlink_out(struct wheel *w, uint32_t id)
{
	uint32_t n = w->next[id], p = w->prev[id];
	if (p != WHEEL_NONE)
		w->next[p] = n;
	else
		w->head[w->due[id] & w->mask] = n;
	if (n != WHEEL_NONE)
		w->prev[n] = p;
}

void wheel_add(struct wheel *w, uint32_t id, uint32_t due_s)
{
	if (w->due[id] != WHEEL_NONE)
		unlink_out(w, id);
	else
		w->count++;
	/* Anything already due fires at the next advance. */
	if (due_s <= w->now)
		due_s = w->now + 1;
	w->due[id] = due_s;
	link_in(w, id);
}

void wheel_del(struct wheel *w, uint32_t id)
{
	if (w->due[id] == WHEEL_NONE)
		return;
	unlink_out(w, id);
	w->due[id] = WHEEL_NONE;
	w->count--;
}

uint32_t wheel_advance(struct wheel *w, uint32_t now_s,
                       void (*fn)(void *ctx, uint32_t id), void *ctx)
{
	uint32_t fired = 0;
	uint32_t slots = w->mask + 1;

	/* After a long stall, one turn of the wheel visits every slot. */
	if (now_s - w->now > slots)
		w->now = now_s - slots;

	while (w->now != now_s) {
		w->now++;
		uint32_t slot = w->now & w->mask;
		uint32_t id = w->head[slot];
		w->head[slot] = WHEEL_NONE;
		/* Detach the whole slot first: fn may add ids back into it. */
		while (id != WHEEL_NONE) {
			uint32_t next = w->next[id];
			if (w->due[id] > now_s) {
				link_in(w, id); /* a later turn */
			} else {
				w->due[id] = WHEEL_NONE;
				w->count--;
				fired++;
				fn(ctx, id);
			}
			id = next;
		}
	}
	return fired;
}
