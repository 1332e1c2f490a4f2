#include "bench/grpc_load.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/protocol.h"
#include "bench/run_control.h"
#include "crabcache/v1/cache.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace crabcache::bench {
namespace {

namespace pb = ::crabcache::v1;

constexpr uint64_t kStallNs = 10'000'000'000ull;
constexpr size_t kPrefillBatch = 1000;

std::shared_ptr<grpc::Channel> MakeChannel(const LoadOptions& o) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // Its own TCP connection.
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  const std::string target = o.host.find(':') != std::string::npos
                                 ? absl::StrCat("[", o.host, "]:", o.port)
                                 : absl::StrCat(o.host, ":", o.port);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

Reply ToReply(const pb::Result& r) {
  switch (r.code()) {
    case pb::OK:
      return {ReplyKind::kOk, {}};
    case pb::HIT:
      return {ReplyKind::kValue, r.value()};
    case pb::MISS:
      return {ReplyKind::kNull, {}};
    case pb::ERROR:
      return {ReplyKind::kError, r.error()};
    default:
      return {ReplyKind::kOther, {}};
  }
}

class Worker;

// Something with completion-queue events. Each event's tag is a Tag naming its owner and kind.
class Caller {
 public:
  virtual ~Caller() = default;
  virtual void OnEvent(int kind, bool ok) = 0;
  virtual void Cancel() = 0;
  virtual bool in_flight() const = 0;
};

struct Tag {
  Caller* owner;
  int kind;
};

// State shared by the callers of one Worker (one thread).
struct WorkerContext {
  const KeySpace& keys;
  const LoadOptions& options;
  RunControl* control;
  grpc::CompletionQueue* cq;
  OpPicker picker;
  Rng rng;
  LoadResult result;
  int active = 0;  // Callers not finished yet.
  uint64_t last_progress_ns = 0;

  // Checks one result; records a failure and returns false when it is wrong.
  bool Verify(Op op, uint64_t key, const Reply& reply) {
    const Check check = CheckReply(keys, op, key, reply);
    if (!Acceptable(check, !options.prefill)) {
      control->Fail(DescribeFailure(keys, op, key, reply, check));
      return false;
    }
    if (control->measuring() && op == Op::kGet) {
      ++result.gets;
      if (check == Check::kHit) ++result.get_hits;
    }
    return true;
  }

  void Count(uint64_t ops, uint64_t start_ns) {
    const uint64_t now = NowNs();
    last_progress_ns = now;
    result.verified += ops;
    if (!control->measuring()) return;
    result.latency_ns.Record(now - start_ns, ops);
    result.ops += ops;
    control->AddMeasured(ops);
  }
};

// One BatchExecute stream with one batch in flight at a time.
class BatchStream final : public Caller {
 public:
  BatchStream(WorkerContext* w, pb::Cache::Stub* stub) : w_(w), stub_(stub) {
    const int n = w->options.pipeline;
    for (int i = 0; i < n; ++i) req_.add_commands();
    sent_.resize(static_cast<size_t>(n));
    spare_get_.resize(static_cast<size_t>(n));
    spare_set_.resize(static_cast<size_t>(n));
  }
  ~BatchStream() override {
    for (pb::Get* g : spare_get_) delete g;
    for (pb::Set* s : spare_set_) delete s;
  }

  void Start() {
    ++w_->active;
    stream_ = stub_->PrepareAsyncBatchExecute(&ctx_, w_->cq);
    pending_ = 1;
    stream_->StartCall(&tags_[kStart]);
  }

  void OnEvent(int kind, bool ok) override {
    --pending_;
    if (!ok && kind != kFinish) broken_ = true;
    switch (kind) {
      case kStart:
        if (!broken_) SendBatch();
        break;
      case kRead:
        if (!broken_ && !CheckResponse()) broken_ = failed_ = true;
        break;
      case kWritesDone:
        break;
      case kFinish:
        if (!status_.ok() && !failed_) {
          w_->control->Fail(absl::StrCat("BatchExecute stream failed: ", status_.error_message(),
                                         " (code ", status_.error_code(), ")"));
        }
        --w_->active;
        return;
    }
    if (pending_ > 0) return;
    if (broken_ || closing_) {
      // A broken stream is cancelled so Finish returns at once instead of waiting for a server
      // that still expects requests.
      if (broken_) ctx_.TryCancel();
      pending_ = 1;
      stream_->Finish(&status_, &tags_[kFinish]);
      return;
    }
    if (kind == kRead || kind == kWrite) {
      w_->Count(sent_.size(), batch_start_ns_);
      SendBatch();
    }
  }

