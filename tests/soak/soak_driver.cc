// crabcache-soak: load for `make soak` (tests/soak/run_soak.py starts the server and runs this).
//
// Model workers (--workers) each own a key space and check every reply against a model:
//   - durable keys "w<i>:d<j>", written once at the start without TTL: every GET must return the
//     exact value (under --eviction=noeviction; under s3fifo a miss is allowed, but a key once
//     missed must stay missing: nothing comes back that was not written again);
//   - churn keys "w<i>:c<j>": SET with a 1-6 s TTL, GET, DEL, EXPIRE and TTL at random. For each
//     key the model knows the last acknowledged value (a version; the bytes are derived from it)
//     and the window [send time + ttl, ack time + ttl] in which its expiry lies, so a GET must
//     hit exactly (surely alive), must miss (surely expired, deleted, never written), or may do
//     either (inside the window, or evicted under s3fifo); a wrong value is always a violation.
//   Batches go alternately over the fast path (one pipeline) and a gRPC BatchExecute stream, so
//   each front end reads what the other wrote.
// Chaos workers (--chaos) hit the server on their own keys with what a hostile or broken client
// does: connections dropped mid-pipeline, malformed frames, stalled partial frames, AUTH while
// auth is off, cancelled streams, oversized batches, commands without an operation, large values.
//
// Prints one JSON line of figures; exits 1 on any model violation.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/mutex.h"
#include "crabcache/v1/cache.grpc.pb.h"
#include "fastpath/client.h"
#include "fastpath/token_store.h"

ABSL_FLAG(int, fastpath_port, 0, "Fast path port of the server.");
ABSL_FLAG(std::string, grpc_target, "", "host:port of the gRPC server.");
ABSL_FLAG(int, seconds, 60, "How long to run.");
ABSL_FLAG(std::string, eviction, "noeviction", "The server's policy: noeviction or s3fifo.");
ABSL_FLAG(int, workers, 4, "Model-checked workers.");
ABSL_FLAG(int, chaos, 2, "Chaos workers.");
ABSL_FLAG(int, durable_keys, 256,
          "Durable keys per worker: a small set, read often (15 % of all commands), so that "
          "under s3fifo it is the hot set and must survive the churn.");
ABSL_FLAG(int, durable_value_bytes, 2048, "Size of each durable value.");
ABSL_FLAG(int, churn_keys, 8192, "Churn keys per worker.");
ABSL_FLAG(int, churn_max_value_bytes, 16384, "Largest churn value.");
ABSL_FLAG(int, churn_max_ttl_seconds, 6,
          "Churn TTLs are 1..this many seconds: long enough that live churn data exceeds a small "
          "--max_memory even against a slow (ASan) server, so the limit is hit.");
ABSL_FLAG(int, max_batch_commands, 10000, "The server's --max_batch_commands.");
ABSL_FLAG(std::string, token_file, "",
          "If set, the server has auth on: every connection and call uses the first token of this "
          "file, and chaos workers also try wrong and missing tokens.");
ABSL_FLAG(double, min_durable_hit_ratio, 0.0,
          "Fail if fewer durable GETs than this hit (1.0 is implied under noeviction).");

namespace crabcache::soak {
namespace {

using Clock = std::chrono::steady_clock;
using crabcache::v1::BatchRequest;
using crabcache::v1::BatchResponse;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
      .count();
}

// Value bytes for (key, version): checkable without storing them.
std::string ValueFor(const std::string& key, uint64_t version, size_t size) {
  std::string v = absl::StrCat(key, "#", version, "#");
  uint64_t x = std::hash<std::string>{}(key) ^ (version * 0x9e3779b97f4a7c15ULL);
  while (v.size() < size) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    v.push_back(static_cast<char>('a' + x % 26));
  }
  v.resize(std::max(size, v.size()));
  return v;
}

