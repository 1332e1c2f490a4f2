// This abseil (20220623) has no status macros of its own.
#ifndef CRABCACHE_CORE_STATUS_MACROS_H_
#define CRABCACHE_CORE_STATUS_MACROS_H_

#include "absl/status/status.h"

// Evaluates `expr` (an absl::Status) once and returns it from the enclosing function if not OK.
#define CRABCACHE_RETURN_IF_ERROR(expr)                    \
  do {                                                     \
    ::absl::Status crabcache_status_ = (expr);             \
    if (!crabcache_status_.ok()) return crabcache_status_; \
  } while (false)

#endif  // CRABCACHE_CORE_STATUS_MACROS_H_
