// A tiny command-line parser for the bench tools: `--name=value`, `--name value` and bare
// `--flag` (true; `--flag=false` also works); dashes and underscores in names are the same
// ("--get-ratio", "--get_ratio"). A later occurrence of a flag overrides an earlier one.
// (Not absl flags: those are process-global, which the unit tests of ParseConfig cannot use.)
#ifndef CRABCACHE_BENCH_FLAGS_H_
#define CRABCACHE_BENCH_FLAGS_H_

#include <map>
#include <set>
#include <string>

#include "absl/status/statusor.h"

namespace crabcache::bench {

// Immutable after Parse; thread-compatible.
class Flags {
 public:
  // `known` lists every accepted name (with dashes); `boolean` those that take no value.
  static absl::StatusOr<Flags> Parse(int argc, char** argv, const std::set<std::string>& known,
                                     const std::set<std::string>& boolean);

  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  std::string String(const std::string& name, const std::string& fallback) const;
  absl::StatusOr<long long> Int(const std::string& name, long long fallback) const;
  absl::StatusOr<double> Double(const std::string& name, double fallback) const;
  bool Bool(const std::string& name) const;

 private:
  std::map<std::string, std::string> values_;
};

}  // namespace crabcache::bench

#endif  // CRABCACHE_BENCH_FLAGS_H_
