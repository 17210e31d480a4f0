// Contract checks that stay on in every build type.
//
// A failed check prints the file, line and condition, then aborts:
//   policy/host_slot_pool.cpp:41: contract violated: slot < slots_.size()
#pragma once

#include <cstdio>
#include <cstdlib>

#define HCSIM_ASSERT(cond)                                                               \
  do {                                                                                   \
    if (!(cond)) [[unlikely]] {                                                          \
      std::fprintf(stderr, "%s:%d: contract violated: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)
