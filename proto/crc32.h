/*
 * crc32.h - CRC-32/ISO-HDLC (zlib's crc32) in portable C, for builds
 * without ISA-L (-Disal=disabled) and as an independent check of ISA-L in
 * the tests. frame_crc() (frame.h) is the codec's entry point; it uses
 * ISA-L when the build has it and this otherwise, with the same results.
 *
 * Slice-by-8: eight 256-entry tables, built once per process on first
 * use (pthread_once; 8 KiB, read-only afterwards), eight bytes per step.
 * Loads are assembled byte by byte, so any alignment and byte order work.
 *
 * Any thread; no state beyond the tables.
 */
#ifndef NET001_CRC32_H
#define NET001_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32/ISO-HDLC of p[0..n), continued from crc (0 to start), exactly
 * as zlib's crc32(crc, p, n) and ISA-L's crc32_gzip_refl(crc, p, n). */
uint32_t crc32_portable(uint32_t crc, const void *p, size_t n);

#endif
