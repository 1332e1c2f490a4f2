#include "service/translate.h"

#include <string>

#include "core/clock.h"
#include "core/executor.h"
#include "core/store.h"
#include "gtest/gtest.h"

namespace crabcache::service {
namespace {

using crabcache::v1::BatchRequest;
using crabcache::v1::BatchResponse;

TEST(TranslateTest, CommandsViewTheRequestBytes) {
  crabcache::v1::Command command;
  command.mutable_set()->set_key("k");
  command.mutable_set()->set_value(std::string("v\0w", 3));
  command.mutable_set()->set_ttl_ms(5);
  auto core_command = ToCoreCommand(command);
  ASSERT_TRUE(core_command.has_value());
  EXPECT_EQ(core_command->id, core::CommandId::kSet);
  EXPECT_EQ(core_command->key.data(), command.set().key().data());  // A view, not a copy.
  EXPECT_EQ(core_command->value, std::string_view("v\0w", 3));
  EXPECT_TRUE(core_command->has_ttl);
  EXPECT_EQ(core_command->ttl_ms, 5u);

  EXPECT_FALSE(ToCoreCommand(crabcache::v1::Command()).has_value());
}

TEST(TranslateTest, ResultCodes) {
  crabcache::v1::Result out;
  ToProtoResult({core::ResultCode::kTtl, {}, core::kTtlMissing, absl::StatusCode::kOk}, &out);
  EXPECT_EQ(out.code(), crabcache::v1::NOT_FOUND);
  EXPECT_EQ(out.ttl_ms(), -2);
  out.Clear();
  ToProtoResult({core::ResultCode::kError, "too big", 0, absl::StatusCode::kInvalidArgument}, &out);
  EXPECT_EQ(out.code(), crabcache::v1::ERROR);
  EXPECT_EQ(out.error(), "INVALID_ARGUMENT: too big");
}

TEST(TranslateTest, BadCommandAnsweredInPlace) {
  core::FakeClock clock;
  core::Store store(core::StoreOptions{.num_shards = 2, .clock = &clock});
  core::Executor executor(&store, nullptr);
  BatchRequest request;
  request.set_id(7);
  auto* set = request.add_commands()->mutable_set();
  set->set_key("a");
  set->set_value("1");
  request.add_commands();  // No operation.
  request.add_commands()->mutable_get()->set_key("a");
  BatchResponse response;
  ExecuteBatch(executor, request, &response);
  EXPECT_EQ(response.id(), 7u);
  ASSERT_EQ(response.results_size(), 3);
  EXPECT_EQ(response.results(0).code(), crabcache::v1::OK);
  EXPECT_EQ(response.results(1).code(), crabcache::v1::ERROR);
  EXPECT_EQ(response.results(2).code(), crabcache::v1::HIT);
  EXPECT_EQ(response.results(2).value(), "1");
}

}  // namespace
}  // namespace crabcache::service
