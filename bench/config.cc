#include "bench/config.h"

#include "absl/strings/str_cat.h"
#include "bench/flags.h"
#include "bench/keyspace.h"

namespace crabcache::bench {

const char kUsage[] = R"(usage: crabcache-bench [flags]
  --protocol binary|resp|grpc   wire protocol (default binary)
  --host H --port P             server (default 127.0.0.1; port 8000, 6379 or 50051)
  --connections N               TCP connections (default 50); gRPC: channels, at most --streams
  --pipeline N                  requests written together per connection and all answered
                                before the next batch (default 1); gRPC: commands per BatchRequest
  --streams N                   gRPC: BatchExecute streams, or unary calls in flight (default 8)
  --unary                       gRPC: unary Get/Set calls instead of BatchExecute
  --threads N                   load-generator threads (default 1)
  --get-ratio R                 share of GETs in [0, 1], the rest SETs (default 0.9)
  --keys N --key-size B --value-size B
                                key space (default 100000 keys of 16 bytes, 64-byte values)
  --duration S | --requests N   measure for S seconds (default 10) or N requests
  --warmup S                    unmeasured load first (default 1)
  --no-prefill                  do not SET every key first (GET misses are then allowed)
  --load-only                   SET every key, report, exit (memory benchmark)
  --server-pid PID              read the server's CPU time (before and after measuring) and RSS
                                from /proc/PID: adds ops per server CPU-second
  --seed N                      random seed (default 1)
  --json                        one JSON object on stdout instead of text
Every reply is verified; a wrong value or reply type ends the run with exit status 1.
)";

const char* ProtocolName(ProtocolKind kind) {
  switch (kind) {
    case ProtocolKind::kBinary:
      return "binary";
    case ProtocolKind::kResp:
      return "resp";
    case ProtocolKind::kGrpc:
      return "grpc";
  }
  return "?";
}

absl::StatusOr<BenchConfig> ParseConfig(int argc, char** argv) {
  auto flags = Flags::Parse(
      argc, argv,
      {"protocol", "host",       "port",      "connections", "pipeline",   "streams",  "unary",
       "threads",  "get-ratio",  "keys",      "key-size",    "value-size", "duration", "requests",
       "warmup",   "no-prefill", "load-only", "server-pid",  "seed",       "json",     "help"},
      {"unary", "no-prefill", "load-only", "json", "help"});
  if (!flags.ok()) return flags.status();
  BenchConfig config;
  config.help = flags->Bool("help");
  config.json = flags->Bool("json");
  LoadOptions& o = config.load;

  const std::string protocol = flags->String("protocol", "binary");
  int default_port = 8000;
  if (protocol == "binary") {
    o.protocol = ProtocolKind::kBinary;
  } else if (protocol == "resp") {
    o.protocol = ProtocolKind::kResp;
    default_port = 6379;
  } else if (protocol == "grpc") {
    o.protocol = ProtocolKind::kGrpc;
    default_port = 50051;
  } else {
    return absl::InvalidArgumentError("--protocol must be binary, resp or grpc, not " + protocol);
  }
  const bool grpc = o.protocol == ProtocolKind::kGrpc;
  if (!grpc && (flags->Has("streams") || flags->Has("unary"))) {
    return absl::InvalidArgumentError("--streams and --unary apply to --protocol grpc only");
  }
  if (flags->Has("duration") && flags->Has("requests")) {
    return absl::InvalidArgumentError("give --duration or --requests, not both");
  }

  absl::Status error;
  const auto get_int = [&](const char* name, long long fallback, long long min,
                           long long max) -> long long {
    auto v = flags->Int(name, fallback);
    if (!v.ok() || *v < min || *v > max) {
      if (error.ok()) {
        error = absl::InvalidArgumentError(
            absl::StrCat("--", name, " must be an integer in [", min, ", ", max, "]"));
      }
      return fallback;
    }
    return *v;
  };
  const auto get_double = [&](const char* name, double fallback, double min, double max) -> double {
    auto v = flags->Double(name, fallback);
    if (!v.ok() || !(*v >= min && *v <= max)) {
      if (error.ok()) {
        error = absl::InvalidArgumentError(
            absl::StrCat("--", name, " must be a number in [", min, ", ", max, "]"));
      }
      return fallback;
    }
    return *v;
  };
  o.host = flags->String("host", "127.0.0.1");
  o.port = static_cast<int>(get_int("port", default_port, 1, 65535));
  o.connections = static_cast<int>(get_int("connections", 50, 1, 10000));
  o.pipeline = static_cast<int>(get_int("pipeline", 1, 1, 100000));
  o.streams = static_cast<int>(get_int("streams", 8, 1, 10000));
  o.unary = flags->Bool("unary");
  o.threads = static_cast<int>(get_int("threads", 1, 1, 64));
  o.get_ratio = get_double("get-ratio", 0.9, 0, 1);
  o.keys = static_cast<uint64_t>(get_int("keys", 100'000, 1, 1'000'000'000'000));
  o.key_size = static_cast<size_t>(get_int("key-size", 16, 1, KeySpace::kMaxKeySize));
  o.value_size = static_cast<size_t>(get_int("value-size", 64, 0, KeySpace::kMaxValueSize));
  o.duration_s = get_double("duration", 10, 0.01, 86400);
  o.requests = static_cast<uint64_t>(get_int("requests", 0, 0, 1'000'000'000'000));
  o.warmup_s = get_double("warmup", 1, 0, 3600);
  o.prefill = !flags->Bool("no-prefill");
  o.load_only = flags->Bool("load-only");
  o.seed = static_cast<uint64_t>(get_int("seed", 1, 0, INT64_MAX));
  config.server_pid = static_cast<int>(get_int("server-pid", 0, 0, 1 << 30));
  if (!error.ok()) return error;
  if (o.unary && flags->Has("pipeline")) {
    return absl::InvalidArgumentError("--pipeline does not apply to --unary (one call each)");
  }
  if (o.load_only && !o.prefill) {
    return absl::InvalidArgumentError("--load-only and --no-prefill contradict each other");
  }
  if (auto keys = KeySpace::Create(o.keys, o.key_size, o.value_size); !keys.ok()) {
    return keys.status();
  }
  return config;
}

}  // namespace crabcache::bench
