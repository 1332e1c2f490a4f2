#include "tests/fastpath/scenarios.h"

#include <atomic>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crabcache::fastpath::testing {
namespace {

using ::testing::HasSubstr;

// What a reply must look like. For kInt, [int_min, int_max] bounds the integer (TTL replies
// against a real clock are only known to a range).
struct Want {
  ReplyType type;
  std::string bytes;
  int64_t int_min = 0;
  int64_t int_max = 0;
};

Want W(ReplyType t, std::string bytes = {}) { return Want{t, std::move(bytes)}; }
Want Int(int64_t lo, int64_t hi) { return Want{ReplyType::kInt, {}, lo, hi}; }

void ExpectReply(const OwnedReply& got, const Want& want, size_t index) {
  ASSERT_EQ(ReplyTypeName(got.type), ReplyTypeName(want.type))
      << "reply " << index << " bytes=" << got.bytes.substr(0, 200);
  if (want.type == ReplyType::kValue) {
    EXPECT_TRUE(got.bytes == want.bytes) << "reply " << index << " value differs (size "
                                         << got.bytes.size() << " vs " << want.bytes.size() << ")";
  }
  if (want.type == ReplyType::kInt) {
    EXPECT_GE(got.integer, want.int_min) << "reply " << index;
    EXPECT_LE(got.integer, want.int_max) << "reply " << index;
  }
  if (want.type == ReplyType::kError) {
    EXPECT_THAT(got.bytes, HasSubstr(want.bytes));
  }
}

void ReadAndCheck(Client& c, const std::vector<Want>& wants) {
  for (size_t i = 0; i < wants.size(); ++i) {
    absl::StatusOr<OwnedReply> r = c.ReadReply();
    ASSERT_TRUE(r.ok()) << "reply " << i << ": " << r.status();
    ExpectReply(*r, wants[i], i);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

std::string RandomBytes(std::mt19937& rng, size_t n) {
  std::string s(n, '\0');
  for (char& ch : s) ch = static_cast<char>(rng());
  return s;
}

}  // namespace

std::string EngineTestName(const ::testing::TestParamInfo<IoEngine>& info) {
  return std::string(IoEngineName(info.param));
}

std::string EngineUnavailable(IoEngine engine) {
  if (engine != IoEngine::kIoUring) return "";
  static const std::string* const reason = [] {
    const absl::Status probe = ProbeIoUring();
    return new std::string(probe.ok() ? "" : "io_uring unavailable here: " + probe.ToString());
  }();
  return *reason;
}

std::unique_ptr<Client> ConnectTo(int port) {
  absl::StatusOr<std::unique_ptr<Client>> c =
      Client::Connect({.host = "127.0.0.1", .port = port, .timeout = absl::Seconds(20)});
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *std::move(c) : nullptr;
}

std::string U32(uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}

std::string U64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}

void FourPingsInOneWrite(int port) {
  std::unique_ptr<Client> c = ConnectTo(port);
  ASSERT_NE(c, nullptr);
  c->QueueRaw("\x01\x01\x01\x01");
  ASSERT_TRUE(c->Flush().ok());
  ReadAndCheck(*c, std::vector<Want>(4, W(ReplyType::kPong)));
}

void TenThousandPipelinedMixedCommands(int port) {
  std::unique_ptr<Client> c = ConnectTo(port);
  ASSERT_NE(c, nullptr);
  std::mt19937 rng(20240601);
  struct Entry {
    std::string value;
    bool has_ttl = false;
  };
  std::map<std::string, Entry> model;
  std::vector<Want> wants;
  constexpr int64_t kExpireSeconds = 1000000;
  for (int i = 0; i < 10000; ++i) {
    const std::string key = "mix-" + std::to_string(rng() % 300);
    const auto it = model.find(key);
    const bool present = it != model.end();
    const int op = static_cast<int>(rng() % 100);
    if (op < 45) {
      c->QueueGet(key);
      wants.push_back(present ? W(ReplyType::kValue, it->second.value) : W(ReplyType::kNull));
    } else if (op < 75) {
      std::string value = "v" + std::to_string(i) + RandomBytes(rng, rng() % 200);
      c->QueuePut(key, value);
      model[key] = Entry{std::move(value), false};
      wants.push_back(W(ReplyType::kOk));
    } else if (op < 83) {
      c->QueueDel(key);
      wants.push_back(W(present ? ReplyType::kOk : ReplyType::kNull));
      model.erase(key);
    } else if (op < 89) {
      c->QueueExpire(key, kExpireSeconds);
      wants.push_back(W(present ? ReplyType::kOk : ReplyType::kNull));
      if (present) it->second.has_ttl = true;
    } else if (op < 95) {
      c->QueueTtl(key);
      wants.push_back(!present              ? Int(-2, -2)
                      : !it->second.has_ttl ? Int(-1, -1)
                                            : Int(1, kExpireSeconds * 1000));
    } else if (op < 99) {
      c->QueuePing();
      wants.push_back(W(ReplyType::kPong));
    } else {
      c->QueueStats();
      wants.push_back(W(ReplyType::kStats));
    }
  }
  ASSERT_TRUE(c->Flush().ok());
  ReadAndCheck(*c, wants);
}

void EveryFrameOneByteAtATime(int port, const WaitConsumed& wait_consumed) {
  std::unique_ptr<Client> c = ConnectTo(port);
  ASSERT_NE(c, nullptr);
  Buffer frames;
  const std::string k("byte\0k", 6);
  EncodePut(&frames, k, "value-1");
  EncodePut(&frames, "byte-k2", "value-2", 100);
  EncodeGet(&frames, k);
  EncodeGet(&frames, "byte-missing");
  EncodeDel(&frames, k);
  EncodeDel(&frames, k);
  EncodeExpire(&frames, "byte-k2", 50);
  EncodeTtl(&frames, "byte-k2");
  EncodePing(&frames);
  EncodeStatsRequest(&frames);
  EncodeGet(&frames, "byte-k2");
  const std::vector<Want> wants = {W(ReplyType::kOk),
                                   W(ReplyType::kOk),
                                   W(ReplyType::kValue, "value-1"),
                                   W(ReplyType::kNull),
                                   W(ReplyType::kOk),
                                   W(ReplyType::kNull),
                                   W(ReplyType::kOk),
                                   Int(49000, 50000),
                                   W(ReplyType::kPong),
                                   W(ReplyType::kStats),
                                   W(ReplyType::kValue, "value-2")};
  const std::string_view bytes = frames.view();
  for (size_t i = 0; i < bytes.size(); ++i) {
    c->QueueRaw(bytes.substr(i, 1));
    ASSERT_TRUE(c->Flush().ok());
    wait_consumed(i + 1);
  }
  ReadAndCheck(*c, wants);
}

void DelExpireTtlSemantics(int port) {
  std::unique_ptr<Client> c = ConnectTo(port);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->Put("sem-k", "v").ok());
  EXPECT_EQ(*c->Del("sem-k"), true);
  EXPECT_EQ(*c->Del("sem-k"), false);
  EXPECT_EQ(*c->Expire("sem-k", 10), false);
  EXPECT_EQ(*c->Ttl("sem-k"), core::kTtlMissing);
  ASSERT_TRUE(c->Put("sem-k", "v").ok());
  EXPECT_EQ(*c->Ttl("sem-k"), core::kTtlNoExpiry);
  EXPECT_EQ(*c->Expire("sem-k", 10), true);
  const int64_t ttl = *c->Ttl("sem-k");
  EXPECT_GT(ttl, 9000);
  EXPECT_LE(ttl, 10000);
  ASSERT_TRUE(c->Put("sem-k", "v2").ok());  // A PUT without TTL clears the expiry.
  EXPECT_EQ(*c->Ttl("sem-k"), core::kTtlNoExpiry);
  ASSERT_TRUE(c->Put("sem-k3", "v", 100).ok());
  EXPECT_GT(*c->Ttl("sem-k3"), 99000);
  EXPECT_EQ(**c->Get("sem-k"), "v2");
}