// Totals over all workers.
struct Totals {
  std::atomic<uint64_t> commands{0};
  std::atomic<uint64_t> fastpath_batches{0};
  std::atomic<uint64_t> grpc_batches{0};
  std::atomic<uint64_t> oom_errors{0};
  std::atomic<uint64_t> durable_gets{0};
  std::atomic<uint64_t> durable_hits{0};
  std::atomic<uint64_t> expired_seen{0};
  std::atomic<uint64_t> chaos_actions{0};
  std::atomic<uint64_t> transport_errors{0};
  std::atomic<uint64_t> violations{0};
};

Totals totals;
core::Mutex report_mu;
std::string* token = new std::string;  // Empty: auth is off. Set once before any thread starts.

// A fast path connection, authenticated when auth is on; null on failure.
std::unique_ptr<fastpath::Client> ConnectFastPath() {
  auto c = fastpath::Client::Connect(
      {.port = absl::GetFlag(FLAGS_fastpath_port), .timeout = absl::Seconds(10)});
  if (!c.ok()) return nullptr;
  if (!token->empty() && !(*c)->Auth(*token).ok()) return nullptr;
  return *std::move(c);
}

void Authorize(grpc::ClientContext* ctx) {
  if (!token->empty()) ctx->AddMetadata("authorization", "Bearer " + *token);
}

void Violation(const std::string& what) {
  totals.violations.fetch_add(1);
  core::MutexLock lock(&report_mu);
  std::fprintf(stderr, "VIOLATION: %s\n", what.c_str());
}

// What the model knows about one key.
struct KeyState {
  enum Kind : uint8_t { kAbsent, kPresent } kind = kAbsent;
  uint64_t version = 0;
  size_t size = 0;
  bool has_ttl = false;
  int64_t expire_lo = 0;  // Driver ms: the expiry is in [expire_lo, expire_hi].
  int64_t expire_hi = 0;
};

// One command in flight and what the model needs to judge its reply.
struct Op {
  enum Kind : uint8_t { kGet, kSet, kDel, kExpire, kTtl } kind;
  bool durable = false;
  size_t index = 0;
  std::string key;
  uint64_t version = 0;  // kSet.
  size_t size = 0;       // kSet.
  int ttl_s = 0;         // kSet (0: none), kExpire.
};

// A reply in a front-end-neutral form.
struct Reply {
  enum Kind : uint8_t { kOk, kHit, kMiss, kNotFound, kTtl, kError, kOther } kind = kOther;
  std::string value;
  int64_t ttl_ms = 0;
  std::string error;
};

constexpr int64_t kSlackMs = 5;  // Millisecond rounding on both sides.

class Worker {
 public:
  Worker(int id, bool noeviction, std::shared_ptr<grpc::Channel> channel)
      : id_(id),
        noeviction_(noeviction),
        rng_(static_cast<uint32_t>(id * 7919 + 1)),
        stub_(crabcache::v1::Cache::NewStub(channel)),
        durable_(absl::GetFlag(FLAGS_durable_keys)),
        churn_(absl::GetFlag(FLAGS_churn_keys)) {}

  bool Connect() {
    fp_ = ConnectFastPath();
    return fp_ != nullptr;
  }

  void LoadDurable() {
    const size_t size = absl::GetFlag(FLAGS_durable_value_bytes);
    for (size_t j = 0; j < durable_.size(); j += 64) {
      std::vector<Op> ops;
      for (size_t k = j; k < std::min(durable_.size(), j + 64); ++k) {
        ops.push_back({.kind = Op::kSet,
                       .durable = true,
                       .index = k,
                       .key = DurableKey(k),
                       .version = 1,
                       .size = size});
      }
      Run(ops, /*grpc=*/(j / 64) % 2 == 1);
    }
  }

  void Loop(Clock::time_point until) {
    uint64_t batch = 0;
    while (Clock::now() < until && fp_ != nullptr) {
      std::vector<Op> ops;
      const int n = 1 + static_cast<int>(rng_() % 24);
      for (int i = 0; i < n; ++i) ops.push_back(RandomOp());
      Run(ops, ++batch % 2 == 0);
    }
  }

