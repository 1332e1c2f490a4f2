#include "core/store.h"

#include <cstdint>
#include <limits>
#include <string>
#include <thread>

#include "core/command.h"
#include "gtest/gtest.h"

namespace crabcache::core {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  StoreTest() : store_(StoreOptions{.num_shards = 4, .clock = &clock_, .hash_seed = 42}) {}

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

TEST_F(StoreTest, SetThenGet) {
  ASSERT_TRUE(Set("k", "v").ok());
  EXPECT_EQ(Get("k"), "v");
  EXPECT_EQ(Get("other"), std::nullopt);
}

TEST_F(StoreTest, SetReplacesValueAndKeepsOneKey) {
  ASSERT_TRUE(Set("k", "one").ok());
  ASSERT_TRUE(Set("k", "a much longer second value").ok());
  EXPECT_EQ(Get("k"), "a much longer second value");
  EXPECT_EQ(store_.Stats().keys, 1u);
}

TEST_F(StoreTest, BinaryKeysWithNulBytesAreDistinct) {
  const std::string a("a\0b", 3), b("a\0c", 3), prefix("a", 1);
  ASSERT_TRUE(Set(a, std::string("\0\0\xff", 3)).ok());
  ASSERT_TRUE(Set(b, "second").ok());
  EXPECT_EQ(Get(a), std::string("\0\0\xff", 3));
  EXPECT_EQ(Get(b), "second");
  EXPECT_EQ(Get(prefix), std::nullopt);
}

TEST_F(StoreTest, EmptyKeyAndEmptyValue) {
  ASSERT_TRUE(Set("", "").ok());
  EXPECT_EQ(Get(""), "");
  ASSERT_TRUE(Set("e", "").ok());
  EXPECT_EQ(Get("e"), "");
}

TEST_F(StoreTest, DeleteReportsWhetherKeyExisted) {
  ASSERT_TRUE(Set("k", "v").ok());
  EXPECT_TRUE(Delete("k"));
  EXPECT_FALSE(Delete("k"));
  EXPECT_EQ(Get("k"), std::nullopt);
  EXPECT_EQ(store_.Stats().keys, 0u);
}

TEST_F(StoreTest, TtlExpiresExactlyAtDeadline) {
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

TEST_F(StoreTest, ZeroTtlExpiresAtOnce) {
  ASSERT_TRUE(Set("k", "v", ExpiryAfter(clock_.NowMs(), 0)).ok());
  EXPECT_EQ(Get("k"), std::nullopt);
}

TEST_F(StoreTest, ExpiryInThePastIsInvisible) {
  ASSERT_TRUE(Set("k", "v", clock_.NowMs() - 10).ok());
  EXPECT_EQ(Get("k"), std::nullopt);
  EXPECT_FALSE(Delete("k"));
}

TEST_F(StoreTest, HugeTtlSaturatesInsteadOfOverflowing) {
  const uint64_t huge = std::numeric_limits<uint64_t>::max();
  EXPECT_EQ(ExpiryAfter(clock_.NowMs(), huge), std::numeric_limits<Millis>::max());
  ASSERT_TRUE(Set("k", "v", ExpiryAfter(clock_.NowMs(), huge)).ok());
  clock_.Advance(uint64_t{1} << 40);
  EXPECT_EQ(Get("k"), "v");
  EXPECT_GT(Ttl("k"), int64_t{1} << 50);
}

TEST_F(StoreTest, ExpiryAfterNeverReturnsTheNoExpirySentinel) {
  EXPECT_NE(ExpiryAfter(0, 0), kNoExpiry);
}

TEST_F(StoreTest, TtlReportsNoExpiryAndMissing) {
  ASSERT_TRUE(Set("k", "v").ok());
  EXPECT_EQ(Ttl("k"), kTtlNoExpiry);
  EXPECT_EQ(Ttl("absent"), kTtlMissing);
}

TEST_F(StoreTest, ExpireSetsAndReplacesDeadline) {
  ASSERT_TRUE(Set("k", "v").ok());
  EXPECT_TRUE(Expire("k", 500));
  EXPECT_EQ(Ttl("k"), 500);
  EXPECT_TRUE(Expire("k", 2000));
  clock_.Advance(1000);
  EXPECT_EQ(Get("k"), "v");
  EXPECT_FALSE(Expire("absent", 100));
}

TEST_F(StoreTest, ExpireZeroRemovesAtOnce) {
  ASSERT_TRUE(Set("k", "v").ok());
  EXPECT_TRUE(Expire("k", 0));
  EXPECT_EQ(Get("k"), std::nullopt);
  EXPECT_EQ(store_.Stats().keys, 0u);
}

TEST_F(StoreTest, ExpireOnExpiredKeyIsNotFound) {
  ASSERT_TRUE(Set("k", "v", ExpiryAfter(clock_.NowMs(), 10)).ok());
  clock_.Advance(10);
  EXPECT_FALSE(Expire("k", 1000));
}

TEST_F(StoreTest, SetOverwritesTtl) {
  ASSERT_TRUE(Set("k", "v", ExpiryAfter(clock_.NowMs(), 10)).ok());
  ASSERT_TRUE(Set("k", "w").ok());
  clock_.Advance(100);
  EXPECT_EQ(Get("k"), "w");
}

TEST_F(StoreTest, StatsCountHitsMissesAndMemory) {
  const uint64_t empty = store_.Stats().memory_used_bytes;
  ASSERT_TRUE(Set("k", std::string(1000, 'x')).ok());
  Get("k");
  Get("k");
  Get("nope");
  const StoreStats s = store_.Stats();
  EXPECT_EQ(s.hits, 2u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.keys, 1u);
  EXPECT_GE(s.memory_used_bytes, empty + 1000);
  EXPECT_EQ(s.shards, 4u);
  ASSERT_TRUE(Delete("k"));
  EXPECT_EQ(store_.Stats().memory_used_bytes, empty);
}

TEST_F(StoreTest, StatsJsonHasEveryField) {
  const std::string json = store_.Stats().ToJson();
  for (const char* field : {"\"keys\":", "\"memory_used_bytes\":", "\"memory_limit_bytes\":",
                            "\"hits\":", "\"misses\":", "\"expirations\":", "\"evictions\":",
                            "\"shards\":", "\"eviction\":\"s3fifo\""}) {
    EXPECT_NE(json.find(field), std::string::npos) << field << " in " << json;
  }
}

TEST_F(StoreTest, ManyKeysSurviveIndexGrowth) {
  for (int i = 0; i < 20000; ++i)
    ASSERT_TRUE(Set("key" + std::to_string(i), std::to_string(i)).ok());
  for (int i = 0; i < 20000; ++i) ASSERT_EQ(Get("key" + std::to_string(i)), std::to_string(i));
  EXPECT_EQ(store_.Stats().keys, 20000u);
}

TEST_F(StoreTest, SweepReclaimsExpiredEntriesIncrementally) {
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
