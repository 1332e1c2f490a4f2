// The standard process_* metrics (as Prometheus client libraries export them), read from /proc
// at scrape time: resident and virtual memory, CPU seconds, open and maximum file descriptors,
// start time.
#ifndef CRABCACHE_SERVER_PROCESS_METRICS_H_
#define CRABCACHE_SERVER_PROCESS_METRICS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "server/metrics.h"

namespace crabcache::server {

struct ProcessStats {
  double cpu_seconds = 0;         // utime + stime.
  double start_time_seconds = 0;  // Since the Unix epoch.
  uint64_t virtual_bytes = 0;
  uint64_t resident_bytes = 0;
};

// Parses the contents of /proc/<pid>/stat (the command name may contain spaces and parentheses).
// `ticks_per_second` is sysconf(_SC_CLK_TCK); `boot_time_seconds` is btime from /proc/stat.
std::optional<ProcessStats> ParseProcStat(std::string_view stat, double ticks_per_second,
                                          double boot_time_seconds, uint64_t page_size);

// Registers process_resident_memory_bytes, process_virtual_memory_bytes,
// process_cpu_seconds_total, process_open_fds, process_max_fds, process_start_time_seconds.
void AddProcessMetrics(Metrics* metrics);

}  // namespace crabcache::server

#endif  // CRABCACHE_SERVER_PROCESS_METRICS_H_
