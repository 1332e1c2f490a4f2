// crabcache-bench: one load generator for CrabCache's binary fast path, RESP (redis-server) and
// gRPC. Verifies every reply; reports throughput, latency quantiles and, with --server-pid,
// operations per server CPU-second. `crabcache-bench --help` lists the flags; bench/compare.py
// drives it against crabcached and redis-server side by side (docs/benchmarks.md).
//
// Exit status: 0 after a run whose every reply was right, 1 when the run failed (a wrong reply,
// a lost connection, an unreachable server), 2 for bad flags.
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "bench/config.h"
#include "bench/grpc_load.h"
#include "bench/proc_stat.h"
#include "bench/protocol.h"
#include "bench/report.h"
#include "bench/stream_load.h"

namespace crabcache::bench {
namespace {

absl::StatusOr<LoadResult> Run(const KeySpace& keys, const LoadOptions& options) {
  switch (options.protocol) {
    case ProtocolKind::kGrpc:
      return RunGrpcLoad(keys, options);
    case ProtocolKind::kResp:
      return RunStreamLoad(*MakeRespProtocol(), keys, options);
    case ProtocolKind::kBinary:
      return RunStreamLoad(*MakeBinaryProtocol(), keys, options);
  }
  return absl::InvalidArgumentError("unknown protocol");
}

int Main(int argc, char** argv) {
  auto config = ParseConfig(argc, argv);
  if (!config.ok()) {
    std::fprintf(stderr, "crabcache-bench: %s\n\n%s",
                 std::string(config.status().message()).c_str(), kUsage);
    return 2;
  }
  if (config->help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  LoadOptions& o = config->load;
  const auto keys = KeySpace::Create(o.keys, o.key_size, o.value_size);  // Validated already.
  ServerFigures server;
  std::optional<CpuTimes> cpu_start;
  const int pid = config->server_pid;
  if (pid > 0) {
    if (!ProcessCpuTimes(pid)) {
      std::fprintf(stderr, "crabcache-bench: no process %d to measure\n", pid);
      return 2;
    }
    o.on_measure_start = [&] { cpu_start = ProcessCpuTimes(pid); };
    o.on_measure_end = [&] {
      const auto end = ProcessCpuTimes(pid);
      if (!cpu_start || !end) return;
      server.cpu_seconds = end->total() - cpu_start->total();
      server.user_seconds = end->user - cpu_start->user;
    };
  }
  const bool progress = isatty(STDERR_FILENO) && !o.load_only;
  if (progress) {
    o.progress = [](uint64_t ops, double seconds) {
      std::fprintf(stderr, "\r%4.0f s  %12llu ops  %10.0f ops/s ", seconds,
                   static_cast<unsigned long long>(ops), seconds > 0 ? ops / seconds : 0.0);
    };
  }
  auto result = Run(*keys, o);
  if (progress) std::fputs("\r\033[K", stderr);
  if (!result.ok()) {
    std::fprintf(stderr, "crabcache-bench: FAILED: %s\n",
                 std::string(result.status().message()).c_str());
    return 1;
  }
  if (pid > 0) server.rss_bytes = ProcessRssBytes(pid);
  const std::string report =
      config->json ? FormatJson(*config, *result, server) : FormatText(*config, *result, server);
  std::fputs(report.c_str(), stdout);
  return 0;
}

}  // namespace
}  // namespace crabcache::bench

int main(int argc, char** argv) { return crabcache::bench::Main(argc, argv); }
