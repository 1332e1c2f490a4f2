// The raw BatchExecute codec against protobuf and the typed path, on random requests: protobuf
// serializes them, the decoder must yield the commands protobuf parses, and the encoded responses
// must be byte for byte protobuf's serialization of the typed path's responses. Then the same on
// random corruptions of those bytes (acceptance must agree with protobuf's parser).
#include <cstdint>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/clock.h"
#include "core/executor.h"
#include "core/store.h"
#include "crabcache/v1/cache.pb.h"
#include "gtest/gtest.h"
#include "service/codec_check.h"

namespace crabcache::service {
namespace {

using crabcache::v1::BatchRequest;

class RandomRequests {
 public:
  explicit RandomRequests(uint32_t seed) : rng_(seed) {}

  BatchRequest Next() {
    BatchRequest request;
    if (Chance(4)) request.set_id(Chance(2) ? rng_() % 200 : Uint64());
    const int n = Chance(10) ? 0 : static_cast<int>(rng_() % 80);
    for (int i = 0; i < n; ++i) AddCommand(&request);
    return request;
  }

  uint32_t Below(uint32_t n) { return rng_() % n; }

 private:
  bool Chance(int one_in) { return rng_() % one_in == 0; }
  uint64_t Uint64() { return (uint64_t{rng_()} << 32 | rng_()) >> Below(64); }
  // Few keys, so commands meet each other's effects; some binary, some empty, some too long.
  std::string Key() {
    if (Chance(50)) return std::string(70, 'L');  // Over the tests' 64-byte key limit.
    if (Chance(30)) return "";
    return absl::StrCat(Chance(5) ? std::string("\0\xff", 2) : "k", rng_() % 12);
  }
  std::string Value() {
    const size_t size = Chance(20) ? 200 + Below(2000) : Below(70);
    return std::string(size, static_cast<char>('a' + Below(26)));
  }
  uint64_t Ttl() { return Chance(3) ? 0 : Chance(4) ? Uint64() : 1 + Below(100000); }

  void AddCommand(BatchRequest* request) {
    auto* command = request->add_commands();
    switch (rng_() % 9) {
      case 0:
        command->mutable_ping();
        break;
      case 1:
      case 2: {
        auto* set = command->mutable_set();
        set->set_key(Key());
        set->set_value(Value());
        set->set_ttl_ms(Ttl());
        break;
      }
      case 3:
      case 4:
        command->mutable_get()->set_key(Key());
        break;
      case 5:
        command->mutable_delete_()->set_key(Key());
        break;
      case 6:
        command->mutable_expire()->set_key(Key());
        command->mutable_expire()->set_ttl_ms(Ttl());
        break;
      case 7:
        if (Chance(8)) {
          command->mutable_stats();
        } else {
          command->mutable_ttl()->set_key(Key());
        }
        break;
      default:
        break;  // No operation.
    }
  }

  std::mt19937 rng_;
};

TEST(BatchCodecDifferentialTest, RandomRequestsDecodeAndAnswerLikeProtobuf) {
  core::FakeClock clock(1'000'000);
  const core::StoreOptions store_options{.num_shards = 4, .clock = &clock, .hash_seed = 11};
  core::Store typed_store(store_options);
  core::Store raw_store(store_options);
  const core::ExecutorOptions limits{.max_key_bytes = 64, .max_value_bytes = 1024};
  core::Executor typed(&typed_store, nullptr, limits);
  core::Executor raw(&raw_store, nullptr, limits);

  RandomRequests random(20240601);
  for (int i = 0; i < 2000; ++i) {
    const std::string bytes = random.Next().SerializeAsString();
    ASSERT_EQ(testing::CompareDecoders(bytes, random.Below(40)), "") << "request " << i;
    ASSERT_EQ(testing::CompareResponses(typed, raw, bytes), "") << "request " << i;
    clock.Advance(random.Below(2000));  // Some TTLs run out between batches.
  }
}

// Random damage to valid requests: flipped bytes, cuts, insertions. Whatever protobuf accepts
// the decoder accepts with the same commands, and whatever protobuf refuses it refuses.
TEST(BatchCodecDifferentialTest, CorruptedRequestsAreJudgedLikeProtobuf) {
  RandomRequests random(7);
  std::mt19937 rng(99);
  int accepted = 0;
  constexpr int kRounds = 20000;
  for (int i = 0; i < kRounds; ++i) {
    std::string bytes = random.Next().SerializeAsString();
    if (bytes.empty()) continue;
    for (int edits = 1 + static_cast<int>(rng() % 3); edits > 0; --edits) {
      const size_t at = rng() % bytes.size();
      switch (rng() % 4) {
        case 0:
          bytes[at] = static_cast<char>(rng());
          break;
        case 1:
          bytes[at] = static_cast<char>(bytes[at] ^ (1 << (rng() % 8)));
          break;
        case 2:
          bytes.resize(at);
          break;
        default:
          bytes.insert(at, 1, static_cast<char>(rng()));
          break;
      }
      if (bytes.empty()) break;
    }
    const std::string diff = testing::CompareDecoders(bytes, rng() % 40);
    ASSERT_EQ(diff, "") << "round " << i;
    BatchRequest proto;
    accepted += proto.ParseFromString(bytes);
  }
  // Both outcomes were exercised.
  EXPECT_GT(accepted, kRounds / 20);
  EXPECT_LT(accepted, kRounds - kRounds / 20);
}

}  // namespace
}  // namespace crabcache::service