  // Reads every key once more; the last word on durability.
  void FinalCheck() {
    for (size_t j = 0; j < durable_.size(); j += 128) {
      std::vector<Op> ops;
      for (size_t k = j; k < std::min(durable_.size(), j + 128); ++k) {
        ops.push_back({.kind = Op::kGet, .durable = true, .index = k, .key = DurableKey(k)});
      }
      Run(ops, false);
    }
    for (size_t j = 0; j < churn_.size(); j += 128) {
      std::vector<Op> ops;
      for (size_t k = j; k < std::min(churn_.size(), j + 128); ++k) {
        ops.push_back({.kind = Op::kGet, .index = k, .key = ChurnKey(k)});
      }
      Run(ops, true);
    }
  }

 private:
  std::string DurableKey(size_t j) const { return absl::StrCat("w", id_, ":d", j); }
  std::string ChurnKey(size_t j) const { return absl::StrCat("w", id_, ":c", j); }

  Op RandomOp() {
    const uint32_t r = rng_() % 100;
    if (r < 15) {
      const size_t k = rng_() % durable_.size();
      return {.kind = Op::kGet, .durable = true, .index = k, .key = DurableKey(k)};
    }
    const size_t k = rng_() % churn_.size();
    Op op{.kind = Op::kGet, .index = k, .key = ChurnKey(k)};
    if (r < 50) {
      op.kind = Op::kGet;
    } else if (r < 80) {
      op.kind = Op::kSet;
      op.version = ++next_version_;
      op.size = 16 + rng_() % absl::GetFlag(FLAGS_churn_max_value_bytes);
      op.ttl_s = 1 + static_cast<int>(rng_() % absl::GetFlag(FLAGS_churn_max_ttl_seconds));
    } else if (r < 88) {
      op.kind = Op::kDel;
    } else if (r < 94) {
      op.kind = Op::kExpire;
      op.ttl_s = static_cast<int>(rng_() % 3);  // 0 expires at once.
    } else {
      op.kind = Op::kTtl;
    }
    return op;
  }

  // Sends the batch over one front end, then judges each reply in order.
  void Run(std::vector<Op>& ops, bool grpc) {
    const int64_t sent = NowMs();
    std::vector<Reply> replies;
    if (!(grpc ? SendGrpc(ops, &replies) : SendFastPath(ops, &replies))) {
      totals.transport_errors.fetch_add(1);
      Violation(absl::StrCat("worker ", id_, ": transport failure on a clean connection (",
                             grpc ? "grpc" : "fastpath", ")"));
      if (!grpc) Connect();
      return;
    }
    const int64_t acked = NowMs();
    (grpc ? totals.grpc_batches : totals.fastpath_batches).fetch_add(1);
    totals.commands.fetch_add(ops.size());
    for (size_t i = 0; i < ops.size(); ++i) Judge(ops[i], replies[i], sent, acked);
  }

  bool SendFastPath(const std::vector<Op>& ops, std::vector<Reply>* out) {
    for (const Op& op : ops) {
      switch (op.kind) {
        case Op::kGet:
          fp_->QueueGet(op.key);
          break;
        case Op::kSet:
          fp_->QueuePut(op.key, ValueFor(op.key, op.version, op.size),
                        op.ttl_s == 0 ? std::nullopt : std::optional<uint64_t>(op.ttl_s));
          break;
        case Op::kDel:
          fp_->QueueDel(op.key);
          break;
        case Op::kExpire:
          fp_->QueueExpire(op.key, static_cast<uint64_t>(op.ttl_s));
          break;
        case Op::kTtl:
          fp_->QueueTtl(op.key);
          break;
      }
    }
    if (!fp_->Flush().ok()) return false;
    for (const Op& op : ops) {
      absl::StatusOr<fastpath::OwnedReply> r = fp_->ReadReply();
      if (!r.ok()) return false;
      Reply reply;
      switch (r->type) {
        case fastpath::ReplyType::kOk:
          reply.kind = Reply::kOk;
          break;
        case fastpath::ReplyType::kValue:
          reply.kind = Reply::kHit;
          reply.value = std::move(r->bytes);
          break;
        case fastpath::ReplyType::kNull:
          reply.kind = op.kind == Op::kGet ? Reply::kMiss : Reply::kNotFound;
          break;
        case fastpath::ReplyType::kInt:
          reply.kind = Reply::kTtl;
          reply.ttl_ms = r->integer;
          break;
        case fastpath::ReplyType::kError:
          reply.kind = Reply::kError;
          reply.error = std::move(r->bytes);
          break;
        default:
          reply.kind = Reply::kOther;
      }
      out->push_back(std::move(reply));
    }
    return true;
  }

