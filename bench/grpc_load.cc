// gRPC load: `streams` BatchExecute streams (one client thread each, spread over channels), each
// sending BatchRequests of `pipeline` commands and waiting for the response; or, with --unary,
// one unary Get/Set at a time per stream thread.
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/load.h"
#include "bench/run_control.h"
#include "crabcache/v1/cache.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace crabcache::bench {
namespace {

namespace pb = ::crabcache::v1;

std::shared_ptr<grpc::Channel> MakeChannel(const LoadOptions& o) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // One TCP connection per channel.
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  return grpc::CreateCustomChannel(absl::StrCat(o.host, ":", o.port),
                                   grpc::InsecureChannelCredentials(), args);
}

class StreamWorker {
 public:
  StreamWorker(const BenchConfig& config, std::shared_ptr<grpc::Channel> channel,
               RunControl* control, uint64_t seed)
      : config_(config),
        o_(config.load),
        stub_(pb::Cache::NewStub(std::move(channel))),
        control_(control),
        rng_(seed) {}

  void Run() {
    if (config_.unary) {
      RunUnary();
    } else {
      RunBatches();
    }
  }
  LoadResult& result() { return result_; }

 private:
  bool NextIsGet() { return std::uniform_real_distribution<double>(0, 1)(rng_) < o_.get_ratio; }

  void RunBatches() {
    grpc::ClientContext ctx;
    auto stream = stub_->BatchExecute(&ctx);
    pb::BatchRequest req;
    pb::BatchResponse resp;
    std::vector<std::pair<uint64_t, bool>> sent;  // (key, is_get)
    for (uint64_t id = 1; !control_->stopping(); ++id) {
      req.Clear();
      req.set_id(id);
      sent.clear();
      for (int i = 0; i < o_.pipeline; ++i) {
        const uint64_t key = rng_() % o_.keys;
        const bool get = NextIsGet();
        pb::Command* c = req.add_commands();
        if (get) {
          c->mutable_get()->set_key(KeyFor(key, o_.key_size));
        } else {
          pb::Set* s = c->mutable_set();
          s->set_key(KeyFor(key, o_.key_size));
          s->set_value(ValueFor(key, o_.value_size));
        }
        sent.emplace_back(key, get);
      }
      const uint64_t start = NowNs();
      if (!stream->Write(req) || !stream->Read(&resp)) {
        control_->Fail(absl::StrCat("stream broke: ", stream->Finish().error_message()));
        return;
      }
      const uint64_t latency = NowNs() - start;
      if (resp.id() != id || resp.results_size() != static_cast<int>(sent.size())) {
        return control_->Fail("BatchResponse id or result count does not match its request");
      }
      for (size_t i = 0; i < sent.size(); ++i) {
        if (!Verify(sent[i].first, sent[i].second, resp.results(static_cast<int>(i)))) return;
      }
      Count(sent.size(), latency);
    }
    stream->WritesDone();
    const grpc::Status status = stream->Finish();
    if (!status.ok()) control_->Fail("stream ended with " + status.error_message());
  }

  void RunUnary() {
    while (!control_->stopping()) {
      const uint64_t key = rng_() % o_.keys;
      grpc::ClientContext ctx;
      const uint64_t start = NowNs();
      if (NextIsGet()) {
        pb::GetRequest req;
        pb::GetResponse resp;
        req.set_key(KeyFor(key, o_.key_size));
        const grpc::Status s = stub_->Get(&ctx, req, &resp);
        if (!s.ok() || !resp.found() || resp.value() != ValueFor(key, o_.value_size)) {
          return control_->Fail(
              absl::StrCat("unary Get of key ", key, " wrong: ", s.error_message()));
        }
        ++gets_;
        ++get_hits_;
      } else {
        pb::SetRequest req;
        pb::SetResponse resp;
        req.set_key(KeyFor(key, o_.key_size));
        req.set_value(ValueFor(key, o_.value_size));
        const grpc::Status s = stub_->Set(&ctx, req, &resp);
        if (!s.ok()) return control_->Fail("unary Set failed: " + s.error_message());
      }
      Count(1, NowNs() - start);
    }
  }

