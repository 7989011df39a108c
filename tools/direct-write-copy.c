// How fast memory can be filled again right after a direct (O_DIRECT) write has read it: the
// copy `strata dfs get` makes into its direct-write buffers, with ordinary stores (memcpy) and
// with non-temporal stores (what Strata uses), 1 GiB in 256 KiB pieces through eight buffers.
// On some virtual machines the memcpy figure varies several-fold from run to run; run it a few
// times and compare the two lines of one run.
//
//   clang -O2 -o /tmp/direct-write-copy tools/direct-write-copy.c && /tmp/direct-write-copy DIR
//
// DIR must be on a disk file system that takes O_DIRECT (not tmpfs); a 1 GiB file is written
// there and removed.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <emmintrin.h>
#endif

enum { piece = 256 * 1024, buffers = 8 };
static const size_t total = (size_t)1 << 30;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void copy_nontemporal(char *to, const char *from, size_t count) {
#if defined(__x86_64__)
    for (size_t i = 0; i < count; i += 16) _mm_stream_si128((__m128i *)(to + i), _mm_loadu_si128((const __m128i *)(from + i)));
    _mm_sfence();
#else
    memcpy(to, from, count);
#endif
}

static double run(const char *path, int nontemporal) {
    char *source = aligned_alloc(4096, piece);
    memset(source, 7, piece);
    char *buffer[buffers];
    for (int i = 0; i < buffers; i++) {
        buffer[i] = aligned_alloc(4096, piece);
        memset(buffer[i], 1, piece);
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT, 0644);
    if (fd < 0) { perror(path); exit(1); }
    posix_fallocate(fd, 0, (off_t)total);
    double copying = 0;
    for (size_t i = 0; i < total / piece; i++) {
        char *target = buffer[i % buffers];
        double started = now();
        if (nontemporal) copy_nontemporal(target, source, piece); else memcpy(target, source, piece);
        copying += now() - started;
        if (pwrite(fd, target, piece, (off_t)(i * piece)) != piece) { perror("pwrite"); exit(1); }
    }
    close(fd);
    unlink(path);
    for (int i = 0; i < buffers; i++) free(buffer[i]);
    free(source);
    return copying;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s DIR\n", argv[0]); return 2; }
    char path[4096];
    snprintf(path, sizeof path, "%s/direct-write-copy.tmp", argv[1]);
    double ordinary = run(path, 0);
    double nontemporal = run(path, 1);
    printf("copy into buffers a direct write just read, 1 GiB: memcpy %.3f s, non-temporal stores %.3f s\n",
           ordinary, nontemporal);
    return 0;
}