void ZeroTtlExpiresAtOnce(int port) {
  std::unique_ptr<Client> c = ConnectTo(port);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->Put("zero-a", "v", 0).ok());
  EXPECT_EQ(*c->Get("zero-a"), std::nullopt);
  ASSERT_TRUE(c->Put("zero-b", "v").ok());
  EXPECT_EQ(*c->Expire("zero-b", 0), true);
  EXPECT_EQ(*c->Get("zero-b"), std::nullopt);
  EXPECT_EQ(*c->Ttl("zero-b"), core::kTtlMissing);
  EXPECT_EQ(*c->Del("zero-b"), false);
}

void OneMiBValues(int port) {
  std::unique_ptr<Client> c = ConnectTo(port);
  ASSERT_NE(c, nullptr);
  std::mt19937 rng(7);
  std::vector<std::string> values;
  for (int i = 0; i < 8; ++i) values.push_back(RandomBytes(rng, 1 << 20));
  ASSERT_TRUE(c->Put("big-0", values[0]).ok());
  absl::StatusOr<std::optional<std::string>> got = c->Get("big-0");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_TRUE(**got == values[0]);
  std::vector<Want> wants;
  for (int i = 0; i < 8; ++i) {
    c->QueuePut("big-" + std::to_string(i), values[i]);
    wants.push_back(W(ReplyType::kOk));
  }
  for (int i = 7; i >= 0; --i) {
    c->QueueGet("big-" + std::to_string(i));
    wants.push_back(W(ReplyType::kValue, values[i]));
  }
  ASSERT_TRUE(c->Flush().ok());
  ReadAndCheck(*c, wants);
}

