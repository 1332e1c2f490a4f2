#include "service/translate.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/metrics.h"
#include "core/string_view.h"

namespace crabcache::service {

using crabcache::v1::Command;

std::string ErrorText(const core::Result& result) {
  return absl::StrCat(absl::StatusCodeToString(result.error), ": ", core::ToAbsl(result.value));
}

std::optional<core::Command> ToCoreCommand(const Command& command) {
  switch (command.op_case()) {
    case Command::kPing:
      return core::Command::Ping();
    case Command::kSet: {
      const auto& set = command.set();
      if (set.ttl_ms() == 0) return core::Command::Set(set.key(), set.value());
      return core::Command::SetWithTtl(set.key(), set.value(), set.ttl_ms());
    }
    case Command::kGet:
      return core::Command::Get(command.get().key());
    case Command::kDelete:
      return core::Command::Delete(command.delete_().key());
    case Command::kExpire:
      return core::Command::Expire(command.expire().key(), command.expire().ttl_ms());
    case Command::kTtl:
      return core::Command::Ttl(command.ttl().key());
    case Command::kStats:
      return core::Command::Stats();
    case Command::OP_NOT_SET:
      break;
  }
  return std::nullopt;
}

void ToProtoResult(const core::Result& result, crabcache::v1::Result* out) {
  out->set_code(ToProtoCode(result));
  switch (result.code) {
    case core::ResultCode::kHit:
    case core::ResultCode::kStats:
      out->set_value(result.value.data(), result.value.size());
      break;
    case core::ResultCode::kTtl:
      out->set_ttl_ms(result.ttl_ms);
      break;
    case core::ResultCode::kError:
      out->set_error(ErrorText(result));
      break;
    default:
      break;
  }
}

void ExecuteBatch(const core::Executor& executor, const crabcache::v1::BatchRequest& request,
                  crabcache::v1::BatchResponse* response) {
  response->set_id(request.id());
  auto* results = response->mutable_results();
  results->Reserve(request.commands_size());
  ProtoResultSink sink(results);

  // thread_local: the reactor runs on gRPC's threads; reusing the vector avoids one allocation
  // per batch. It holds only views and is cleared before return.
  thread_local std::vector<core::Command> commands;
  commands.clear();
  for (const Command& command : request.commands()) {
    std::optional<core::Command> core_command = ToCoreCommand(command);
    if (core_command.has_value()) {
      commands.push_back(*core_command);
      continue;
    }
    // Keep request order: run what came before, then answer the bad command in place.
    if (!commands.empty()) {
      executor.Execute(core::Frontend::kGrpc, commands, sink);
      commands.clear();
    }
    auto* error = results->Add();
    error->set_code(crabcache::v1::ERROR);
    error->set_error(kNoOperationError.data(), kNoOperationError.size());
  }
  if (!commands.empty()) executor.Execute(core::Frontend::kGrpc, commands, sink);
  commands.clear();
}

}  // namespace crabcache::service
