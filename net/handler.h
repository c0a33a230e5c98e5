/*
 * handler.h - what the server does with each valid frame (PROTOCOL.md
 * sections 2 to 4). Runs on the connection's worker thread.
 */
#ifndef NET001_NET_HANDLER_H
#define NET001_NET_HANDLER_H

#include <stdint.h>

#include "proto/frame.h"

struct worker;
struct conn;
struct rbuf;

/* One complete, CRC-valid frame. owner: the rbuf holding it when it was
 * reassembled (the handler may keep a reference), NULL when it lies in a
 * provided buffer (valid only during the call). */
void handle_frame(struct worker *co, struct conn *c, uint32_t slot,
                  const struct frame_view *f, struct rbuf *owner);

/* CRC of a request frame fr whose type byte was `from` (CRC old) and now
 * holds the reply type: a constant for PONG, frame_crc_retype() for big
 * payloads, computed afresh for small ones. */
uint32_t reply_crc(const struct worker *co, const uint8_t *fr, uint32_t old, uint8_t from,
                   uint16_t len);

#endif
