// libFuzzer target for the gRPC request path: service/translate.h (typed) and the raw
// BatchExecute codec (service/batch_decoder.h, service/response_encoder.h) that the server runs.
//
// Every input, well-formed or not, first goes through testing::CompareDecoders
// (service/codec_check.h): the raw decoder never crashes, accepts exactly what protobuf's parser
// accepts, decodes it to the commands protobuf's message translates to (and protobuf's
// re-serialization to the same again), and enforces a command limit (input size % 7) exactly.
//
// Each input that parses as a BatchRequest then runs twice, at t0 and again at
// t0 + (id % 100000) ms, so TTLs set by the first run may have expired for the second; each run
// goes through the typed path (service::ExecuteBatch) on one store and the raw path on a twin
// store (testing::CompareResponses: the raw response bytes are protobuf's serialization of the
// typed response). Invariants checked on every run (a violation aborts, which libFuzzer reports):
//   - the raw and typed responses agree byte for byte (STATS JSON aside, see codec_check.h);
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
#include <string_view>

#include "core/clock.h"
#include "core/executor.h"
#include "core/store.h"
#include "crabcache/v1/cache.pb.h"
#include "service/codec_check.h"
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

void CheckEmpty(const std::string& diff) {
  if (!diff.empty()) {
    std::fprintf(stderr, "grpc_translator_fuzz: %s\n", diff.c_str());
    std::abort();
  }
}

// One run of the request through both paths (typed on `typed`, raw on `raw`, twin stores),
// checked against each other and the typed result against the model.
void RunAndCheck(const core::Executor& typed, const core::Executor& raw, std::string_view bytes,
                 const BatchRequest& request, Model& model, uint64_t now) {
  BatchResponse response;
  CheckEmpty(testing::CompareResponses(typed, raw, bytes, &response));
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
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  cc::v1::BatchRequest request;
  cc::service::CheckEmpty(cc::testing::CompareDecoders(bytes, size % 7));
  // Malformed inputs stay in the corpus: they exercise the decoder's refusals.
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;

  cc::core::FakeClock clock(cc::service::kEpoch);
  const cc::core::StoreOptions store_options{.num_shards = 2, .clock = &clock, .hash_seed = 1};
  const cc::core::ExecutorOptions limits{.max_key_bytes = cc::service::kMaxKey,
                                         .max_value_bytes = cc::service::kMaxValue};
  cc::core::Store typed_store(store_options);
  cc::core::Store raw_store(store_options);
  cc::core::Executor typed(&typed_store, nullptr, limits);
  cc::core::Executor raw(&raw_store, nullptr, limits);
  cc::service::Model model;
  cc::service::RunAndCheck(typed, raw, bytes, request, model, clock.NowMs());
  clock.Advance(request.id() % 100000);
  cc::service::RunAndCheck(typed, raw, bytes, request, model, clock.NowMs());
  return 0;
}
