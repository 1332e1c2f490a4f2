#include "bench/load.h"

namespace crabcache::bench {

absl::StatusOr<LoadResult> RunLoad(const BenchConfig& config) {
  if (config.protocol == "grpc") return RunGrpcLoad(config);
  std::unique_ptr<Protocol> protocol;
  if (config.protocol == "binary") {
    protocol = MakeBinaryProtocol();
  } else if (config.protocol == "resp") {
    protocol = MakeRespProtocol();
  } else {
    return absl::InvalidArgumentError("--protocol must be binary, resp or grpc");
  }
  return RunStreamLoad(*protocol, config.load);
}

}  // namespace crabcache::bench