  void Cancel() override { ctx_.TryCancel(); }
  bool in_flight() const override { return pending_ > 0; }

 private:
  enum Kind { kStart, kWrite, kRead, kWritesDone, kFinish, kKinds };

  void SendBatch() {
    if (w_->control->stopping()) {
      closing_ = true;
      pending_ = 1;
      stream_->WritesDone(&tags_[kWritesDone]);
      return;
    }
    Build();
    pending_ = 2;
    batch_start_ns_ = NowNs();
    stream_->Write(req_, &tags_[kWrite]);
    stream_->Read(&resp_, &tags_[kRead]);
  }

  void Build() {
    req_.set_id(++id_);
    const KeySpace& keys = w_->keys;
    for (size_t i = 0; i < sent_.size(); ++i) {
      const uint64_t key = w_->rng.Below(keys.keys());
      const Op op = w_->picker.NextIsGet(w_->rng) ? Op::kGet : Op::kSet;
      sent_[i] = {key, op};
      pb::Command* c = req_.mutable_commands(static_cast<int>(i));
      std::string* key_bytes;
      if (op == Op::kGet) {
        if (c->has_set()) spare_set_[i] = c->release_set();
        if (!c->has_get()) {
          c->set_allocated_get(spare_get_[i] != nullptr ? spare_get_[i] : new pb::Get);
          spare_get_[i] = nullptr;
        }
        key_bytes = c->mutable_get()->mutable_key();
      } else {
        if (c->has_get()) spare_get_[i] = c->release_get();
        if (!c->has_set()) {
          c->set_allocated_set(spare_set_[i] != nullptr ? spare_set_[i] : new pb::Set);
          spare_set_[i] = nullptr;
        }
        pb::Set* set = c->mutable_set();
        key_bytes = set->mutable_key();
        std::string* value = set->mutable_value();
        value->resize(keys.value_size());
        keys.WriteValue(key, value->data());
      }
      key_bytes->resize(keys.key_size());
      keys.WriteKey(key, key_bytes->data());
    }
  }

  bool CheckResponse() {
    if (resp_.id() != id_ || resp_.results_size() != static_cast<int>(sent_.size())) {
      w_->control->Fail(absl::StrCat("BatchResponse id ", resp_.id(), " with ",
                                     resp_.results_size(), " results answered BatchRequest id ",
                                     id_, " with ", sent_.size(), " commands"));
      return false;
    }
    for (size_t i = 0; i < sent_.size(); ++i) {
      const Reply reply = ToReply(resp_.results(static_cast<int>(i)));
      if (!w_->Verify(sent_[i].op, sent_[i].key, reply)) return false;
    }
    return true;
  }

  struct Sent {
    uint64_t key;
    Op op;
  };

  WorkerContext* const w_;
  pb::Cache::Stub* const stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientAsyncReaderWriter<pb::BatchRequest, pb::BatchResponse>> stream_;
  Tag tags_[kKinds] = {
      {this, kStart}, {this, kWrite}, {this, kRead}, {this, kWritesDone}, {this, kFinish}};
  pb::BatchRequest req_;
  pb::BatchResponse resp_;
  std::vector<Sent> sent_;
  std::vector<pb::Get*> spare_get_;  // Owned; swapped in when a slot turns into a GET.
  std::vector<pb::Set*> spare_set_;
  grpc::Status status_;
  uint64_t id_ = 0;
  uint64_t batch_start_ns_ = 0;
  int pending_ = 0;  // Operations posted and not completed.
  bool closing_ = false;
  bool broken_ = false;
  bool failed_ = false;  // A wrong result was reported already.
};

// One unary Get or Set call in flight at a time, issued again as soon as it completes.
class UnaryCaller final : public Caller {
 public:
  UnaryCaller(WorkerContext* w, pb::Cache::Stub* stub) : w_(w), stub_(stub) {
    get_req_.mutable_key()->resize(w->keys.key_size());
    set_req_.mutable_key()->resize(w->keys.key_size());
    set_req_.mutable_value()->resize(w->keys.value_size());
  }

