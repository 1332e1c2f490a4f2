// Where the default --max_memory comes from: a share of the cgroup memory limit when one is set
// (cgroup v2 memory.max, else v1 memory.limit_in_bytes), else of physical memory.
#ifndef CRABCACHE_CORE_MEMORY_LIMIT_H_
#define CRABCACHE_CORE_MEMORY_LIMIT_H_

#include <cstdint>
#include <string>

namespace crabcache::core {

struct MemoryLimit {
  uint64_t bytes = 0;  // The limit found (before taking the share); 0 if nothing was readable.
  std::string source;  // "cgroup v2 memory.max", "cgroup v1 ...", "/proc/meminfo" or "none".
};

// Reads the limits under `root` ("/" in production; a temporary folder in tests). A cgroup limit
// that is "max" or absurdly large (v1 reports ~2^63 for "unlimited") counts as not set.
MemoryLimit DetectMemoryLimit(const std::string& root = "/");

// share * DetectMemoryLimit(root).bytes, rounded down; 0 (unlimited) if nothing was found.
uint64_t DefaultMaxMemory(double share = 0.8, const std::string& root = "/");

}  // namespace crabcache::core

#endif  // CRABCACHE_CORE_MEMORY_LIMIT_H_
