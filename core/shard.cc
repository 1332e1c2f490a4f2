#include "core/shard.h"

#include "core/log_shard.h"
#include "core/lru_shard.h"

namespace crabcache::core {

std::unique_ptr<Shard> NewShard(const ShardOptions& options) {
  if (options.policy == EvictionPolicy::kLru) return std::make_unique<LruShard>(options);
  return std::make_unique<LogShard>(options);
}

}  // namespace crabcache::core