  void Start() {
    ++w_->active;
    Issue();
  }

  void OnEvent(int /*kind*/, bool ok) override {
    in_flight_ = false;
    if (!ok || !status_.ok()) {
      w_->control->Fail(absl::StrCat("unary ", op_ == Op::kGet ? "Get" : "Set",
                                     " failed: ", status_.error_message(), " (code ",
                                     status_.error_code(), ")"));
      --w_->active;
      return;
    }
    const Reply reply = op_ == Op::kSet     ? Reply{ReplyKind::kOk, {}}
                        : get_resp_.found() ? Reply{ReplyKind::kValue, get_resp_.value()}
                                            : Reply{ReplyKind::kNull, {}};
    if (!w_->Verify(op_, key_, reply)) {
      --w_->active;
      return;
    }
    w_->Count(1, start_ns_);
    Issue();
  }

  void Cancel() override {
    if (ctx_ != nullptr) ctx_->TryCancel();
  }
  bool in_flight() const override { return in_flight_; }

 private:
  void Issue() {
    if (w_->control->stopping()) {
      --w_->active;
      return;
    }
    const KeySpace& keys = w_->keys;
    key_ = w_->rng.Below(keys.keys());
    op_ = w_->picker.NextIsGet(w_->rng) ? Op::kGet : Op::kSet;
    get_call_.reset();  // The readers live in the previous call's arena: drop them first.
    set_call_.reset();
    ctx_ = std::make_unique<grpc::ClientContext>();  // A context serves one call only.
    in_flight_ = true;
    start_ns_ = NowNs();
    if (op_ == Op::kGet) {
      keys.WriteKey(key_, get_req_.mutable_key()->data());
      get_call_ = stub_->PrepareAsyncGet(ctx_.get(), get_req_, w_->cq);
      get_call_->StartCall();
      get_call_->Finish(&get_resp_, &status_, &tag_);
    } else {
      keys.WriteKey(key_, set_req_.mutable_key()->data());
      keys.WriteValue(key_, set_req_.mutable_value()->data());
      set_call_ = stub_->PrepareAsyncSet(ctx_.get(), set_req_, w_->cq);
      set_call_->StartCall();
      set_call_->Finish(&set_resp_, &status_, &tag_);
    }
  }

  WorkerContext* const w_;
  pb::Cache::Stub* const stub_;
  Tag tag_{this, 0};
  std::unique_ptr<grpc::ClientContext> ctx_;
  pb::GetRequest get_req_;
  pb::GetResponse get_resp_;
  pb::SetRequest set_req_;
  pb::SetResponse set_resp_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<pb::GetResponse>> get_call_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<pb::SetResponse>> set_call_;
  grpc::Status status_;
  uint64_t key_ = 0;
  Op op_ = Op::kGet;
  uint64_t start_ns_ = 0;
  bool in_flight_ = false;
};

// One completion queue and the thread that polls it. Not thread-safe: used by one thread.
class Worker {
 public:
  Worker(const KeySpace& keys, const LoadOptions& options, RunControl* control, uint64_t seed)
      : ctx_{keys, options, control, &cq_, OpPicker(options.get_ratio), Rng(seed)} {}

  void Add(pb::Cache::Stub* stub) {
    if (ctx_.options.unary) {
      unary_.push_back(std::make_unique<UnaryCaller>(&ctx_, stub));
    } else {
      streams_.push_back(std::make_unique<BatchStream>(&ctx_, stub));
    }
  }

  void Run() {
    for (auto& s : streams_) s->Start();
    for (auto& u : unary_) u->Start();
    ctx_.last_progress_ns = NowNs();
    bool cancelled = false;
    while (ctx_.active > 0) {
      void* tag = nullptr;
      bool ok = false;
      const auto deadline = std::chrono::system_clock::now() + std::chrono::milliseconds(10);
      const auto status = cq_.AsyncNext(&tag, &ok, deadline);
      if (status == grpc::CompletionQueue::SHUTDOWN) break;
      if (status == grpc::CompletionQueue::GOT_EVENT) {
        Tag* t = static_cast<Tag*>(tag);
        t->owner->OnEvent(t->kind, ok);
        continue;
      }
      const bool stalled = NowNs() - ctx_.last_progress_ns > kStallNs;
      if (!cancelled && (stalled || !ctx_.control->failure().empty())) {
        if (stalled) {
          ctx_.control->Fail(absl::StrCat("no gRPC reply for ", kStallNs / 1e9, " s"));
        }
        for (auto& s : streams_) s->Cancel();
        for (auto& u : unary_) u->Cancel();
        cancelled = true;
      }
    }
    cq_.Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (cq_.Next(&tag, &ok)) {
    }
  }

