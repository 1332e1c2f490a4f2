// The command table and the shard-local handlers behind it. Argument handling (limits, TTL
// arithmetic) stays here; the shard-local operations live in Store/Shard.
#include <array>
#include <string>

#include "absl/strings/ascii.h"
#include "core/command.h"
#include "core/executor.h"
#include "core/store.h"
#include "core/string_view.h"

namespace crabcache::core {
namespace {

ResultCode Emit(ResultSink& sink, ResultCode code) {
  sink.OnResult(Result{code, {}, 0, absl::StatusCode::kOk});
  return code;
}

ResultCode EmitError(ResultSink& sink, const absl::Status& status) {
  sink.OnResult(Result{ResultCode::kError, ToStd(status.message()), 0, status.code()});
  return ResultCode::kError;
}

ResultCode OpPing(const ExecContext&, const Command&, uint64_t, ResultSink& sink) {
  return Emit(sink, ResultCode::kPong);
}

ResultCode OpSet(const ExecContext& ctx, const Command& c, uint64_t hash, ResultSink& sink) {
  const Millis expire_at = c.has_ttl ? ExpiryAfter(ctx.now, c.ttl_ms) : kNoExpiry;
  const absl::Status status = ctx.store.Set(c.key, hash, c.value, expire_at, ctx.now);
  if (!status.ok()) return EmitError(sink, status);
  return Emit(sink, ResultCode::kOk);
}

ResultCode OpGet(const ExecContext& ctx, const Command& c, uint64_t hash, ResultSink& sink) {
  const bool hit = ctx.store.Get(c.key, hash, ctx.now, [&](std::string_view v) {
    sink.OnResult(Result{ResultCode::kHit, v, 0, absl::StatusCode::kOk});
  });
  return hit ? ResultCode::kHit : Emit(sink, ResultCode::kMiss);
}

ResultCode OpDelete(const ExecContext& ctx, const Command& c, uint64_t hash, ResultSink& sink) {
  const bool removed = ctx.store.Delete(c.key, hash, ctx.now);
  return Emit(sink, removed ? ResultCode::kOk : ResultCode::kNotFound);
}

ResultCode OpExpire(const ExecContext& ctx, const Command& c, uint64_t hash, ResultSink& sink) {
  const absl::StatusOr<bool> found =
      ctx.store.TryExpire(c.key, hash, ExpiryAfter(ctx.now, c.ttl_ms), ctx.now);
  if (!found.ok()) return EmitError(sink, found.status());
  return Emit(sink, *found ? ResultCode::kOk : ResultCode::kNotFound);
}

ResultCode OpTtl(const ExecContext& ctx, const Command& c, uint64_t hash, ResultSink& sink) {
  const int64_t ttl = ctx.store.TtlMs(c.key, hash, ctx.now);
  sink.OnResult(Result{ResultCode::kTtl, {}, ttl, absl::StatusCode::kOk});
  return ResultCode::kTtl;
}

ResultCode OpStats(const ExecContext& ctx, const Command&, uint64_t, ResultSink& sink) {
  const std::string json = ctx.store.Stats().ToJson();
  sink.OnResult(Result{ResultCode::kStats, json, 0, absl::StatusCode::kOk});
  return ResultCode::kStats;
}

constexpr std::array<CommandSpec, kNumCommands> kTable = {{
    {CommandId::kPing, "ping", kFlagReadOnly, &OpPing},
    {CommandId::kSet, "set", kFlagWrite | kFlagHasKey | kFlagHasValue | kFlagHasTtl, &OpSet},
    {CommandId::kGet, "get", kFlagReadOnly | kFlagHasKey, &OpGet},
    {CommandId::kDelete, "delete", kFlagWrite | kFlagHasKey, &OpDelete},
    {CommandId::kExpire, "expire", kFlagWrite | kFlagHasKey | kFlagHasTtl, &OpExpire},
    {CommandId::kTtl, "ttl", kFlagReadOnly | kFlagHasKey, &OpTtl},
    {CommandId::kStats, "stats", kFlagReadOnly, &OpStats},
}};

// The table is indexed by CommandId; keep the two in step.
constexpr bool TableMatchesIds() {
  for (size_t i = 0; i < kTable.size(); ++i) {
    if (static_cast<size_t>(kTable[i].id) != i) return false;
  }
  return true;
}
static_assert(TableMatchesIds(), "kTable must be ordered by CommandId");

}  // namespace

absl::Span<const CommandSpec> CommandTable() { return kTable; }

std::optional<CommandId> CommandIdFromName(std::string_view name) {
  std::string lower = absl::AsciiStrToLower(ToAbsl(name));
  if (lower == "del") lower = "delete";
  if (lower == "put") lower = "set";
  for (const CommandSpec& spec : kTable) {
    if (spec.name == lower) return spec.id;
  }
  return std::nullopt;
}

}  // namespace crabcache::core
