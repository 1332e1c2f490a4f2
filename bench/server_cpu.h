// CPU seconds (user + system) a process has used, from /proc/<pid>/stat.
#ifndef CRABCACHE_BENCH_SERVER_CPU_H_
#define CRABCACHE_BENCH_SERVER_CPU_H_

#include <unistd.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <string>

namespace crabcache::bench {

inline std::optional<double> ProcessCpuSeconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name (field 2) may hold spaces; fields after it start past the last ')'.
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream fields(stat.substr(paren + 2));
  std::string skip;
  for (int field = 3; field <= 13; ++field) fields >> skip;  // state .. cmajflt
  unsigned long long utime = 0, stime = 0;
  if (!(fields >> utime >> stime)) return std::nullopt;
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace crabcache::bench

#endif  // CRABCACHE_BENCH_SERVER_CPU_H_