  const LoadResult& result() const { return ctx_.result; }

 private:
  grpc::CompletionQueue cq_;  // Declared first: callers below post to it.
  WorkerContext ctx_;
  std::vector<std::unique_ptr<BatchStream>> streams_;
  std::vector<std::unique_ptr<UnaryCaller>> unary_;
};

absl::Status Prefill(const KeySpace& keys, const LoadOptions& o, pb::Cache::Stub* stub,
                     LoadResult* result) {
  grpc::ClientContext ctx;
  auto stream = stub->BatchExecute(&ctx);
  pb::BatchRequest req;
  pb::BatchResponse resp;
  const size_t per_batch =
      std::clamp<size_t>((4u << 20) / (keys.key_size() + keys.value_size() + 16), 1, kPrefillBatch);
  for (uint64_t start = 0; start < keys.keys(); start += per_batch) {
    const uint64_t end = std::min<uint64_t>(keys.keys(), start + per_batch);
    req.Clear();
    req.set_id(start + 1);
    for (uint64_t k = start; k < end; ++k) {
      pb::Set* s = req.add_commands()->mutable_set();
      s->set_key(keys.Key(k));
      s->set_value(keys.Value(k));
    }
    if (!stream->Write(req) || !stream->Read(&resp)) {
      const grpc::Status s = stream->Finish();
      return absl::DataLossError("prefill: BatchExecute stream broke: " + s.error_message());
    }
    if (resp.results_size() != static_cast<int>(end - start)) {
      return absl::DataLossError("prefill: BatchResponse has the wrong number of results");
    }
    for (uint64_t k = start; k < end; ++k) {
      const Reply reply = ToReply(resp.results(static_cast<int>(k - start)));
      const Check check = CheckReply(keys, Op::kSet, k, reply);
      if (check != Check::kOk) {
        return absl::DataLossError("prefill: " + DescribeFailure(keys, Op::kSet, k, reply, check));
      }
    }
    result->verified += end - start;
  }
  stream->WritesDone();
  const grpc::Status s = stream->Finish();
  if (!s.ok()) return absl::DataLossError("prefill: stream ended with " + s.error_message());
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<LoadResult> RunGrpcLoad(const KeySpace& keys, const LoadOptions& o) {
  if (o.connections < 1 || o.pipeline < 1 || o.streams < 1 || o.threads < 1) {
    return absl::InvalidArgumentError("connections, pipeline, streams and threads must be >= 1");
  }
  const int channels = std::min(o.connections, o.streams);
  std::vector<std::shared_ptr<grpc::Channel>> pool;
  std::vector<std::unique_ptr<pb::Cache::Stub>> stubs;
  for (int i = 0; i < channels; ++i) {
    pool.push_back(MakeChannel(o));
    if (!pool.back()->WaitForConnected(std::chrono::system_clock::now() +
                                       std::chrono::seconds(10))) {
      return absl::UnavailableError(
          absl::StrCat("cannot connect to the gRPC server at ", o.host, ":", o.port));
    }
    stubs.push_back(pb::Cache::NewStub(pool.back()));
  }
  LoadResult total;
  if (o.prefill || o.load_only) {
    const uint64_t start = NowNs();
    if (absl::Status s = Prefill(keys, o, stubs[0].get(), &total); !s.ok()) return s;
    total.prefill_seconds = static_cast<double>(NowNs() - start) / 1e9;
    if (o.load_only) return total;
  }
  RunControl control;
  const int threads = std::min(o.threads, o.streams);
  std::vector<std::unique_ptr<Worker>> workers;
  for (int t = 0; t < threads; ++t) {
    workers.push_back(std::make_unique<Worker>(keys, o, &control, o.seed + t));
  }
  for (int i = 0; i < o.streams; ++i) workers[i % threads]->Add(stubs[i % channels].get());
  return DriveWorkers(o, control, workers, total, [](Worker& w) { w.Run(); });
}

}  // namespace crabcache::bench
