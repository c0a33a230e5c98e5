/*
 * clock.h - moved to proto/clock.h (the one copy of the clock). This
 * forwarder only keeps net/conn.c and net/worker.c building until they
 * include "proto/clock.h" themselves; then delete it.
 */
#include "proto/clock.h"