  bool Verify(uint64_t key, bool get, const pb::Result& r) {
    if (get) {
      ++gets_;
      if (r.code() == pb::HIT && r.value() == ValueFor(key, o_.value_size)) {
        ++get_hits_;
        return true;
      }
      if (r.code() == pb::MISS && !o_.prefill) return true;
    } else if (r.code() == pb::OK) {
      return true;
    }
    control_->Fail(absl::StrCat("unexpected result for ", get ? "GET" : "SET", " of key ", key,
                                ": code ", r.code(), " ", r.error()));
    return false;
  }

  void Count(size_t ops, uint64_t latency) {
    if (control_->measuring()) {
      for (size_t i = 0; i < ops; ++i) result_.latency_ns.Record(latency);
      result_.ops += ops;
      result_.gets += gets_;
      result_.get_hits += get_hits_;
      control_->AddMeasured(ops);
    }
    gets_ = get_hits_ = 0;
  }

  const BenchConfig& config_;
  const LoadOptions& o_;
  std::unique_ptr<pb::Cache::Stub> stub_;
  RunControl* const control_;
  std::mt19937_64 rng_;
  uint64_t gets_ = 0;
  uint64_t get_hits_ = 0;
  LoadResult result_;
};

absl::Status Prefill(const LoadOptions& o, const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = pb::Cache::NewStub(channel);
  grpc::ClientContext ctx;
  auto stream = stub->BatchExecute(&ctx);
  pb::BatchRequest req;
  pb::BatchResponse resp;
  for (uint64_t start = 0; start < o.keys; start += 1000) {
    req.Clear();
    req.set_id(start);
    for (uint64_t k = start; k < std::min(o.keys, start + 1000); ++k) {
      pb::Set* s = req.add_commands()->mutable_set();
      s->set_key(KeyFor(k, o.key_size));
      s->set_value(ValueFor(k, o.value_size));
    }
    if (!stream->Write(req) || !stream->Read(&resp)) {
      return absl::UnavailableError("prefill stream broke: " + stream->Finish().error_message());
    }
    for (const pb::Result& r : resp.results()) {
      if (r.code() != pb::OK) return absl::DataLossError("prefill SET failed: " + r.error());
    }
  }
  stream->WritesDone();
  const grpc::Status s = stream->Finish();
  return s.ok() ? absl::OkStatus() : absl::UnavailableError(s.error_message());
}

}  // namespace

absl::StatusOr<LoadResult> RunGrpcLoad(const BenchConfig& config) {
  const LoadOptions& o = config.load;
  const int channels = std::max(1, std::min(o.connections, config.streams));
  std::vector<std::shared_ptr<grpc::Channel>> pool;
  for (int i = 0; i < channels; ++i) pool.push_back(MakeChannel(o));
  if (o.prefill) {
    if (absl::Status s = Prefill(o, pool[0]); !s.ok()) return s;
  }
  RunControl control;
  std::vector<std::unique_ptr<StreamWorker>> workers;
  for (int i = 0; i < config.streams; ++i) {
    workers.push_back(
        std::make_unique<StreamWorker>(config, pool[i % channels], &control, o.seed + i));
  }
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&w] { w->Run(); });
  const double seconds = control.Drive(o);
  for (auto& t : threads) t.join();
  if (const std::string failure = control.failure(); !failure.empty()) {
    return absl::DataLossError(failure);
  }
  LoadResult total;
  for (auto& w : workers) {
    total.ops += w->result().ops;
    total.gets += w->result().gets;
    total.get_hits += w->result().get_hits;
    total.latency_ns.Merge(w->result().latency_ns);
  }
  total.seconds = seconds;
  return total;
}

}  // namespace crabcache::bench
