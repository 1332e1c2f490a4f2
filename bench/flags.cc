#include "bench/flags.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>

namespace crabcache::bench {

absl::StatusOr<Flags> Flags::Parse(int argc, char** argv, const std::set<std::string>& known,
                                   const std::set<std::string>& boolean) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) return absl::InvalidArgumentError("unexpected argument: " + arg);
    arg = arg.substr(2);
    std::string value;
    const size_t eq = arg.find('=');
    const bool has_value = eq != std::string::npos;
    if (has_value) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    }
    std::replace(arg.begin(), arg.end(), '_', '-');
    if (!known.count(arg)) return absl::InvalidArgumentError("unknown flag --" + arg);
    if (boolean.count(arg)) {
      if (!has_value) value = "true";
      if (value != "true" && value != "false" && value != "1" && value != "0") {
        return absl::InvalidArgumentError("--" + arg + " takes true or false, not " + value);
      }
    } else if (!has_value) {
      if (i + 1 >= argc) return absl::InvalidArgumentError("--" + arg + " needs a value");
      value = argv[++i];
    }
    flags.values_[arg] = value;
  }
  return flags;
}

std::string Flags::String(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

absl::StatusOr<long long> Flags::Int(const std::string& name, long long fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  long long v = 0;
  const std::string& s = it->second;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) {
    return absl::InvalidArgumentError("--" + name + " wants an integer, got '" + s + "'");
  }
  return v;
}

absl::StatusOr<double> Flags::Double(const std::string& name, double fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  char* end = nullptr;
  const double v = std::strtod(it->second.c_str(), &end);
  if (it->second.empty() || *end != '\0') {
    return absl::InvalidArgumentError("--" + name + " wants a number, got '" + it->second + "'");
  }
  return v;
}

bool Flags::Bool(const std::string& name) const {
  const std::string v = String(name, "false");
  return v == "true" || v == "1";
}

}  // namespace crabcache::bench
