#include "bench/proc_stat.h"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <string>

namespace crabcache::bench {
namespace {

std::optional<std::string> ReadSmallFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

// Skips spaces, then parses one unsigned integer; advances `s` past it.
std::optional<uint64_t> NextNumber(std::string_view& s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  uint64_t v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc()) return std::nullopt;
  s.remove_prefix(static_cast<size_t>(ptr - s.data()));
  return v;
}

}  // namespace

std::optional<CpuTimes> ParseStatCpuTimes(std::string_view stat, long ticks_per_second) {
  // Field 2, the command name in parentheses, may hold spaces and ')': fields 3.. start after
  // the last ')'. utime and stime are fields 14 and 15.
  const size_t paren = stat.rfind(')');
  if (paren == std::string_view::npos || ticks_per_second <= 0) return std::nullopt;
  std::string_view rest = stat.substr(paren + 1);
  for (int field = 3; field <= 13; ++field) {
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    const size_t space = rest.find(' ');
    if (space == std::string_view::npos) return std::nullopt;
    rest.remove_prefix(space);
  }
  const auto utime = NextNumber(rest);
  const auto stime = NextNumber(rest);
  if (!utime || !stime) return std::nullopt;
  const double tick = static_cast<double>(ticks_per_second);
  return CpuTimes{static_cast<double>(*utime) / tick, static_cast<double>(*stime) / tick};
}

std::optional<uint64_t> ParseStatusRssBytes(std::string_view status) {
  constexpr std::string_view kField = "\nVmRSS:";
  const size_t at = status.find(kField);
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view rest = status.substr(at + kField.size());
  while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
  const auto kib = NextNumber(rest);
  if (!kib) return std::nullopt;
  return *kib * 1024;
}

std::optional<CpuTimes> ProcessCpuTimes(int pid) {
  const auto stat = ReadSmallFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return std::nullopt;
  return ParseStatCpuTimes(*stat, sysconf(_SC_CLK_TCK));
}

std::optional<uint64_t> ProcessRssBytes(int pid) {
  const auto status = ReadSmallFile("/proc/" + std::to_string(pid) + "/status");
  if (!status) return std::nullopt;
  return ParseStatusRssBytes(*status);
}

}  // namespace crabcache::bench
