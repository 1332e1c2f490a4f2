// What crabcache-bench prints: one JSON object (--json) or a few lines of text.
#ifndef CRABCACHE_BENCH_REPORT_H_
#define CRABCACHE_BENCH_REPORT_H_

#include <cstdint>
#include <optional>
#include <string>

#include "bench/config.h"
#include "bench/options.h"

namespace crabcache::bench {

struct ServerFigures {
  std::optional<double> cpu_seconds;   // Server CPU (user + system) over the measured window.
  std::optional<double> user_seconds;  // Its user-space part.
  std::optional<uint64_t> rss_bytes;   // Server RSS at the end of the run.
};

// The workload's name in reports: "binary", "resp", "grpc-batch" or "grpc-unary".
std::string WorkloadLabel(const LoadOptions& options);

// JSON object on one line, newline-terminated. Absent server figures are null.
std::string FormatJson(const BenchConfig& config, const LoadResult& result,
                       const ServerFigures& server);
std::string FormatText(const BenchConfig& config, const LoadResult& result,
                       const ServerFigures& server);

}  // namespace crabcache::bench

#endif  // CRABCACHE_BENCH_REPORT_H_