void HundredPipelinedGetsOfOneMiBValues(int port) {
  std::unique_ptr<Client> c = ConnectTo(port);
  ASSERT_NE(c, nullptr);
  std::mt19937 rng(100);
  std::vector<std::string> values;
  for (int i = 0; i < 4; ++i) {
    values.push_back(RandomBytes(rng, 1 << 20));
    ASSERT_TRUE(c->Put("hundred-" + std::to_string(i), values.back()).ok());
  }
  // 100 frames, about 1.4 KB: one write, so the server reads them together, and they ask for
  // 100 MiB of replies, more than the default output_hard_limit (64 MiB).
  for (int i = 0; i < 100; ++i) c->QueueGet("hundred-" + std::to_string(i % 4));
  ASSERT_TRUE(c->Flush().ok());
  for (int i = 0; i < 100; ++i) {
    absl::StatusOr<Reply> r = c->ReadReplyView();
    ASSERT_TRUE(r.ok()) << "reply " << i << ": " << r.status();
    ASSERT_EQ(ReplyTypeName(r->type), ReplyTypeName(ReplyType::kValue)) << "reply " << i;
    ASSERT_TRUE(r->bytes == values[i % 4]) << "reply " << i << " differs";
  }
  EXPECT_TRUE(c->Ping().ok());
}

void KeysWithNulBytes(int port) {
  std::unique_ptr<Client> c = ConnectTo(port);
  ASSERT_NE(c, nullptr);
  const std::vector<std::string> keys = {std::string("\0", 1), std::string("nul\0a", 5),
                                         std::string("nul\0b", 5), "nul", ""};
  for (size_t i = 0; i < keys.size(); ++i) {
    ASSERT_TRUE(c->Put(keys[i], std::string("val\0", 4) + std::to_string(i)).ok());
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    absl::StatusOr<std::optional<std::string>> got = c->Get(keys[i]);
    ASSERT_TRUE(got.ok() && got->has_value()) << i;
    EXPECT_EQ(**got, std::string("val\0", 4) + std::to_string(i));
  }
  EXPECT_EQ(*c->Del(std::string("nul\0a", 5)), true);
  EXPECT_EQ(**c->Get(std::string("nul\0b", 5)), std::string("val\0", 4) + "2");
}

void MalformedFramesCloseOnlyThatConnection(int port, size_t max_key_bytes,
                                            size_t max_value_bytes) {
  struct Case {
    std::string name;
    std::string bytes;
    std::string error_text;
  };
  const std::string put_after =
      std::string("\x02", 1) + U32(11) + "after-error" + U32(1) + "x" + std::string("\0", 1);
  const std::vector<Case> cases = {
      {"unknown opcode", std::string("\x42", 1) + put_after, "unknown opcode 0x42"},
      {"key too long", std::string("\x03", 1) + U32(max_key_bytes + 1), "key length"},
      {"huge key length", std::string("\x04", 1) + U32(0xffffffffu), "key length 4294967295"},
      {"value too long", std::string("\x02", 1) + U32(1) + "k" + U32(max_value_bytes + 1),
       "value length"},
      {"bad ttl flag",
       std::string("\x02", 1) + U32(1) + "k" + U32(1) + "v" + std::string("\x07", 1) + put_after,
       "ttl flag 0x07"},
      {"RESP", "*1\r\n$4\r\nPING\r\n", "not RESP"},
  };
  std::unique_ptr<Client> other = ConnectTo(port);
  ASSERT_NE(other, nullptr);
  ASSERT_TRUE(other->Ping().ok());
  for (const Case& tc : cases) {
    SCOPED_TRACE(tc.name);
    std::unique_ptr<Client> bad = ConnectTo(port);
    ASSERT_NE(bad, nullptr);
    bad->QueuePing();
    bad->QueuePut("before-error", "ok");
    bad->QueueRaw(tc.bytes);
    ASSERT_TRUE(bad->Flush().ok());
    ReadAndCheck(*bad,
                 {W(ReplyType::kPong), W(ReplyType::kOk), W(ReplyType::kError, tc.error_text)});
    EXPECT_TRUE(bad->WaitForClose().ok());
    // The other connection is unaffected, and nothing after the bad frame ran.
    EXPECT_TRUE(other->Ping().ok());
    EXPECT_EQ(**other->Get("before-error"), "ok");
    EXPECT_EQ(*other->Get("after-error"), std::nullopt);
  }
}

