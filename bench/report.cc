#include "bench/report.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace crabcache::bench {
namespace {

double PerSecond(double n, double seconds) { return seconds > 0 ? n / seconds : 0; }

}  // namespace

std::string WorkloadLabel(const LoadOptions& o) {
  if (o.protocol != ProtocolKind::kGrpc) return ProtocolName(o.protocol);
  return o.unary ? "grpc-unary" : "grpc-batch";
}

std::string FormatJson(const BenchConfig& config, const LoadResult& r,
                       const ServerFigures& server) {
  const LoadOptions& o = config.load;
  const auto us = [&](double q) { return static_cast<double>(r.latency_ns.Quantile(q)) / 1e3; };
  const double ops = static_cast<double>(r.ops);
  std::string cpu = "null", user = "null", per_cpu = "null", rss = "null", rss_per_key = "null";
  if (server.user_seconds) user = absl::StrFormat("%.3f", *server.user_seconds);
  if (server.cpu_seconds) {
    cpu = absl::StrFormat("%.3f", *server.cpu_seconds);
    if (*server.cpu_seconds > 0) per_cpu = absl::StrFormat("%.1f", ops / *server.cpu_seconds);
  }
  if (server.rss_bytes) {
    rss = absl::StrCat(*server.rss_bytes);
    rss_per_key = absl::StrFormat(
        "%.2f", static_cast<double>(*server.rss_bytes) / static_cast<double>(o.keys));
  }
  return absl::StrFormat(
      "{\"workload\":\"%s\",\"protocol\":\"%s\",\"connections\":%d,\"pipeline\":%d,"
      "\"streams\":%d,\"threads\":%d,\"get_ratio\":%.3f,\"keys\":%d,\"key_size\":%d,"
      "\"value_size\":%d,\"prefill_seconds\":%.3f,\"ops\":%d,\"seconds\":%.3f,"
      "\"ops_per_sec\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,"
      "\"gets\":%d,\"get_hits\":%d,\"verified\":%d,\"server_cpu_seconds\":%s,"
      "\"server_user_seconds\":%s,"
      "\"ops_per_server_cpu_second\":%s,\"server_rss_bytes\":%s,"
      "\"server_rss_bytes_per_key\":%s}\n",
      WorkloadLabel(o), ProtocolName(o.protocol), o.connections, o.pipeline, o.streams, o.threads,
      o.get_ratio, o.keys, o.key_size, o.value_size, r.prefill_seconds, r.ops, r.seconds,
      PerSecond(ops, r.seconds), us(0.5), us(0.99), us(0.999),
      static_cast<double>(r.latency_ns.max()) / 1e3, r.gets, r.get_hits, r.verified, cpu, user,
      per_cpu, rss, rss_per_key);
}

std::string FormatText(const BenchConfig& config, const LoadResult& r,
                       const ServerFigures& server) {
  const LoadOptions& o = config.load;
  std::string out;
  if (r.prefill_seconds > 0) {
    absl::StrAppendFormat(&out, "prefill: %d keys in %.2f s\n", o.keys, r.prefill_seconds);
  }
  if (!o.load_only) {
    const auto us = [&](double q) { return static_cast<double>(r.latency_ns.Quantile(q)) / 1e3; };
    absl::StrAppendFormat(&out, "%s: %d ops in %.2f s = %.0f ops/s\n", WorkloadLabel(o), r.ops,
                          r.seconds, PerSecond(static_cast<double>(r.ops), r.seconds));
    absl::StrAppendFormat(&out, "latency us: p50 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n", us(0.5),
                          us(0.99), us(0.999), static_cast<double>(r.latency_ns.max()) / 1e3);
  }
  if (server.cpu_seconds && *server.cpu_seconds > 0 && !o.load_only) {
    absl::StrAppendFormat(&out, "server cpu: %.2f s (user %.2f s) = %.0f ops per server CPU-s\n",
                          *server.cpu_seconds, server.user_seconds.value_or(0),
                          static_cast<double>(r.ops) / *server.cpu_seconds);
  }
  if (server.rss_bytes) {
    absl::StrAppendFormat(&out, "server rss: %d bytes = %.1f bytes per key\n", *server.rss_bytes,
                          static_cast<double>(*server.rss_bytes) / static_cast<double>(o.keys));
  }
  absl::StrAppendFormat(&out, "verified: all %d replies\n", r.verified);
  return out;
}

}  // namespace crabcache::bench
