// crabcache-bench's command line: flags -> a validated BenchConfig, with the usage text.
#ifndef CRABCACHE_BENCH_CONFIG_H_
#define CRABCACHE_BENCH_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"
#include "bench/options.h"

namespace crabcache::bench {

struct BenchConfig {
  LoadOptions load;
  int server_pid = 0;  // 0: no server CPU or RSS figures.
  bool json = false;
  bool help = false;
};

extern const char kUsage[];

// Parses and validates argv. Fails with kInvalidArgument naming the bad flag: unknown flags,
// non-numbers, values out of range, --duration together with --requests, a key size too small
// for the key count, protocol-specific flags with the wrong protocol.
absl::StatusOr<BenchConfig> ParseConfig(int argc, char** argv);

// "binary", "resp" or "grpc".
const char* ProtocolName(ProtocolKind kind);

}  // namespace crabcache::bench

#endif  // CRABCACHE_BENCH_CONFIG_H_
