// A ResultSink that keeps owned copies of every result; for tests and tools, not hot paths.
#ifndef CRABCACHE_CORE_RECORDING_SINK_H_
#define CRABCACHE_CORE_RECORDING_SINK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "core/command.h"

namespace crabcache::core {

struct OwnedResult {
  ResultCode code = ResultCode::kOk;
  std::string value;
  int64_t ttl_ms = 0;
  absl::StatusCode error = absl::StatusCode::kOk;
};

// Not thread-safe; one batch at a time.
class RecordingSink : public ResultSink {
 public:
  void OnResult(const Result& r) override {
    results.push_back(OwnedResult{r.code, std::string(r.value), r.ttl_ms, r.error});
  }
  std::vector<OwnedResult> results;
};

}  // namespace crabcache::core

#endif  // CRABCACHE_CORE_RECORDING_SINK_H_