  bool SendGrpc(const std::vector<Op>& ops, std::vector<Reply>* out) {
    if (stream_ == nullptr || stream_batches_ >= 500) {
      if (stream_ != nullptr) CloseStream();
      stream_ctx_ = std::make_unique<grpc::ClientContext>();
      Authorize(stream_ctx_.get());
      stream_ = stub_->BatchExecute(stream_ctx_.get());
      stream_batches_ = 0;
    }
    BatchRequest request;
    request.set_id(++batch_id_);
    for (const Op& op : ops) {
      auto* c = request.add_commands();
      switch (op.kind) {
        case Op::kGet:
          c->mutable_get()->set_key(op.key);
          break;
        case Op::kSet: {
          auto* s = c->mutable_set();
          s->set_key(op.key);
          s->set_value(ValueFor(op.key, op.version, op.size));
          s->set_ttl_ms(static_cast<uint64_t>(op.ttl_s) * 1000);
          break;
        }
        case Op::kDel:
          c->mutable_delete_()->set_key(op.key);
          break;
        case Op::kExpire:
          c->mutable_expire()->set_key(op.key);
          c->mutable_expire()->set_ttl_ms(static_cast<uint64_t>(op.ttl_s) * 1000);
          break;
        case Op::kTtl:
          c->mutable_ttl()->set_key(op.key);
          break;
      }
    }
    BatchResponse response;
    if (!stream_->Write(request) || !stream_->Read(&response)) {
      stream_.reset();
      return false;
    }
    ++stream_batches_;
    if (response.id() != request.id() || response.results_size() != request.commands_size()) {
      Violation("grpc: response id or size does not match the request");
      return false;
    }
    for (int i = 0; i < response.results_size(); ++i) {
      const auto& r = response.results(i);
      Reply reply;
      switch (r.code()) {
        case crabcache::v1::OK:
          reply.kind = ops[i].kind == Op::kTtl ? Reply::kTtl : Reply::kOk;
          reply.ttl_ms = r.ttl_ms();
          break;
        case crabcache::v1::HIT:
          reply.kind = Reply::kHit;
          reply.value = r.value();
          break;
        case crabcache::v1::MISS:
          reply.kind = Reply::kMiss;
          break;
        case crabcache::v1::NOT_FOUND:
          reply.kind = ops[i].kind == Op::kTtl ? Reply::kTtl : Reply::kNotFound;
          reply.ttl_ms = r.ttl_ms();
          break;
        case crabcache::v1::ERROR:
          reply.kind = Reply::kError;
          reply.error = r.error();
          break;
        default:
          reply.kind = Reply::kOther;
      }
      out->push_back(std::move(reply));
    }
    return true;
  }

  void CloseStream() {
    stream_->WritesDone();
    BatchResponse ignored;
    while (stream_->Read(&ignored)) {
    }
    (void)stream_->Finish();
    stream_.reset();
  }

