#include "server/metrics.h"

#include <algorithm>
#include <bit>
#include <limits>
#include <map>

namespace crabcache::server {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

constexpr std::memory_order kRelaxed = std::memory_order_relaxed;

// The bucket bounds as integers (commands; nanoseconds), so recording a batch compares integers
// instead of converting to double and binary-searching (77 of the ~170 instructions RecordBatch
// took per batch under callgrind).
template <size_t N>
constexpr std::array<uint64_t, N> Scaled(const std::array<double, N>& bounds, double scale) {
  std::array<uint64_t, N> out{};
  for (size_t i = 0; i < N; ++i) out[i] = static_cast<uint64_t>(bounds[i] * scale + 0.5);
  return out;
}
constexpr std::array<uint64_t, kBatchCommandBuckets.size()> kCommandBounds =
    Scaled(kBatchCommandBuckets, 1);
constexpr std::array<uint64_t, kBatchSecondsBuckets.size()> kNanosBounds =
    Scaled(kBatchSecondsBuckets, 1e9);
static_assert(kNanosBounds[0] == 2500 && kCommandBounds[12] == 16384);

// The index of the first bound >= value (the bucket whose "le" holds it), N for +Inf. A linear
// scan: the arrays are short and common values sit in the first buckets.
template <size_t N>
size_t BucketOf(uint64_t value, const std::array<uint64_t, N>& bounds) {
  size_t i = 0;
  while (i < N && value > bounds[i]) ++i;
  return i;
}

ClientMetric::Label Label(std::string name, std::string value) {
  return ClientMetric::Label{std::move(name), std::move(value)};
}

template <size_t N>
ClientMetric Histogram(const std::array<double, N>& bounds,
                       const std::array<uint64_t, N + 1>& counts, uint64_t total, double sum,
                       std::vector<ClientMetric::Label> labels) {
  ClientMetric m;
  m.label = std::move(labels);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < N; ++i) {
    cumulative += counts[i];
    m.histogram.bucket.push_back({cumulative, bounds[i]});
  }
  m.histogram.bucket.push_back({total, std::numeric_limits<double>::infinity()});
  m.histogram.sample_count = total;
  m.histogram.sample_sum = sum;
  return m;
}

}  // namespace

// Hands out blocks and keeps every block ever handed out, so their counts are summed for the
// lifetime of the Metrics object even after the thread that wrote them exits.
class Metrics::BlockRegistry {
 public:
  Block* Acquire() {
    core::MutexLock lock(&mu_);
    if (!free_.empty()) {
      Block* b = free_.back();
      free_.pop_back();
      return b;
    }
    blocks_.push_back(std::make_unique<Block>());
    return blocks_.back().get();
  }
  void Release(Block* block) {
    core::MutexLock lock(&mu_);
    free_.push_back(block);
  }
  // Calls fn(block) for every block, under the registry's lock (blocks are never freed while
  // the registry lives; their cells are read with relaxed loads).
  template <typename Fn>
  void ForEach(Fn fn) const {
    core::MutexLock lock(&mu_);
    for (const auto& b : blocks_) fn(*b);
  }

 private:
  mutable core::Mutex mu_;
  std::vector<std::unique_ptr<Block>> blocks_ ABSL_GUARDED_BY(mu_);
  std::vector<Block*> free_ ABSL_GUARDED_BY(mu_);
};

// A thread's block for one Metrics instance (the last one it recorded into). Returning the block
// at thread exit lets short-lived threads (gRPC grows and shrinks its pool) reuse blocks instead
// of adding one each.
class Metrics::ThreadSlot {
 public:
  ~ThreadSlot() { Reset(); }
  Block* For(uint64_t id, const std::shared_ptr<BlockRegistry>& registry) {
    if (id != id_) {
      Reset();
      block_ = registry->Acquire();
      registry_ = registry;
      id_ = id;
    }
    return block_;
  }

