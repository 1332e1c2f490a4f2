#include "core/memory_limit.h"

#include <charconv>
#include <fstream>
#include <optional>
#include <sstream>

namespace crabcache::core {
namespace {

// Anything at or above this is the kernel's way of saying "no limit".
constexpr uint64_t kUnlimited = uint64_t{1} << 60;

std::optional<std::string> ReadFirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  return line;
}

std::optional<uint64_t> ParseBytes(const std::string& s) {
  uint64_t v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr == s.data()) return std::nullopt;
  return v;
}

std::optional<uint64_t> CgroupLimit(const std::string& path) {
  const auto line = ReadFirstLine(path);
  if (!line || *line == "max") return std::nullopt;
  const auto v = ParseBytes(*line);
  if (!v || *v == 0 || *v >= kUnlimited) return std::nullopt;
  return v;
}

std::optional<uint64_t> PhysicalMemory(const std::string& path) {
  std::ifstream in(path);
  std::string key, unit;
  uint64_t kib = 0;
  while (in >> key >> kib >> unit) {
    if (key == "MemTotal:") return kib * 1024;
  }
  return std::nullopt;
}

}  // namespace

MemoryLimit DetectMemoryLimit(const std::string& root) {
  const std::string base = root.empty() || root.back() != '/' ? root + "/" : root;
  if (auto v = CgroupLimit(base + "sys/fs/cgroup/memory.max")) return {*v, "cgroup v2 memory.max"};
  if (auto v = CgroupLimit(base + "sys/fs/cgroup/memory/memory.limit_in_bytes")) {
    return {*v, "cgroup v1 memory.limit_in_bytes"};
  }
  if (auto v = PhysicalMemory(base + "proc/meminfo")) return {*v, "/proc/meminfo MemTotal"};
  return {0, "none"};
}

uint64_t DefaultMaxMemory(double share, const std::string& root) {
  return static_cast<uint64_t>(static_cast<double>(DetectMemoryLimit(root).bytes) * share);
}

}  // namespace crabcache::core