void ConcurrentClientsAgainstModel(int port, int clients, int commands_per_client) {
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([port, t, commands_per_client] {
      std::unique_ptr<Client> c = ConnectTo(port);
      ASSERT_NE(c, nullptr);
      std::mt19937 rng(1000 + t);
      std::map<std::string, std::string> model;
      int done = 0;
      while (done < commands_per_client) {
        const int depth = 1 + static_cast<int>(rng() % 64);
        std::vector<Want> wants;
        for (int i = 0; i < depth && done < commands_per_client; ++i, ++done) {
          const bool shared = rng() % 10 == 0;
          const std::string key =
              shared ? "cc-shared-" + std::to_string(rng() % 8)
                     : "cc-" + std::to_string(t) + "-" + std::to_string(rng() % 40);
          const int op = static_cast<int>(rng() % 10);
          if (shared) {
            // Other clients write these too: only the reply type is known.
            if (op < 5) {
              c->QueuePut(key, "s" + std::to_string(t));
              wants.push_back(W(ReplyType::kOk));
            } else {
              c->QueuePing();
              wants.push_back(W(ReplyType::kPong));
            }
            continue;
          }
          const auto it = model.find(key);
          if (op < 5) {
            c->QueueGet(key);
            wants.push_back(it == model.end() ? W(ReplyType::kNull)
                                              : W(ReplyType::kValue, it->second));
          } else if (op < 9) {
            std::string value = RandomBytes(rng, rng() % 100);
            c->QueuePut(key, value);
            model[key] = std::move(value);
            wants.push_back(W(ReplyType::kOk));
          } else {
            c->QueueDel(key);
            wants.push_back(W(it == model.end() ? ReplyType::kNull : ReplyType::kOk));
            model.erase(key);
          }
        }
        ASSERT_TRUE(c->Flush().ok());
        ReadAndCheck(*c, wants);
        if (::testing::Test::HasFailure()) return;
      }
    });
  }
  for (std::thread& th : threads) th.join();
}

uint64_t ClientsUnderLoadDuringShutdown(int port, int clients, const std::function<void()>& stop) {
  constexpr int kPairs = 8;  // PUT + GET pairs per batch.
  std::atomic<int> warmed_up{0};
  std::atomic<bool> stopping{false};
  std::atomic<uint64_t> after_stop{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      bool counted = false;
      auto count = [&] {
        if (!counted) warmed_up.fetch_add(1);
        counted = true;
      };
      // Ending before the shutdown began is a failure; after it, the expected outcome.
      auto ended = [&](const absl::Status& why) {
        EXPECT_TRUE(stopping.load()) << "client " << t << " ended before the shutdown: " << why;
        // End of stream, or a reset of requests the server never read; never a timeout, which
        // would mean a connection the server forgot.
        EXPECT_FALSE(absl::IsDeadlineExceeded(why)) << why;
        count();
      };
      std::unique_ptr<Client> c = ConnectTo(port);
      if (c == nullptr) return count();
      for (int batch = 0;; ++batch) {
        if (batch == 20) count();
        std::vector<std::string> values;
        for (int i = 0; i < kPairs; ++i) {
          const std::string key = "sd-" + std::to_string(t) + "-" + std::to_string(i);
          values.push_back(std::to_string(batch) + "/" + std::to_string(i));
          c->QueuePut(key, values.back());
          c->QueueGet(key);
        }
        const bool late = stopping.load();
        if (absl::Status s = c->Flush(); !s.ok()) return ended(s);
        for (int i = 0; i < 2 * kPairs; ++i) {
          absl::StatusOr<OwnedReply> r = c->ReadReply();
          if (!r.ok()) return ended(r.status());
          if (late) after_stop.fetch_add(1);
          if (i % 2 == 0) {
            EXPECT_EQ(r->type, ReplyType::kOk) << "client " << t << " batch " << batch;
          } else {
            EXPECT_EQ(r->type, ReplyType::kValue) << "client " << t << " batch " << batch;
            EXPECT_EQ(r->bytes, values[i / 2]) << "client " << t << " batch " << batch;
          }
          if (::testing::Test::HasFailure()) return count();
        }
      }
    });
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (warmed_up.load() < clients && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(warmed_up.load(), clients) << "clients did not get 20 batches answered in 30 s";
  stopping = true;
  stop();
  for (std::thread& th : threads) th.join();
  return after_stop.load();
}

}  // namespace crabcache::fastpath::testing
