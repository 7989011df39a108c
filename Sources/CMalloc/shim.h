#ifndef STRATA_CMALLOC_SHIM_H
#define STRATA_CMALLOC_SHIM_H
// glibc's heap statistics (mallinfo2), for measuring the name node's bytes per file.
#include <malloc.h>
#endif