  // Where the model stands on `s` for a command the server ran somewhere in [sent, acked].
  enum class Liveness { kSurelyAbsent, kSurelyAlive, kEither };
  static Liveness Live(const KeyState& s, int64_t sent, int64_t acked) {
    if (s.kind == KeyState::kAbsent) return Liveness::kSurelyAbsent;
    if (!s.has_ttl) return Liveness::kSurelyAlive;
    if (acked < s.expire_lo - kSlackMs) return Liveness::kSurelyAlive;
    if (sent > s.expire_hi + kSlackMs) return Liveness::kSurelyAbsent;
    return Liveness::kEither;
  }

  void Judge(const Op& op, const Reply& r, int64_t sent, int64_t acked) {
    KeyState& s = op.durable ? durable_[op.index] : churn_[op.index];
    const std::string where = absl::StrCat(op.key, " (", op.durable ? "durable" : "churn", ")");
    if (r.kind == Reply::kError && r.error.rfind("RESOURCE_EXHAUSTED", 0) == 0 &&
        op.kind == Op::kSet) {
      totals.oom_errors.fetch_add(1);
      if (!noeviction_) Violation(where + ": out of memory under an evicting policy");
      if (op.durable) Violation(where + ": the durable set must fit the budget: " + r.error);
      return;  // Nothing stored is lost: the old value, if any, stays.
    }
    if (r.kind == Reply::kError || r.kind == Reply::kOther) {
      Violation(where + ": unexpected error reply: " + r.error);
      return;
    }
    const Liveness live = Live(s, sent, acked);
    // Under s3fifo any alive key may have been evicted; noeviction only lets TTLs end a key.
    const bool may_be_gone = live != Liveness::kSurelyAlive || !noeviction_;
    switch (op.kind) {
      case Op::kSet:
        if (r.kind != Reply::kOk) return Violation(where + ": SET not OK");
        s = KeyState{.kind = KeyState::kPresent,
                     .version = op.version,
                     .size = op.size,
                     .has_ttl = op.ttl_s > 0,
                     .expire_lo = sent + op.ttl_s * 1000,
                     .expire_hi = acked + op.ttl_s * 1000};
        return;
      case Op::kGet:
        if (op.durable) {
          totals.durable_gets.fetch_add(1);
          if (r.kind == Reply::kHit) totals.durable_hits.fetch_add(1);
        }
        if (r.kind == Reply::kHit) {
          if (live == Liveness::kSurelyAbsent) {
            return Violation(where + ": GET hit a key that is deleted, expired or evicted");
          }
          if (r.value != ValueFor(op.key, s.version, s.size)) {
            return Violation(where + ": GET returned a value that was not the last one written");
          }
          return;
        }
        if (r.kind != Reply::kMiss) return Violation(where + ": GET reply is neither hit nor miss");
        if (!may_be_gone) return Violation(where + ": acknowledged write lost (GET missed)");
        if (live == Liveness::kEither) totals.expired_seen.fetch_add(1);
        s.kind = KeyState::kAbsent;  // Gone now; it may not come back until written again.
        return;
      case Op::kDel:
        if (r.kind == Reply::kOk && live == Liveness::kSurelyAbsent) {
          return Violation(where + ": DEL found a key that is gone");
        }
        if (r.kind == Reply::kNotFound && !may_be_gone) {
          return Violation(where + ": DEL did not find a live key");
        }
        s.kind = KeyState::kAbsent;
        return;
      case Op::kExpire:
        if (r.kind == Reply::kOk) {
          if (live == Liveness::kSurelyAbsent)
            return Violation(where + ": EXPIRE found a key that is gone");
          s.has_ttl = true;
          s.expire_lo = sent + op.ttl_s * 1000;
          s.expire_hi = acked + op.ttl_s * 1000;
          if (op.ttl_s == 0) s.kind = KeyState::kAbsent;
          return;
        }
        if (!may_be_gone) return Violation(where + ": EXPIRE did not find a live key");
        s.kind = KeyState::kAbsent;
        return;
      case Op::kTtl:
        if (r.kind != Reply::kTtl) return Violation(where + ": TTL reply is not an integer");
        if (r.ttl_ms == -2) {
          if (!may_be_gone) return Violation(where + ": TTL says missing for a live key");
          s.kind = KeyState::kAbsent;
          return;
        }
        if (live == Liveness::kSurelyAbsent)
          return Violation(where + ": TTL of a key that is gone");
        if (!s.has_ttl) {
          if (r.ttl_ms != -1) Violation(where + ": TTL of a key without expiry is not -1");
          return;
        }
        // Remaining = expiry - server time, with expiry in [lo, hi] and server time in [sent,
        // acked].
        if (r.ttl_ms < s.expire_lo - acked - kSlackMs || r.ttl_ms > s.expire_hi - sent + kSlackMs) {
          Violation(absl::StrCat(where, ": TTL ", r.ttl_ms, " ms outside the model's window"));
        }
        return;
    }
  }

