// Another process's CPU time and resident memory, from /proc (Linux only).
#ifndef CRABCACHE_BENCH_PROC_STAT_H_
#define CRABCACHE_BENCH_PROC_STAT_H_

#include <cstdint>
#include <optional>
#include <string_view>

namespace crabcache::bench {

struct CpuTimes {
  double user = 0;    // utime: seconds in user space, every thread.
  double system = 0;  // stime: seconds in the kernel on the process's behalf (syscalls, ...).
  double total() const { return user + system; }
};

// CPU time of every thread of `pid` so far (utime and stime of /proc/PID/stat), or nullopt when
// the process does not exist. Resolution: one clock tick (usually 10 ms).
std::optional<CpuTimes> ProcessCpuTimes(int pid);

// Resident set size in bytes (VmRSS of /proc/PID/status), or nullopt.
std::optional<uint64_t> ProcessRssBytes(int pid);

// The parsers behind the two above, for tests: the contents of a stat / status file.
std::optional<CpuTimes> ParseStatCpuTimes(std::string_view stat, long ticks_per_second);
std::optional<uint64_t> ParseStatusRssBytes(std::string_view status);

}  // namespace crabcache::bench

#endif  // CRABCACHE_BENCH_PROC_STAT_H_
