// crabcache-bench: one load generator for CrabCache's binary fast path, RESP (redis-server) and
// gRPC BatchExecute. Verifies every reply; reports throughput, latency quantiles and operations
// per server CPU-second (with --server-pid). See docs/benchmarks.md.
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>

#include "absl/strings/str_format.h"
#include "bench/flags.h"
#include "bench/load.h"
#include "bench/server_cpu.h"

namespace crabcache::bench {
namespace {

constexpr char kUsage[] = R"(usage: crabcache-bench [flags]
  --protocol binary|resp|grpc   wire protocol (default binary)
  --host H --port P             server address (default 127.0.0.1, port 8000 / 6379 / 50051)
  --connections N               connections (default 50); gRPC: channels
  --pipeline N                  requests in flight per connection; gRPC: commands per BatchRequest
  --streams N                   gRPC: concurrent BatchExecute streams (default 8)
  --unary                       gRPC: unary Get/Set calls instead of BatchExecute
  --threads N                   client threads (default 1)
  --get-ratio R                 share of GETs, the rest SETs (default 0.9)
  --keys N --key-size B --value-size B   key space (100000, 16, 64)
  --duration S | --requests N   measured time (10 s) or measured request count
  --warmup S                    unmeasured time first (1 s)
  --server-pid PID              read the server's CPU time from /proc before and after
  --no-prefill                  skip loading the key space first
  --json                        print one JSON object instead of text
)";

int Main(int argc, char** argv) {
  auto flags =
      Flags::Parse(argc, argv,
                   {"protocol", "host", "port", "connections", "pipeline", "streams", "unary",
                    "threads", "get-ratio", "keys", "key-size", "value-size", "duration",
                    "requests", "warmup", "server-pid", "no-prefill", "json", "help"},
                   {"unary", "no-prefill", "json", "help"});
  if (!flags.ok() || flags->Bool("help")) {
    if (!flags.ok()) std::fprintf(stderr, "%s\n", std::string(flags.status().message()).c_str());
    std::fputs(kUsage, stderr);
    return flags.ok() ? 0 : 2;
  }
  BenchConfig config;
  config.protocol = flags->String("protocol", "binary");
  const int default_port = config.protocol == "resp"   ? 6379
                           : config.protocol == "grpc" ? 50051
                                                       : 8000;
  LoadOptions& o = config.load;
  o.host = flags->String("host", "127.0.0.1");
  auto get_int = [&](const char* name, long long fallback, long long min) -> long long {
    auto v = flags->Int(name, fallback);
    if (!v.ok() || *v < min) {
      std::fprintf(stderr, "--%s must be an integer >= %lld\n", name, min);
      std::exit(2);
    }
    return *v;
  };
  auto get_double = [&](const char* name, double fallback, double min, double max) -> double {
    auto v = flags->Double(name, fallback);
    if (!v.ok() || *v < min || *v > max) {
      std::fprintf(stderr, "--%s must be a number in [%g, %g]\n", name, min, max);
      std::exit(2);
    }
    return *v;
  };
  o.port = static_cast<int>(get_int("port", default_port, 1));
  o.connections = static_cast<int>(get_int("connections", 50, 1));
  o.pipeline = static_cast<int>(get_int("pipeline", 1, 1));
  o.threads = static_cast<int>(get_int("threads", 1, 1));
  o.keys = static_cast<uint64_t>(get_int("keys", 100'000, 1));
  o.key_size = static_cast<int>(get_int("key-size", 16, 8));
  o.value_size = static_cast<int>(get_int("value-size", 64, 0));
  o.requests = static_cast<uint64_t>(get_int("requests", 0, 0));
  o.get_ratio = get_double("get-ratio", 0.9, 0, 1);
  o.duration_s = get_double("duration", 10, 0.1, 86400);
  o.warmup_s = get_double("warmup", 1, 0, 3600);
  o.prefill = !flags->Bool("no-prefill");
  config.streams = static_cast<int>(get_int("streams", 8, 1));
  config.unary = flags->Bool("unary");
  const int server_pid = static_cast<int>(get_int("server-pid", 0, 0));
  const bool json = flags->Bool("json");

  std::optional<double> cpu_start, cpu_end;
  if (server_pid > 0) {
    o.on_measure_start = [&] { cpu_start = ProcessCpuSeconds(server_pid); };
    o.on_measure_end = [&] { cpu_end = ProcessCpuSeconds(server_pid); };
  }
  if (isatty(STDERR_FILENO) && !json) {
    o.progress = [](uint64_t ops, double seconds) {
      std::fprintf(stderr, "\r%.0f s  %llu ops  %.0f ops/s   ", seconds,
                   static_cast<unsigned long long>(ops), seconds > 0 ? ops / seconds : 0.0);
    };
  }
  auto result = RunLoad(config);
  if (o.progress) std::fputs("\r\033[K", stderr);
  if (!result.ok()) {
    std::fprintf(stderr, "crabcache-bench: FAILED: %s\n",
                 std::string(result.status().message()).c_str());
    return 1;
  }
  const LoadResult& r = *result;
  const double throughput = r.seconds > 0 ? r.ops / r.seconds : 0;
  const double cpu = cpu_start && cpu_end ? *cpu_end - *cpu_start : -1;
  const double ops_per_cpu = cpu > 0 ? r.ops / cpu : -1;
  const auto us = [&](double q) { return r.latency_ns.Quantile(q) / 1e3; };
  const std::string label =
      config.protocol == "grpc" ? (config.unary ? "grpc-unary" : "grpc-batch") : config.protocol;
  if (json) {
    std::printf(
        "{\"protocol\":\"%s\",\"connections\":%d,\"pipeline\":%d,\"streams\":%d,"
        "\"get_ratio\":%.3f,\"keys\":%llu,\"key_size\":%d,\"value_size\":%d,\"ops\":%llu,"
        "\"seconds\":%.3f,\"ops_per_sec\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
        "\"p999_us\":%.1f,\"max_us\":%.1f,\"get_hit_ratio\":%.4f,\"server_cpu_seconds\":%.3f,"
        "\"ops_per_server_cpu_second\":%.1f}\n",
        label.c_str(), o.connections, o.pipeline, config.streams, o.get_ratio,
        static_cast<unsigned long long>(o.keys), o.key_size, o.value_size,
        static_cast<unsigned long long>(r.ops), r.seconds, throughput, us(0.5), us(0.99), us(0.999),
        r.latency_ns.max() / 1e3, r.gets ? static_cast<double>(r.get_hits) / r.gets : 0.0, cpu,
        ops_per_cpu);
    return 0;
  }
  std::printf("%s: %llu ops in %.2f s = %.0f ops/s\n", label.c_str(),
              static_cast<unsigned long long>(r.ops), r.seconds, throughput);
  std::printf("latency us: p50 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n", us(0.5), us(0.99),
              us(0.999), r.latency_ns.max() / 1e3);
  if (cpu > 0) {
    std::printf("server cpu: %.2f s  ->  %.0f ops per server CPU-second\n", cpu, ops_per_cpu);
  }
  std::printf("all %llu replies verified\n", static_cast<unsigned long long>(r.ops));
  return 0;
}

}  // namespace
}  // namespace crabcache::bench

int main(int argc, char** argv) { return crabcache::bench::Main(argc, argv); }