  const int id_;
  const bool noeviction_;
  std::mt19937 rng_;
  std::unique_ptr<crabcache::v1::Cache::Stub> stub_;
  std::unique_ptr<fastpath::Client> fp_;
  std::unique_ptr<grpc::ClientContext> stream_ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<BatchRequest, BatchResponse>> stream_;
  int stream_batches_ = 0;
  uint64_t batch_id_ = 0;
  uint64_t next_version_ = 1;
  std::vector<KeyState> durable_;
  std::vector<KeyState> churn_;
};

// ---- Chaos ----

// With auth on: wrong tokens, then the right one; or a request before AUTH (ERROR and close).
void ChaosAuth(std::mt19937& rng) {
  auto c = fastpath::Client::Connect(
      {.port = absl::GetFlag(FLAGS_fastpath_port), .timeout = absl::Seconds(10)});
  if (!c.ok()) return;
  fastpath::Client& client = **c;
  if (rng() % 2 == 0) {
    if (client.Auth("wrong-token-0123456789").code() != absl::StatusCode::kUnauthenticated ||
        !client.Auth(*token).ok() || !client.Ping().ok()) {
      Violation("chaos: a wrong then a right token did not end authenticated");
    }
    return;
  }
  client.QueuePing();
  (void)client.Flush();
  auto reply = client.ReadReply();
  if (!reply.ok() || reply->type != fastpath::ReplyType::kError || !client.WaitForClose().ok()) {
    Violation("chaos: a request before AUTH was not answered with ERROR and a close");
  }
}

void ChaosFastPath(std::mt19937& rng, int id) {
  if (!token->empty() && rng() % 7 == 0) return ChaosAuth(rng);
  std::unique_ptr<fastpath::Client> c = ConnectFastPath();
  if (c == nullptr) return;
  fastpath::Client& client = *c;
  const std::string key = absl::StrCat("chaos", id, ":", rng() % 512);
  switch (rng() % 6) {
    case 0: {  // Pipeline, then hang up without reading (or after half the replies).
      const int n = 10 + static_cast<int>(rng() % 200);
      for (int i = 0; i < n; ++i) {
        if (i % 2 == 0) {
          client.QueuePut(key, std::string(1 + rng() % 4096, 'c'), std::optional<uint64_t>(1));
        } else {
          client.QueueGet(key);
        }
      }
      (void)client.Flush();
      if (rng() % 2 == 0) {
        for (int i = 0; i < n / 2; ++i) (void)client.ReadReply();
      }
      return;
    }
    case 1: {  // Malformed frames: ERROR, then close.
      static const std::string kBad[] = {
          std::string("\x42", 1), std::string("*1\r\n$4\r\nPING\r\n"),
          std::string("\x03\xff\xff\xff\x7f", 5),
          std::string("\x02\x01\x00\x00\x00k\x01\x00\x00\x00v\x07", 12)};
      client.QueuePing();
      client.QueueRaw(kBad[rng() % 4]);
      (void)client.Flush();
      auto pong = client.ReadReply();
      auto err = client.ReadReply();
      if (!pong.ok() || pong->type != fastpath::ReplyType::kPong || !err.ok() ||
          err->type != fastpath::ReplyType::kError || !client.WaitForClose().ok()) {
        Violation("chaos: a malformed frame was not answered with ERROR and a close");
      }
      return;
    }
    case 2:  // A partial frame, then hang up.
      client.QueueRaw(std::string("\x02\x05\x00\x00\x00part", 9));
      (void)client.Flush();
      return;
    case 3: {  // AUTH again: while auth is off an ERROR; either way the connection stays.
      const absl::Status s = client.Auth(token->empty() ? "some-token-0123456789" : *token);
      const bool expected =
          token->empty() ? s.code() == absl::StatusCode::kFailedPrecondition : s.ok();
      if (!expected || !client.Ping().ok()) {
        Violation("chaos: AUTH on an open connection did not leave it usable");
      }
      return;
    }
    case 4:  // Large values near the limit: the memory limit must hold.
      (void)client.Put(key, std::string(256 << 10, 'L'), std::optional<uint64_t>(1));
      return;
    default:  // TTL churn on chaos keys.
      for (int i = 0; i < 50; ++i) client.QueuePut(key + std::to_string(i), "x", uint64_t{0});
      (void)client.Flush();
      for (int i = 0; i < 50; ++i) (void)client.ReadReply();
      return;
  }
}