 private:
  void Reset() {
    if (registry_ != nullptr) registry_->Release(block_);
    registry_.reset();
    block_ = nullptr;
    id_ = 0;
  }
  uint64_t id_ = 0;
  std::shared_ptr<BlockRegistry> registry_;
  Block* block_ = nullptr;
};

namespace {
std::atomic<uint64_t> next_metrics_id{1};
}  // namespace

Metrics::Metrics(std::string version, std::string git_commit)
    : id_(next_metrics_id.fetch_add(1, kRelaxed)),
      version_(std::move(version)),
      git_commit_(std::move(git_commit)),
      registry_(std::make_shared<BlockRegistry>()) {}

Metrics::~Metrics() = default;

Metrics::Block& Metrics::MyBlock() {
  // The common case reads a trivially destructible thread_local (no TLS guard, no call); the
  // ThreadSlot, which hands the block back at thread exit, is consulted only on a change.
  struct Last {
    uint64_t id;
    Block* block;
  };
  thread_local Last last{0, nullptr};
  if (last.id == id_) [[likely]]
    return *last.block;
  thread_local ThreadSlot slot;
  last = {id_, slot.For(id_, registry_)};
  return *last.block;
}

void Metrics::RecordBatch(const core::BatchMetrics& batch) {
  PerFrontend& fe = MyBlock().fe[static_cast<size_t>(batch.frontend)];
  for (uint32_t touched = batch.touched; touched != 0; touched &= touched - 1) {
    const int cell = std::countr_zero(touched);
    fe.commands[cell].Add(batch.counts[cell / core::kNumOutcomes][cell % core::kNumOutcomes]);
  }
  fe.size_sum.Add(batch.commands);
  fe.size_buckets[BucketOf(batch.commands, kCommandBounds)].Add(1);
  fe.latency_sum_ns.Add(batch.latency_ns);
  fe.latency_buckets[BucketOf(batch.latency_ns, kNanosBounds)].Add(1);
}

void Metrics::AddSource(Source source) {
  core::MutexLock lock(&mu_);
  sources_.push_back(std::move(source));
}

void Metrics::AddCounter(const std::string& name, const std::string& help, Labels labels,
                         std::function<double()> read) {
  AddSource(Source{name, help, true, std::move(labels), std::move(read)});
}

void Metrics::AddGauge(const std::string& name, const std::string& help, Labels labels,
                       std::function<double()> read) {
  AddSource(Source{name, help, false, std::move(labels), std::move(read)});
}

void Metrics::AddStore(const core::Store* store) {
  AddGauge("crabcache_keys", "Live keys in the store (expired keys not yet reclaimed included).",
           {}, [store] { return static_cast<double>(store->Stats().keys); });
  AddGauge("crabcache_memory_used_bytes",
           "Bytes accounted to entries, index and eviction metadata.", {},
           [store] { return static_cast<double>(store->Stats().memory_used_bytes); });
  AddGauge("crabcache_memory_limit_bytes", "The --max_memory limit in bytes (0: unlimited).", {},
           [store] { return static_cast<double>(store->Stats().memory_limit_bytes); });
  const std::string policy(core::EvictionPolicyName(store->Stats().eviction));
  AddCounter("crabcache_evictions_total", "Entries evicted to stay under the memory limit.",
             {{"policy", policy}},
             [store] { return static_cast<double>(store->Stats().evictions); });
  AddCounter("crabcache_expirations_total",
             "Expired entries reclaimed (on access, by eviction or by the sweeper).",
             {{"policy", policy}},
             [store] { return static_cast<double>(store->Stats().expirations); });
}

