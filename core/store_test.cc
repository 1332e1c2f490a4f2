#include "core/store.h"

#include <cstdint>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "core/alloc.h"
#include "core/command.h"
#include "gtest/gtest.h"

namespace crabcache::core {
namespace {

// Every semantic test runs on each layout: the log (s3fifo, unlimited and under a limit;
// noeviction) and the heap (lru).
struct Layout {
  const char* name;
  EvictionPolicy policy;
  uint64_t max_memory_bytes;
};

class StoreTest : public ::testing::TestWithParam<Layout> {
 protected:
  StoreTest()
      : store_(StoreOptions{.num_shards = 4,
                            .max_memory_bytes = GetParam().max_memory_bytes,
                            .eviction = GetParam().policy,
                            .clock = &clock_,
                            .hash_seed = 42}) {}

  absl::Status Set(std::string_view key, std::string_view value, Millis expire_at = kNoExpiry) {
    return store_.Set(key, store_.Hash(key), value, expire_at, clock_.NowMs());
  }
  std::optional<std::string> Get(std::string_view key) {
    std::optional<std::string> out;
    store_.Get(key, store_.Hash(key), clock_.NowMs(),
               [&](std::string_view v) { out = std::string(v); });
    return out;
  }
  bool Delete(std::string_view key) { return store_.Delete(key, store_.Hash(key), clock_.NowMs()); }
  bool Expire(std::string_view key, uint64_t ttl_ms) {
    return store_.Expire(key, store_.Hash(key), ExpiryAfter(clock_.NowMs(), ttl_ms),
                         clock_.NowMs());
  }
  int64_t Ttl(std::string_view key) { return store_.TtlMs(key, store_.Hash(key), clock_.NowMs()); }

