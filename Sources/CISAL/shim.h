#ifndef STRATA_CISAL_SHIM_H
#define STRATA_CISAL_SHIM_H
#include <isa-l/crc.h>
#endif