void ChaosGrpc(std::mt19937& rng, int id, crabcache::v1::Cache::Stub* stub) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!token->empty() && rng() % 8 == 0) {  // No token: refused.
    crabcache::v1::PingRequest ping;
    crabcache::v1::PingResponse ignored;
    if (stub->Ping(&ctx, ping, &ignored).error_code() != grpc::StatusCode::UNAUTHENTICATED) {
      Violation("chaos: a gRPC call without a token was not UNAUTHENTICATED");
    }
    return;
  }
  Authorize(&ctx);
  switch (rng() % 3) {
    case 0: {  // A few batches, then cancel mid-stream.
      auto stream = stub->BatchExecute(&ctx);
      for (int b = 0; b < 3; ++b) {
        BatchRequest req;
        req.set_id(b);
        for (int i = 0; i < 50; ++i) {
          auto* set = req.add_commands()->mutable_set();
          set->set_key(absl::StrCat("gchaos", id, ":", rng() % 512));
          set->set_value(std::string(1 + rng() % 2048, 'g'));
          set->set_ttl_ms(500 + rng() % 2000);
        }
        req.add_commands();  // No operation: an ERROR result, the stream goes on.
        if (!stream->Write(req)) break;
      }
      ctx.TryCancel();
      BatchResponse ignored;
      while (stream->Read(&ignored)) {
      }
      (void)stream->Finish();
      return;
    }
    case 1: {  // An oversized batch fails the stream with INVALID_ARGUMENT.
      auto stream = stub->BatchExecute(&ctx);
      BatchRequest req;
      for (int i = 0; i <= absl::GetFlag(FLAGS_max_batch_commands); ++i) {
        req.add_commands()->mutable_ping();
      }
      stream->Write(req);
      stream->WritesDone();
      BatchResponse ignored;
      while (stream->Read(&ignored)) {
      }
      if (stream->Finish().error_code() != grpc::StatusCode::INVALID_ARGUMENT) {
        Violation("chaos: an oversized batch did not fail with INVALID_ARGUMENT");
      }
      return;
    }
    default: {  // Unary calls with TTLs.
      crabcache::v1::SetRequest set;
      set.set_key(absl::StrCat("uchaos", id, ":", rng() % 512));
      set.set_value(std::string(1 + rng() % 1024, 'u'));
      set.set_ttl_ms(1 + rng() % 1500);
      crabcache::v1::SetResponse ignored;
      (void)stub->Set(&ctx, set, &ignored);
      return;
    }
  }
}