  FakeClock clock_;
  Store store_;
};

TEST_P(StoreTest, SetThenGet) {
  ASSERT_TRUE(Set("k", "v").ok());
  EXPECT_EQ(Get("k"), "v");
  EXPECT_EQ(Get("other"), std::nullopt);
}

TEST_P(StoreTest, SetReplacesValueAndKeepsOneKey) {
  ASSERT_TRUE(Set("k", "one").ok());
  ASSERT_TRUE(Set("k", "a much longer second value").ok());
  EXPECT_EQ(Get("k"), "a much longer second value");
  EXPECT_EQ(store_.Stats().keys, 1u);
}

TEST_P(StoreTest, BinaryKeysWithNulBytesAreDistinct) {
  const std::string a("a\0b", 3), b("a\0c", 3), prefix("a", 1);
  ASSERT_TRUE(Set(a, std::string("\0\0\xff", 3)).ok());
  ASSERT_TRUE(Set(b, "second").ok());
  EXPECT_EQ(Get(a), std::string("\0\0\xff", 3));
  EXPECT_EQ(Get(b), "second");
  EXPECT_EQ(Get(prefix), std::nullopt);
}

TEST_P(StoreTest, EmptyKeyAndEmptyValue) {
  ASSERT_TRUE(Set("", "").ok());
  EXPECT_EQ(Get(""), "");
  ASSERT_TRUE(Set("e", "").ok());
  EXPECT_EQ(Get("e"), "");
}

TEST_P(StoreTest, DeleteReportsWhetherKeyExisted) {
  ASSERT_TRUE(Set("k", "v").ok());
  EXPECT_TRUE(Delete("k"));
  EXPECT_FALSE(Delete("k"));
  EXPECT_EQ(Get("k"), std::nullopt);
  EXPECT_EQ(store_.Stats().keys, 0u);
}

TEST_P(StoreTest, TtlExpiresExactlyAtDeadline) {
  ASSERT_TRUE(Set("k", "v", ExpiryAfter(clock_.NowMs(), 1000)).ok());
  EXPECT_EQ(Ttl("k"), 1000);
  clock_.Advance(999);
  EXPECT_EQ(Get("k"), "v");
  EXPECT_EQ(Ttl("k"), 1);
  clock_.Advance(1);
  EXPECT_EQ(Get("k"), std::nullopt);
  EXPECT_EQ(Ttl("k"), kTtlMissing);
  EXPECT_EQ(store_.Stats().expirations, 1u);
  EXPECT_EQ(store_.Stats().keys, 0u);
}

TEST_P(StoreTest, ZeroTtlExpiresAtOnce) {
  ASSERT_TRUE(Set("k", "v", ExpiryAfter(clock_.NowMs(), 0)).ok());
  EXPECT_EQ(Get("k"), std::nullopt);
}

TEST_P(StoreTest, ExpiryInThePastIsInvisible) {
  ASSERT_TRUE(Set("k", "v", clock_.NowMs() - 10).ok());
  EXPECT_EQ(Get("k"), std::nullopt);
  EXPECT_FALSE(Delete("k"));
}

TEST_P(StoreTest, HugeTtlSaturatesInsteadOfOverflowing) {
  const uint64_t huge = std::numeric_limits<uint64_t>::max();
  EXPECT_EQ(ExpiryAfter(clock_.NowMs(), huge), std::numeric_limits<Millis>::max());
  ASSERT_TRUE(Set("k", "v", ExpiryAfter(clock_.NowMs(), huge)).ok());
  clock_.Advance(uint64_t{1} << 40);
  EXPECT_EQ(Get("k"), "v");
  EXPECT_GT(Ttl("k"), int64_t{1} << 50);
}

// Expiries are kept as 48-bit millisecond offsets from the store's epoch (its clock when it was
// built; core/item.h), about 8,900 years: one that far out or beyond means "never", and every
// layout must say so alike. lru used to keep the exact instant: TTL reported 2^50 ms where the
// log layout reported INT64_MAX, and the key expired on lru only.
TEST_P(StoreTest, ExpiriesBeyondTheHorizonMeanNeverOnEveryLayout) {
  const uint64_t horizon = (uint64_t{1} << 48) - 1;  // From the epoch, which is now.
  ASSERT_TRUE(Set("inside", "v", ExpiryAfter(clock_.NowMs(), horizon - 1)).ok());
  ASSERT_TRUE(Set("at", "v", ExpiryAfter(clock_.NowMs(), horizon)).ok());
  ASSERT_TRUE(Set("beyond", "v", ExpiryAfter(clock_.NowMs(), uint64_t{1} << 50)).ok());
  ASSERT_TRUE(Set("expired-later", "v").ok());
  ASSERT_TRUE(Expire("expired-later", uint64_t{1} << 50));
  constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(Ttl("inside"), static_cast<int64_t>(horizon - 1));
  EXPECT_EQ(Ttl("at"), kNever);
  EXPECT_EQ(Ttl("beyond"), kNever);
  EXPECT_EQ(Ttl("expired-later"), kNever);
  clock_.Advance(uint64_t{1} << 50);
  EXPECT_EQ(Get("inside"), std::nullopt);
  EXPECT_EQ(Get("beyond"), "v");
  EXPECT_EQ(Get("expired-later"), "v");
  EXPECT_EQ(Ttl("beyond"), kNever);
}

TEST_P(StoreTest, ExpiryAfterNeverReturnsTheNoExpirySentinel) {
  EXPECT_NE(ExpiryAfter(0, 0), kNoExpiry);
}

TEST_P(StoreTest, TtlReportsNoExpiryAndMissing) {
  ASSERT_TRUE(Set("k", "v").ok());
  EXPECT_EQ(Ttl("k"), kTtlNoExpiry);
  EXPECT_EQ(Ttl("absent"), kTtlMissing);
}

TEST_P(StoreTest, ExpireSetsAndReplacesDeadline) {
  ASSERT_TRUE(Set("k", "v").ok());
  EXPECT_TRUE(Expire("k", 500));
  EXPECT_EQ(Ttl("k"), 500);
  EXPECT_TRUE(Expire("k", 2000));
  clock_.Advance(1000);
  EXPECT_EQ(Get("k"), "v");
  EXPECT_FALSE(Expire("absent", 100));
}

TEST_P(StoreTest, ExpireZeroRemovesAtOnce) {
  ASSERT_TRUE(Set("k", "v").ok());
  EXPECT_TRUE(Expire("k", 0));
  EXPECT_EQ(Get("k"), std::nullopt);
  EXPECT_EQ(store_.Stats().keys, 0u);
}

TEST_P(StoreTest, ExpireOnExpiredKeyIsNotFound) {
  ASSERT_TRUE(Set("k", "v", ExpiryAfter(clock_.NowMs(), 10)).ok());
  clock_.Advance(10);
  EXPECT_FALSE(Expire("k", 1000));
}

TEST_P(StoreTest, SetOverwritesTtl) {
  ASSERT_TRUE(Set("k", "v", ExpiryAfter(clock_.NowMs(), 10)).ok());
  ASSERT_TRUE(Set("k", "w").ok());
  clock_.Advance(100);
  EXPECT_EQ(Get("k"), "w");
}

TEST_P(StoreTest, StatsCountHitsMissesAndMemory) {
  const StoreStats empty = store_.Stats();
  EXPECT_EQ(empty.item_bytes + empty.heap_bytes, 0u);
  ASSERT_TRUE(Set("k", std::string(1000, 'x')).ok());
  Get("k");
  Get("k");
  Get("nope");
  const StoreStats s = store_.Stats();
  EXPECT_EQ(s.hits, 2u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.keys, 1u);
  EXPECT_GE(s.memory_used_bytes, empty.memory_used_bytes + 1000);
  EXPECT_GE(s.item_bytes + s.heap_bytes, 1000u + 1);
  EXPECT_EQ(s.shards, 4u);
  EXPECT_EQ(s.per_shard.size(), 4u);
  ASSERT_TRUE(Delete("k"));
  const StoreStats after = store_.Stats();
  EXPECT_EQ(after.item_bytes + after.heap_bytes, 0u);
  // At most the segment the entry lived in stays allocated, kept for the shard's next writes: a
  // second set and delete costs nothing more.
  EXPECT_LE(after.memory_used_bytes, empty.memory_used_bytes + 16 * 1024 + 256);
  ASSERT_TRUE(Set("k", std::string(1000, 'y')).ok());
  ASSERT_TRUE(Delete("k"));
  EXPECT_EQ(store_.Stats().memory_used_bytes, after.memory_used_bytes);
}

TEST_P(StoreTest, StatsAddUpPerShardAndInParts) {
  for (int i = 0; i < 2000; ++i) ASSERT_TRUE(Set("k" + std::to_string(i), "value").ok());
  const StoreStats s = store_.Stats();
  uint64_t keys = 0, used = 0;
  for (const ShardStats& shard : s.per_shard) {
    keys += shard.keys;
    used += shard.memory_used_bytes;
    EXPECT_EQ(shard.memory_used_bytes,
              shard.segment_bytes + shard.heap_bytes + shard.index_bytes + shard.metadata_bytes);
    EXPECT_EQ(shard.memory_limit_bytes, GetParam().max_memory_bytes / 4);
  }
  EXPECT_EQ(keys, s.keys);
  EXPECT_EQ(used, s.memory_used_bytes);
  EXPECT_EQ(s.memory_used_bytes, s.segment_bytes + s.heap_bytes + s.index_bytes + s.metadata_bytes);
}

TEST_P(StoreTest, StatsJsonHasEveryField) {
  const std::string json = store_.Stats().ToJson();
  const std::string policy = "\"eviction\":\"" + std::string(EvictionPolicyName(GetParam().policy));
  for (const std::string& field : std::vector<std::string>{
           "{\"keys\":", "\"memory_used_bytes\":", "\"memory_limit_bytes\":", "\"segment_bytes\":",
           "\"heap_bytes\":", "\"index_bytes\":", "\"metadata_bytes\":", "\"item_bytes\":",
           "\"hits\":", "\"misses\":", "\"expirations\":", "\"evictions\":", "\"compactions\":",
           "\"shards\":4", policy, "\"per_shard\":[{\"keys\":0,"}) {
    EXPECT_NE(json.find(field), std::string::npos) << field << " in " << json;
  }
  EXPECT_EQ(json.back(), '}');
}

TEST_P(StoreTest, LargeValuesRoundTrip) {
  // Values too large for a segment live in their own blocks; replacing and deleting them must
  // keep the accounting exact (back to no heap bytes at the end).
  const std::string big(3 << 20, 'b'), big2(3 << 20, 'c'), mid(20000, 'm');
  ASSERT_TRUE(Set("big", big).ok());
  EXPECT_EQ(Get("big"), big);
  EXPECT_GE(store_.Stats().item_bytes + store_.Stats().heap_bytes, big.size());
  ASSERT_TRUE(Set("big", big2, ExpiryAfter(clock_.NowMs(), 500)).ok());
  EXPECT_EQ(Get("big"), big2);
  EXPECT_EQ(Ttl("big"), 500);
  ASSERT_TRUE(Set("big", mid).ok());
  EXPECT_EQ(Get("big"), mid);
  EXPECT_EQ(Ttl("big"), kTtlNoExpiry);
  EXPECT_TRUE(Expire("big", 100));
  EXPECT_EQ(Ttl("big"), 100);
  ASSERT_TRUE(Set("small", "s").ok());
  ASSERT_TRUE(Set("big", big).ok());
  EXPECT_TRUE(Delete("big"));
  EXPECT_EQ(Get("big"), std::nullopt);
  EXPECT_EQ(Get("small"), "s");
  const StoreStats s = store_.Stats();
  EXPECT_EQ(s.keys, 1u);
  if (GetParam().policy != EvictionPolicy::kLru) {
    EXPECT_EQ(s.heap_bytes, 0u);
  }
  EXPECT_LT(s.heap_bytes, 1000u);
}

TEST_P(StoreTest, HalfGigabyteValue) {
  // The largest value the store promises (512 MiB): out of line, copied before the lock.
  if (kSanitizedAllocator) GTEST_SKIP() << "too large for the sanitizer builds' shadow memory";
  const std::string huge(512u << 20, 'h');
  const absl::Status s = Set("huge", huge);
  if (GetParam().max_memory_bytes != 0) {
    // 512 MiB does not fit a 16 MiB shard: refused before anything is allocated.
    EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
    return;
  }
  ASSERT_TRUE(s.ok()) << s;
  size_t size = 0;
  bool same = false;
  store_.Get("huge", store_.Hash("huge"), clock_.NowMs(), [&](std::string_view v) {
    size = v.size();
    same = v == huge;
  });
  EXPECT_EQ(size, huge.size());
  EXPECT_TRUE(same);
  EXPECT_GE(store_.Stats().heap_bytes, huge.size());
  EXPECT_TRUE(Delete("huge"));
  EXPECT_LT(store_.Stats().heap_bytes, 1u << 20);
}

TEST_P(StoreTest, ExpireGrowsAnEntryWithoutLosingIt) {
  // The first expiry of a key adds 6 bytes to its entry, which then moves; its neighbours stay.
  for (int i = 0; i < 500; ++i) ASSERT_TRUE(Set("e" + std::to_string(i), std::to_string(i)).ok());
  for (int i = 0; i < 500; i += 2) ASSERT_TRUE(Expire("e" + std::to_string(i), 1000 + i));
  for (int i = 0; i < 500; ++i) {
    ASSERT_EQ(Get("e" + std::to_string(i)), std::to_string(i));
    ASSERT_EQ(Ttl("e" + std::to_string(i)), i % 2 == 0 ? 1000 + i : kTtlNoExpiry);
  }
  clock_.Advance(1250);
  int alive = 0;
  for (int i = 0; i < 500; ++i) alive += Get("e" + std::to_string(i)).has_value();
  EXPECT_EQ(alive, 250 + 124);  // Odd keys, and even keys i > 250 (1000 + i > 1250).
}

TEST_P(StoreTest, OverwritesDoNotGrowMemoryWithoutBound) {
  // Same-size writes go in place; changing sizes leave dead bytes that are reclaimed (compaction
  // without a limit or under noeviction, the queues' turnover under s3fifo, free() under lru).
  std::string value;
  for (int round = 0; round < 40; ++round) {
    for (int i = 0; i < 1000; ++i) {
      value.assign(static_cast<size_t>((round * 7 + i) % 90), 'x');
      ASSERT_TRUE(Set("o" + std::to_string(i), value).ok());
    }
  }
  const StoreStats s = store_.Stats();
  EXPECT_EQ(s.keys, 1000u);
  EXPECT_LT(s.memory_used_bytes, 400u * 1000) << s.ToJson();
  // Segments stay at least half live, give or take a partly written head per queue and shard.
  EXPECT_GE(s.item_bytes * 2 + 8 * 16 * 1024, s.segment_bytes);
}

TEST_P(StoreTest, ManyKeysSurviveIndexGrowth) {
  for (int i = 0; i < 20000; ++i)
    ASSERT_TRUE(Set("key" + std::to_string(i), std::to_string(i)).ok());
  for (int i = 0; i < 20000; ++i) ASSERT_EQ(Get("key" + std::to_string(i)), std::to_string(i));
  EXPECT_EQ(store_.Stats().keys, 20000u);
}

TEST_P(StoreTest, SweepReclaimsExpiredEntriesIncrementally) {
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(Set("t" + std::to_string(i), "v", ExpiryAfter(clock_.NowMs(), 100)).ok());
    ASSERT_TRUE(Set("p" + std::to_string(i), "v").ok());
  }
  clock_.Advance(100);
  size_t total = 0;
  for (int tick = 0; tick < 10000 && total < 1000; ++tick) {
    const size_t n = store_.SweepExpired(clock_.NowMs(), 8);
    EXPECT_LE(n, 8u * store_.num_shards());
    total += n;
  }
  EXPECT_EQ(total, 1000u);
  EXPECT_EQ(store_.Stats().keys, 1000u);
  EXPECT_EQ(store_.Stats().expirations, 1000u);
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, StoreTest,
    ::testing::Values(Layout{"s3fifo_unlimited", EvictionPolicy::kS3Fifo, 0},
                      Layout{"s3fifo_limited", EvictionPolicy::kS3Fifo, 64 << 20},
                      Layout{"lru", EvictionPolicy::kLru, 64 << 20},
                      Layout{"lru_unlimited", EvictionPolicy::kLru, 0},
                      Layout{"noeviction", EvictionPolicy::kNoEviction, 64 << 20}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(StoreShardsTest, ShardCountRoundsUpToPowerOfTwo) {
  EXPECT_EQ(Store(StoreOptions{.num_shards = 1}).num_shards(), 1u);
  EXPECT_EQ(Store(StoreOptions{.num_shards = 3}).num_shards(), 4u);
  EXPECT_EQ(Store(StoreOptions{.num_shards = 64}).num_shards(), 64u);
  EXPECT_GE(Store(StoreOptions{}).num_shards(), 4u);
}

TEST(StoreShardsTest, SingleShardWorks) {
  FakeClock clock;
  Store store(StoreOptions{.num_shards = 1, .clock = &clock});
  ASSERT_TRUE(store.Set("a", store.Hash("a"), "1", kNoExpiry, clock.NowMs()).ok());
  EXPECT_TRUE(store.Get("a", store.Hash("a"), clock.NowMs(), [](std::string_view) {}));
}

TEST(StoreHashTest, SeedChangesHash) {
  Store a(StoreOptions{.num_shards = 1, .hash_seed = 1});
  Store b(StoreOptions{.num_shards = 1, .hash_seed = 2});
  EXPECT_EQ(a.Hash("key"), a.Hash("key"));
  EXPECT_NE(a.Hash("key"), b.Hash("key"));
}

TEST(EvictionPolicyTest, ParsesNames) {
  EvictionPolicy p;
  ASSERT_TRUE(ParseEvictionPolicy("LRU", &p));
  EXPECT_EQ(p, EvictionPolicy::kLru);
  ASSERT_TRUE(ParseEvictionPolicy("noeviction", &p));
  EXPECT_EQ(p, EvictionPolicy::kNoEviction);
  ASSERT_TRUE(ParseEvictionPolicy("s3fifo", &p));
  EXPECT_EQ(p, EvictionPolicy::kS3Fifo);
  EXPECT_FALSE(ParseEvictionPolicy("random", &p));
}

}  // namespace
}  // namespace crabcache::core

#include "core/sweeper.h"

namespace crabcache::core {
namespace {

TEST(ExpirySweeperTest, ReclaimsExpiredKeysInTheBackground) {
  FakeClock clock;
  Store store(StoreOptions{.num_shards = 4, .clock = &clock});
  for (int i = 0; i < 500; ++i) {
    const std::string k = "k" + std::to_string(i);
    ASSERT_TRUE(
        store.Set(k, store.Hash(k), "v", ExpiryAfter(clock.NowMs(), 10), clock.NowMs()).ok());
  }
  clock.Advance(10);
  ExpirySweeper sweeper(&store, absl::Milliseconds(1), 4);
  sweeper.Start();
  // Bounded wait on a real condition (the sweeper runs on real time; expiry is on the fake clock).
  for (int i = 0; i < 5000 && store.Stats().keys > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  sweeper.Stop();
  EXPECT_EQ(store.Stats().keys, 0u);
  EXPECT_EQ(store.Stats().expirations, 500u);
}

TEST(ExpirySweeperTest, StopWithoutStartIsSafe) {
  Store store(StoreOptions{.num_shards = 1});
  ExpirySweeper sweeper(&store, absl::Seconds(1), 4);
  sweeper.Stop();
}

}  // namespace
}  // namespace crabcache::core
