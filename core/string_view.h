// Debian's abseil is built with ABSL_OPTION_USE_STD_STRING_VIEW=0, so absl::string_view is its own
// type. CrabCache speaks std::string_view; these two helpers are the only bridge.
#ifndef CRABCACHE_CORE_STRING_VIEW_H_
#define CRABCACHE_CORE_STRING_VIEW_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace crabcache::core {

inline std::string_view ToStd(absl::string_view s) { return {s.data(), s.size()}; }
inline absl::string_view ToAbsl(std::string_view s) { return {s.data(), s.size()}; }

}  // namespace crabcache::core

#endif  // CRABCACHE_CORE_STRING_VIEW_H_
