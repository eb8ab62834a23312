// Invariant checks for fuzz targets: abort (a crash the fuzzer and the replay test both see)
// with the failed condition. Fuzz targets only.
#pragma once

#include <cstdio>
#include <cstdlib>

#define STRATA_FUZZ_CHECK(cond)                                                   \
  do {                                                                            \
    if (!(cond)) {                                                                \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                               \
    }                                                                             \
  } while (0)
