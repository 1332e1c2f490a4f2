#include <random>
#include <string>

#include "core/entry.h"
#include "core/store.h"
#include "gtest/gtest.h"

namespace crabcache::core {
namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitizedAllocator = true;
#elif defined(__has_feature)
constexpr bool kSanitizedAllocator =
    __has_feature(address_sanitizer) || __has_feature(thread_sanitizer);
#else
constexpr bool kSanitizedAllocator = false;
#endif

// One shard, so the budget and the eviction order are exactly those of the test.
class EvictionTest : public ::testing::TestWithParam<EvictionPolicy> {
 protected:
  void Make(EvictionPolicy policy, uint64_t budget) {
    store_ = std::make_unique<Store>(StoreOptions{
        .num_shards = 1, .max_memory_bytes = budget, .eviction = policy, .clock = &clock_});
  }
  absl::Status Set(const std::string& key, const std::string& value) {
    return store_->Set(key, store_->Hash(key), value, kNoExpiry, clock_.NowMs());
  }
  bool Has(const std::string& key) {
    return store_->Get(key, store_->Hash(key), clock_.NowMs(), [](std::string_view) {});
  }
  static std::string Key(int i) { return "key-" + std::to_string(i); }

  FakeClock clock_;
  std::unique_ptr<Store> store_;
};

// Entries of this size cost one 128-byte chunk each.
const std::string kValue(40, 'v');

TEST_F(EvictionTest, NoEvictionRejectsWritesAndKeepsData) {
  Make(EvictionPolicy::kNoEviction, 4096);
  int stored = 0;
  absl::Status last;
  for (int i = 0; i < 100; ++i) {
    last = Set(Key(i), kValue);
    if (!last.ok()) break;
    ++stored;
  }
  ASSERT_EQ(last.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(std::string(last.message()).find("OOM"), std::string::npos);
  EXPECT_GT(stored, 5);
  for (int i = 0; i < stored; ++i) EXPECT_TRUE(Has(Key(i))) << i;
  // Replacing a key with a value of the same size still fits; a larger one does not.
  EXPECT_TRUE(Set(Key(0), kValue).ok());
  EXPECT_FALSE(Set(Key(0), std::string(2000, 'x')).ok());
  EXPECT_TRUE(Has(Key(0)));
  EXPECT_EQ(store_->Stats().evictions, 0u);
}

TEST_F(EvictionTest, ValueLargerThanBudgetFailsWithoutTouchingData) {
  Make(EvictionPolicy::kLru, 4096);
  ASSERT_TRUE(Set("small", "v").ok());
  const absl::Status s = Set("big", std::string(8192, 'x'));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(Has("small"));
}

TEST_F(EvictionTest, LruEvictsLeastRecentlyUsed) {
  Make(EvictionPolicy::kLru, 2048);
  int fitted = 0;
  while (store_->Stats().evictions == 0) ASSERT_TRUE(Set(Key(fitted++), kValue).ok());
  // Key(0) went first. Touch Key(1) so Key(2) is now the oldest.
  EXPECT_FALSE(Has(Key(0)));
  ASSERT_TRUE(Has(Key(1)));
  ASSERT_TRUE(Set(Key(1000), kValue).ok());
  EXPECT_TRUE(Has(Key(1)));
  EXPECT_FALSE(Has(Key(2)));
}

TEST_F(EvictionTest, S3FifoEvictsOneHitWondersBeforeReusedKeys) {
  Make(EvictionPolicy::kS3Fifo, 8192);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(Set(Key(i), kValue).ok());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(Has(Key(i)));                  // Keys 0..9 are reused.
  for (int i = 100; i < 200; ++i) ASSERT_TRUE(Set(Key(i), kValue).ok());  // A scan.
  int reused_alive = 0;
  for (int i = 0; i < 10; ++i) reused_alive += Has(Key(i));
  EXPECT_EQ(reused_alive, 10) << "the scan must not flush keys that were used again";
  EXPECT_GT(store_->Stats().evictions, 0u);
}

TEST_F(EvictionTest, S3FifoGhostHitGoesStraightToMain) {
  Make(EvictionPolicy::kS3Fifo, 8192);
  int next = 0;
  while (store_->Stats().evictions == 0) ASSERT_TRUE(Set(Key(next++), kValue).ok());
  ASSERT_FALSE(Has(Key(0)));              // Just evicted from the small queue: now a ghost.
  ASSERT_TRUE(Set(Key(0), kValue).ok());  // Its return lands in main ...
  for (int i = 1000; i < 1200; ++i) ASSERT_TRUE(Set(Key(i), kValue).ok());
  EXPECT_TRUE(Has(Key(0)));  // ... so another scan does not flush it.
}

TEST_P(EvictionTest, AccountingNeverExceedsTheLimit) {
  const uint64_t budget = 64 * 1024;
  store_ = std::make_unique<Store>(StoreOptions{
      .num_shards = 4, .max_memory_bytes = budget, .eviction = GetParam(), .clock = &clock_});
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> key(0, 3000), size(0, 600), op(0, 9);
  for (int i = 0; i < 30000; ++i) {
    const std::string k = Key(key(rng));
    if (op(rng) < 3) {
      Has(k);
    } else if (op(rng) == 0) {
      store_->Delete(k, store_->Hash(k), clock_.NowMs());
    } else {
      const absl::Status s = Set(k, std::string(size(rng), 'x'));
      if (GetParam() != EvictionPolicy::kNoEviction) ASSERT_TRUE(s.ok()) << s;
    }
    ASSERT_LE(store_->Stats().memory_used_bytes, budget) << "after op " << i;
  }
}

TEST_P(EvictionTest, ExpiredEntriesAreReclaimedBeforeLiveOnesWhenSwept) {
  store_ = std::make_unique<Store>(StoreOptions{
      .num_shards = 1, .max_memory_bytes = 0, .eviction = GetParam(), .clock = &clock_});
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(store_
                    ->Set(Key(i), store_->Hash(Key(i)), kValue, ExpiryAfter(clock_.NowMs(), 50),
                          clock_.NowMs())
                    .ok());
  }
  clock_.Advance(50);
  EXPECT_EQ(store_->SweepExpired(clock_.NowMs(), 1000), 100u);
  EXPECT_EQ(store_->Stats().keys, 0u);
}

INSTANTIATE_TEST_SUITE_P(Policies, EvictionTest,
                         ::testing::Values(EvictionPolicy::kS3Fifo, EvictionPolicy::kLru,
                                           EvictionPolicy::kNoEviction),
                         [](const auto& info) {
                           return std::string(EvictionPolicyName(info.param));
                         });

TEST(EntryTest, ChargeMatchesTheAllocator) {
  Entry* e = Entry::Create(1, "0123456789abcdef", "0123456789", kNoExpiry);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->key(), "0123456789abcdef");
  EXPECT_EQ(e->value(), "0123456789");
  // Sanitizer allocators report the requested size, not glibc's chunk size.
  if (!kSanitizedAllocator) EXPECT_EQ(e->charge, Entry::ChargeFor(16, 10));
  Entry::Destroy(e);
}

}  // namespace
}  // namespace crabcache::core
