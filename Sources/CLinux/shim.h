#ifndef STRATA_CLINUX_SHIM_H
#define STRATA_CLINUX_SHIM_H
// Linux calls that Swift's Glibc module does not expose (they need _GNU_SOURCE).
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#if defined(__x86_64__)
#include <emmintrin.h>
#endif

/// `O_DIRECT`, which Glibc's Swift module hides without _GNU_SOURCE.
static inline int strata_o_direct(void) {
    return O_DIRECT;
}

/// Starts writeback of a file's dirty pages without waiting for it.
static inline int strata_start_writeback(int fd) {
    return sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

/// Copies `count` bytes with non-temporal stores where the processor has them (x86-64): whole
/// cache lines are written without first being read into this processor's cache. Memory that a
/// device (or, on a virtual machine, a host thread on another core) has just read for a direct
/// write is then not slow to fill again. `destination` must be 16-byte aligned.
static inline void strata_copy_nontemporal(void *destination, const void *source, size_t count) {
#if defined(__x86_64__)
    char *to = (char *)destination;
    const char *from = (const char *)source;
    size_t lines = count / 64 * 64;
    for (size_t i = 0; i < lines; i += 64) {
        __m128i a = _mm_loadu_si128((const __m128i *)(from + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(from + i + 16));
        __m128i c = _mm_loadu_si128((const __m128i *)(from + i + 32));
        __m128i d = _mm_loadu_si128((const __m128i *)(from + i + 48));
        _mm_stream_si128((__m128i *)(to + i), a);
        _mm_stream_si128((__m128i *)(to + i + 16), b);
        _mm_stream_si128((__m128i *)(to + i + 32), c);
        _mm_stream_si128((__m128i *)(to + i + 48), d);
    }
    _mm_sfence();
    memcpy(to + lines, from + lines, count - lines);
#else
    memcpy(destination, source, count);
#endif
}
#endif
