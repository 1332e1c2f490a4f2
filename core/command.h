// Commands and results: the one vocabulary both front ends translate into and out of.
//
// A Command holds views into the front end's input buffer (no copy of keys or values on the way
// in). Results are delivered one by one, in request order, to a ResultSink the front end owns, so
// a GET hit is copied exactly once: by the sink, straight into the front end's output.
#ifndef CRABCACHE_CORE_COMMAND_H_
#define CRABCACHE_CORE_COMMAND_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace crabcache::core {

enum class CommandId : uint8_t {
  kPing = 0,
  kSet = 1,
  kGet = 2,
  kDelete = 3,
  kExpire = 4,
  kTtl = 5,
  kStats = 6,
};
inline constexpr size_t kNumCommands = 7;

// One parsed command. Views must stay valid until Executor::Execute returns.
struct Command {
  CommandId id = CommandId::kPing;
  std::string_view key;
  std::string_view value;  // kSet only.
  // kSet: the key expires ttl_ms after the batch's time if has_ttl (ttl_ms == 0: at once).
  // kExpire: the key expires ttl_ms after the batch's time (has_ttl is ignored).
  uint64_t ttl_ms = 0;
  bool has_ttl = false;

  static Command Ping() { return {CommandId::kPing, {}, {}, 0, false}; }
  static Command Set(std::string_view key, std::string_view value) {
    return {CommandId::kSet, key, value, 0, false};
  }
  static Command SetWithTtl(std::string_view key, std::string_view value, uint64_t ttl_ms) {
    return {CommandId::kSet, key, value, ttl_ms, true};
  }
  static Command Get(std::string_view key) { return {CommandId::kGet, key, {}, 0, false}; }
  static Command Delete(std::string_view key) { return {CommandId::kDelete, key, {}, 0, false}; }
  static Command Expire(std::string_view key, uint64_t ttl_ms) {
    return {CommandId::kExpire, key, {}, ttl_ms, true};
  }
  static Command Ttl(std::string_view key) { return {CommandId::kTtl, key, {}, 0, false}; }
  static Command Stats() { return {CommandId::kStats, {}, {}, 0, false}; }
};

// What a command produced. Front ends map each code to exactly one reply form:
//   kOk       SET stored; DEL removed an existing key; EXPIRE updated an existing key.
//   kPong     PING.
//   kHit      GET found the key; `value` holds its bytes.
//   kMiss     GET did not find the key (absent or expired).
//   kNotFound DEL or EXPIRE of a key that does not exist.
//   kTtl      TTL; `ttl_ms` is the remaining time, -1 without expiry, -2 for a missing key.
//   kStats    STATS; `value` holds a JSON object.
//   kError    the command could not be executed; `error` and `value` (message) say why. The
//             codes used: kInvalidArgument (a limit), kResourceExhausted (out of memory).
enum class ResultCode : uint8_t { kOk, kPong, kHit, kMiss, kNotFound, kTtl, kStats, kError };

inline constexpr int64_t kTtlNoExpiry = -1;
inline constexpr int64_t kTtlMissing = -2;

struct Result {
  ResultCode code = ResultCode::kOk;
  std::string_view value;
  int64_t ttl_ms = 0;
  absl::StatusCode error = absl::StatusCode::kOk;
};

// Receives results in request order, one call per command.
//
// For kHit, `result.value` points into the store and is valid only during the call, which runs
// with a shard lock held: copy the bytes, do no I/O, and never call back into the store or the
// executor from here. A sink is used by one batch at a time; it need not be thread-safe.
//
// A sink may end a batch early (the fast path does when its unsent output reaches its
// backpressure limit): RequestStop() from OnResult, and the executor runs no further command of
// that batch and returns how many it ran. It is a plain member, not a virtual call, so the
// executor's per-command check costs one load.
class ResultSink {
 public:
  virtual ~ResultSink() = default;
  virtual void OnResult(const Result& result) = 0;

  bool stop_requested() const { return stop_requested_; }

 protected:
  // The executor stops after the result being delivered.
  void RequestStop() { stop_requested_ = true; }
  // The owner clears it before reusing the sink for another batch.
  void ClearStop() { stop_requested_ = false; }

 private:
  bool stop_requested_ = false;
};

// Flags in the command table.
enum CommandFlag : uint32_t {
  kFlagReadOnly = 1u << 0,  // Never changes the store.
  kFlagWrite = 1u << 1,     // May add, change or remove a key.
  kFlagHasKey = 1u << 2,    // `key` is used.
  kFlagHasValue = 1u << 3,  // `value` is used.
  kFlagHasTtl = 1u << 4,    // `ttl_ms` is used.
};

class Store;
struct ExecContext;

// One row of the command table that every front end shares. `name` is lower case and is the
// metrics label. `flags` describe the command: whether it writes and which arguments it uses.
// The executor acts on kFlagHasKey (hash the key, check max_key_bytes) and kFlagHasValue (check
// max_value_bytes); the others document. There is no arity: each front end's frame or message
// type carries exactly the fields of its command, so there is nothing left to count.
struct CommandSpec {
  CommandId id;
  std::string_view name;
  uint32_t flags;
  // Emits exactly one result to `sink` and returns its code (the executor counts outcomes).
  // `hash` is Store::Hash(command.key) when the command has a key (kFlagHasKey), else 0.
  ResultCode (*handler)(const ExecContext& ctx, const Command& command, uint64_t hash,
                        ResultSink& sink);
};

// The whole table, indexed by CommandId.
absl::Span<const CommandSpec> CommandTable();
inline const CommandSpec& LookupCommand(CommandId id) {
  return CommandTable()[static_cast<size_t>(id)];
}
// Case-insensitive lookup by name ("get", "SET", "del" and "delete" both work).
std::optional<CommandId> CommandIdFromName(std::string_view name);

}  // namespace crabcache::core

#endif  // CRABCACHE_CORE_COMMAND_H_