int Main() {
  if (const std::string path = absl::GetFlag(FLAGS_token_file); !path.empty()) {
    std::ifstream in(path);
    std::stringstream content;
    content << in.rdbuf();
    absl::StatusOr<std::vector<std::string>> tokens = auth::ParseTokenFile(content.str());
    if (!tokens.ok()) {
      std::fprintf(stderr, "--token_file: %s\n", std::string(tokens.status().message()).c_str());
      return 2;
    }
    *token = tokens->front();
  }
  const bool noeviction = absl::GetFlag(FLAGS_eviction) == "noeviction";
  auto channel =
      grpc::CreateChannel(absl::GetFlag(FLAGS_grpc_target), grpc::InsecureChannelCredentials());
  const auto start = Clock::now();
  const auto until = start + std::chrono::seconds(absl::GetFlag(FLAGS_seconds));
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < absl::GetFlag(FLAGS_workers); ++i) {
    workers.push_back(std::make_unique<Worker>(i, noeviction, channel));
    if (!workers.back()->Connect()) {
      std::fprintf(stderr, "cannot connect to the fast path\n");
      return 2;
    }
  }
  std::vector<std::thread> threads;
  std::atomic<int> loaded{0};  // Chaos starts once every durable set is in, so it always fits.
  for (auto& w : workers) {
    threads.emplace_back([&w, &loaded, until] {
      w->LoadDurable();
      loaded.fetch_add(1);
      w->Loop(until);
      w->FinalCheck();
    });
  }
  std::atomic<bool> stop{false};
  for (int i = 0; i < absl::GetFlag(FLAGS_chaos); ++i) {
    threads.emplace_back([i, &stop, &loaded, channel] {
      while (loaded.load() < absl::GetFlag(FLAGS_workers) && !stop.load()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      std::mt19937 rng(static_cast<uint32_t>(1000 + i));
      auto stub = crabcache::v1::Cache::NewStub(channel);
      while (!stop.load()) {
        if (rng() % 2 == 0) {
          ChaosFastPath(rng, i);
        } else {
          ChaosGrpc(rng, i, stub.get());
        }
        totals.chaos_actions.fetch_add(1);
      }
    });
  }
  for (int i = 0; i < absl::GetFlag(FLAGS_workers); ++i) threads[i].join();
  stop = true;
  for (size_t i = absl::GetFlag(FLAGS_workers); i < threads.size(); ++i) threads[i].join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const double hit_ratio = totals.durable_gets.load() == 0
                               ? 1.0
                               : static_cast<double>(totals.durable_hits.load()) /
                                     static_cast<double>(totals.durable_gets.load());
  std::printf(
      "{\"seconds\":%.1f,\"commands\":%llu,\"ops_per_second\":%.0f,\"fastpath_batches\":%llu,"
      "\"grpc_batches\":%llu,\"oom_errors\":%llu,\"durable_gets\":%llu,"
      "\"durable_hit_ratio\":%.4f,\"expired_seen\":%llu,\"chaos_actions\":%llu,"
      "\"violations\":%llu}\n",
      seconds, static_cast<unsigned long long>(totals.commands.load()),
      static_cast<double>(totals.commands.load()) / seconds,
      static_cast<unsigned long long>(totals.fastpath_batches.load()),
      static_cast<unsigned long long>(totals.grpc_batches.load()),
      static_cast<unsigned long long>(totals.oom_errors.load()),
      static_cast<unsigned long long>(totals.durable_gets.load()), hit_ratio,
      static_cast<unsigned long long>(totals.expired_seen.load()),
      static_cast<unsigned long long>(totals.chaos_actions.load()),
      static_cast<unsigned long long>(totals.violations.load()));
  if (hit_ratio < absl::GetFlag(FLAGS_min_durable_hit_ratio)) {
    std::fprintf(stderr, "durable hit ratio %.4f below %.4f\n", hit_ratio,
                 absl::GetFlag(FLAGS_min_durable_hit_ratio));
    return 1;
  }
  return totals.violations.load() == 0 ? 0 : 1;
}

}  // namespace
}  // namespace crabcache::soak

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return crabcache::soak::Main();
}
