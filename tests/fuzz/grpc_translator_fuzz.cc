// libFuzzer target for the gRPC request translator (service/translate.h): a serialized
// crabcache.v1.BatchRequest in, a BatchResponse out, against a fresh store, checked against a
// model of the cache.
//
// Each input that parses as a BatchRequest runs twice through service::ExecuteBatch: at t0, then
// again at t0 + (id % 100000) ms, so TTLs set by the first run may have expired for the second.
// Invariants checked on every run (a violation aborts, which libFuzzer reports):
//   - one Result per Command, in order, and the response echoes the request id;
//   - each Result is what a model (a map of key -> value and expiry, with the store's limits and
//     no memory limit, so nothing is evicted) predicts: PONG for ping; OK or a limit ERROR for
//     set; HIT with the exact bytes or MISS for get; OK or NOT_FOUND for delete and expire; the
//     exact remaining milliseconds for ttl; OK with a JSON object for stats; ERROR for a command
//     without an operation; every ERROR text starts with its canonical code.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <optional>
#include <string>

#include "core/clock.h"
#include "core/executor.h"
#include "core/store.h"
#include "crabcache/v1/cache.pb.h"
#include "service/translate.h"

namespace crabcache::service {
namespace {

using crabcache::v1::BatchRequest;
using crabcache::v1::BatchResponse;
using crabcache::v1::Command;
using crabcache::v1::Result;

constexpr size_t kMaxKey = 64;
constexpr size_t kMaxValue = 1024;

void Check(bool ok, const char* what, int index = -1) {
  if (!ok) {
    std::fprintf(stderr, "grpc_translator_fuzz: invariant violated: %s (command %d)\n", what,
                 index);
    std::abort();
  }
}

struct ModelEntry {
  std::string value;
  uint64_t expire_at = 0;  // 0: never.
};

// The store keeps expiries as 48-bit millisecond offsets from its epoch (its clock when it was
// built; core/item.h): an expiry that far out (8,900 years) or beyond means "never expires",
// reported by TTL as INT64_MAX. The seed ttl_beyond_48bit_horizon pins this.
constexpr uint64_t kEpoch = 1'000'000;
constexpr uint64_t kHorizonMs = (uint64_t{1} << 48) - 1;

uint64_t ExpiryAfter(uint64_t now, uint64_t ttl_ms) {
  const uint64_t at = ttl_ms > std::numeric_limits<uint64_t>::max() - now
                          ? std::numeric_limits<uint64_t>::max()
                          : now + ttl_ms;
  return at - kEpoch >= kHorizonMs ? std::numeric_limits<uint64_t>::max() : at;
}

class Model {
 public:
  // The live entry for `key` at `now`, dropping it if it expired.
  ModelEntry* Find(const std::string& key, uint64_t now) {
    auto it = entries_.find(key);
    if (it == entries_.end()) return nullptr;
    if (it->second.expire_at != 0 && it->second.expire_at <= now) {
      entries_.erase(it);
      return nullptr;
    }
    return &it->second;
  }

