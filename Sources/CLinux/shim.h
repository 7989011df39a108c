#ifndef STRATA_CLINUX_SHIM_H
#define STRATA_CLINUX_SHIM_H
// Linux calls that Swift's Glibc module does not expose (they need _GNU_SOURCE).
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>

/// `O_DIRECT`, which Glibc's Swift module hides without _GNU_SOURCE.
static inline int strata_o_direct(void) {
    return O_DIRECT;
}

/// Starts writeback of a file's dirty pages without waiting for it.
static inline int strata_start_writeback(int fd) {
    return sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}
#endif
