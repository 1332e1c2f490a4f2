#include "server/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "core/string_view.h"

namespace crabcache::server {
namespace {

std::string ReadFile(const char* path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

double BootTimeSeconds() {
  std::istringstream in(ReadFile("/proc/stat"));
  std::string key;
  double value = 0;
  while (in >> key) {
    if (key == "btime" && (in >> value)) return value;
    in.ignore(1 << 16, '\n');
  }
  return 0;
}

std::optional<ProcessStats> ReadSelf() {
  static const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  static const double boot = BootTimeSeconds();
  static const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  return ParseProcStat(ReadFile("/proc/self/stat"), ticks, boot, page);
}

double OpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  double n = 0;
  while (const dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n - 1;  // The directory stream's own descriptor.
}

double MaxFds() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  return static_cast<double>(limit.rlim_cur);
}

}  // namespace

std::optional<ProcessStats> ParseProcStat(std::string_view stat, double ticks_per_second,
                                          double boot_time_seconds, uint64_t page_size) {
  // "pid (comm) state ppid ..." where comm may hold anything: fields start after the last ')'.
  const size_t close = stat.rfind(')');
  if (close == std::string_view::npos || ticks_per_second <= 0) return std::nullopt;
  const std::vector<absl::string_view> f =
      absl::StrSplit(core::ToAbsl(stat.substr(close + 1)), ' ', absl::SkipEmpty());
  // f[0] is field 3 (state); utime is field 14, stime 15, starttime 22, vsize 23, rss 24.
  constexpr size_t kUtime = 14 - 3, kStime = 15 - 3, kStart = 22 - 3, kVsize = 23 - 3,
                   kRss = 24 - 3;
  if (f.size() <= kRss) return std::nullopt;
  uint64_t utime = 0, stime = 0, start = 0, vsize = 0, rss = 0;
  if (!absl::SimpleAtoi(f[kUtime], &utime) || !absl::SimpleAtoi(f[kStime], &stime) ||
      !absl::SimpleAtoi(f[kStart], &start) || !absl::SimpleAtoi(f[kVsize], &vsize) ||
      !absl::SimpleAtoi(f[kRss], &rss)) {
    return std::nullopt;
  }
  ProcessStats s;
  s.cpu_seconds = static_cast<double>(utime + stime) / ticks_per_second;
  s.start_time_seconds = boot_time_seconds + static_cast<double>(start) / ticks_per_second;
  s.virtual_bytes = vsize;
  s.resident_bytes = rss * page_size;
  return s;
}

void AddProcessMetrics(Metrics* metrics) {
  metrics->AddGauge("process_resident_memory_bytes", "Resident memory size in bytes.", {}, [] {
    const auto s = ReadSelf();
    return s ? static_cast<double>(s->resident_bytes) : 0.0;
  });
  metrics->AddGauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", {}, [] {
    const auto s = ReadSelf();
    return s ? static_cast<double>(s->virtual_bytes) : 0.0;
  });
  metrics->AddCounter("process_cpu_seconds_total", "Total user and system CPU time in seconds.", {},
                      [] {
                        const auto s = ReadSelf();
                        return s ? s->cpu_seconds : 0.0;
                      });
  metrics->AddGauge("process_start_time_seconds",
                    "Start time of the process since the Unix epoch in seconds.", {}, [] {
                      const auto s = ReadSelf();
                      return s ? s->start_time_seconds : 0.0;
                    });
  metrics->AddGauge("process_open_fds", "Number of open file descriptors.", {}, OpenFds);
  metrics->AddGauge("process_max_fds", "Maximum number of open file descriptors.", {}, MaxFds);
}

}  // namespace crabcache::server