  void CheckResult(const Command& c, const Result& r, uint64_t now, int i) {
    if (r.code() == crabcache::v1::ERROR) {
      Check(r.error().find(':') != std::string::npos, "errors start with a canonical code", i);
    }
    switch (c.op_case()) {
      case Command::kPing:
        Check(r.code() == crabcache::v1::PONG, "ping -> PONG", i);
        return;
      case Command::kSet: {
        const auto& s = c.set();
        if (s.key().size() > kMaxKey || s.value().size() > kMaxValue) {
          Check(r.code() == crabcache::v1::ERROR && r.error().rfind("INVALID_ARGUMENT", 0) == 0,
                "set over a limit -> INVALID_ARGUMENT", i);
          return;
        }
        Check(r.code() == crabcache::v1::OK, "set -> OK (no memory limit)", i);
        entries_[s.key()] =
            ModelEntry{s.value(), s.ttl_ms() == 0 ? 0 : ExpiryAfter(now, s.ttl_ms())};
        return;
      }
      case Command::kGet: {
        if (OverKeyLimit(c.get().key(), r, i)) return;
        const ModelEntry* e = Find(c.get().key(), now);
        if (e == nullptr) {
          Check(r.code() == crabcache::v1::MISS && r.value().empty(), "get -> MISS", i);
        } else {
          Check(r.code() == crabcache::v1::HIT && r.value() == e->value, "get -> HIT value", i);
        }
        return;
      }
      case Command::kDelete: {
        if (OverKeyLimit(c.delete_().key(), r, i)) return;
        const bool found = Find(c.delete_().key(), now) != nullptr;
        Check(r.code() == (found ? crabcache::v1::OK : crabcache::v1::NOT_FOUND), "delete", i);
        entries_.erase(c.delete_().key());
        return;
      }
      case Command::kExpire: {
        if (OverKeyLimit(c.expire().key(), r, i)) return;
        ModelEntry* e = Find(c.expire().key(), now);
        Check(r.code() == (e != nullptr ? crabcache::v1::OK : crabcache::v1::NOT_FOUND), "expire",
              i);
        if (e != nullptr) {
          e->expire_at = ExpiryAfter(now, c.expire().ttl_ms());
          Find(c.expire().key(), now);  // EXPIRE 0: gone at once.
        }
        return;
      }
      case Command::kTtl: {
        if (OverKeyLimit(c.ttl().key(), r, i)) return;
        const ModelEntry* e = Find(c.ttl().key(), now);
        if (e == nullptr) {
          Check(r.code() == crabcache::v1::NOT_FOUND && r.ttl_ms() == -2, "ttl of a missing key",
                i);
        } else if (e->expire_at == 0) {
          Check(r.code() == crabcache::v1::OK && r.ttl_ms() == -1, "ttl without expiry", i);
        } else {
          const uint64_t left = e->expire_at - now;
          const int64_t want = left > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
                                   ? std::numeric_limits<int64_t>::max()
                                   : static_cast<int64_t>(left);
          Check(r.code() == crabcache::v1::OK && r.ttl_ms() == want, "ttl remaining ms", i);
        }
        return;
      }
      case Command::kStats:
        Check(r.code() == crabcache::v1::OK && r.value().size() >= 2 && r.value().front() == '{' &&
                  r.value().back() == '}',
              "stats -> OK with a JSON object", i);
        return;
      case Command::OP_NOT_SET:
        Check(r.code() == crabcache::v1::ERROR && r.error().rfind("INVALID_ARGUMENT", 0) == 0,
              "no operation -> INVALID_ARGUMENT", i);
        return;
    }
    Check(false, "unknown operation", i);
  }

 private:
  static bool OverKeyLimit(const std::string& key, const Result& r, int i) {
    if (key.size() <= kMaxKey) return false;
    Check(r.code() == crabcache::v1::ERROR && r.error().rfind("INVALID_ARGUMENT", 0) == 0,
          "key over the limit -> INVALID_ARGUMENT", i);
    return true;
  }

  std::map<std::string, ModelEntry> entries_;
};

void RunAndCheck(const core::Executor& executor, const BatchRequest& request, Model& model,
                 uint64_t now) {
  BatchResponse response;
  ExecuteBatch(executor, request, &response);
  Check(response.id() == request.id(), "the response echoes the id");
  Check(response.results_size() == request.commands_size(), "one result per command");
  for (int i = 0; i < request.commands_size(); ++i) {
    model.CheckResult(request.commands(i), response.results(i), now, i);
  }
}

}  // namespace
}  // namespace crabcache::service

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace cc = crabcache;
  cc::v1::BatchRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return -1;  // Not kept in the corpus.
  cc::core::FakeClock clock(cc::service::kEpoch);
  cc::core::Store store(cc::core::StoreOptions{.num_shards = 2, .clock = &clock, .hash_seed = 1});
  cc::core::Executor executor(&store, nullptr,
                              cc::core::ExecutorOptions{.max_key_bytes = cc::service::kMaxKey,
                                                        .max_value_bytes = cc::service::kMaxValue});
  cc::service::Model model;
  cc::service::RunAndCheck(executor, request, model, clock.NowMs());
  clock.Advance(request.id() % 100000);
  cc::service::RunAndCheck(executor, request, model, clock.NowMs());
  return 0;
}