void Metrics::CollectBatches(std::vector<MetricFamily>* out) const {
  MetricFamily commands{"crabcache_commands_total",
                        "Commands executed, by front end, command and outcome.",
                        MetricType::Counter,
                        {}};
  MetricFamily sizes{"crabcache_batch_commands",
                     "Commands per executed batch, by front end.",
                     MetricType::Histogram,
                     {}};
  MetricFamily latency{"crabcache_batch_duration_seconds",
                       "Time spent executing one batch in the store, by front end.",
                       MetricType::Histogram,
                       {}};
  for (size_t f = 0; f < core::kNumFrontends; ++f) {
    std::array<uint64_t, kCmdCells> cmd{};
    std::array<uint64_t, kBatchCommandBuckets.size() + 1> size_buckets{};
    std::array<uint64_t, kBatchSecondsBuckets.size() + 1> latency_buckets{};
    uint64_t size_sum = 0, latency_sum_ns = 0;
    registry_->ForEach([&](const Block& block) {
      const PerFrontend& fe = block.fe[f];
      for (size_t i = 0; i < kCmdCells; ++i) cmd[i] += fe.commands[i].Get();
      for (size_t i = 0; i < size_buckets.size(); ++i) size_buckets[i] += fe.size_buckets[i].Get();
      for (size_t i = 0; i < latency_buckets.size(); ++i) {
        latency_buckets[i] += fe.latency_buckets[i].Get();
      }
      size_sum += fe.size_sum.Get();
      latency_sum_ns += fe.latency_sum_ns.Get();
    });
    // Buckets and count are read separately; derive the count from the buckets so the
    // exposition is always self-consistent.
    uint64_t size_total = 0, latency_total = 0;
    for (uint64_t n : size_buckets) size_total += n;
    for (uint64_t n : latency_buckets) latency_total += n;
    const std::string frontend(core::FrontendName(static_cast<core::Frontend>(f)));
    for (size_t c = 0; c < core::kNumCommands; ++c) {
      for (size_t o = 0; o < core::kNumOutcomes; ++o) {
        ClientMetric m;
        m.label = {Label("command", std::string(core::CommandTable()[c].name)),
                   Label("frontend", frontend),
                   Label("outcome", std::string(core::OutcomeName(static_cast<core::Outcome>(o))))};
        m.counter.value = static_cast<double>(cmd[c * core::kNumOutcomes + o]);
        commands.metric.push_back(std::move(m));
      }
    }
    sizes.metric.push_back(Histogram(kBatchCommandBuckets, size_buckets, size_total,
                                     static_cast<double>(size_sum), {Label("frontend", frontend)}));
    latency.metric.push_back(Histogram(kBatchSecondsBuckets, latency_buckets, latency_total,
                                       static_cast<double>(latency_sum_ns) * 1e-9,
                                       {Label("frontend", frontend)}));
  }
  out->push_back(std::move(commands));
  out->push_back(std::move(sizes));
  out->push_back(std::move(latency));
}

std::vector<MetricFamily> Metrics::Collect() const {
  std::vector<MetricFamily> out;
  CollectBatches(&out);
  MetricFamily build{
      "crabcache_build_info", "Build information; the value is always 1.", MetricType::Gauge, {}};
  ClientMetric info;
  info.label = {Label("commit", git_commit_), Label("version", version_)};
  info.gauge.value = 1;
  build.metric.push_back(std::move(info));
  out.push_back(std::move(build));

  // Group scrape-time sources by name, in registration order.
  std::map<std::string, size_t> index;
  core::MutexLock lock(&mu_);
  for (const Source& s : sources_) {
    auto [it, fresh] = index.emplace(s.name, out.size());
    if (fresh) {
      out.push_back(
          MetricFamily{s.name, s.help, s.counter ? MetricType::Counter : MetricType::Gauge, {}});
    }
    ClientMetric m;
    for (const auto& [k, v] : s.labels) m.label.push_back(Label(k, v));
    std::sort(m.label.begin(), m.label.end());
    const double value = s.read();
    if (s.counter) {
      m.counter.value = value;
    } else {
      m.gauge.value = value;
    }
    out[it->second].metric.push_back(std::move(m));
  }
  return out;
}

}  // namespace crabcache::server
