#include "service/codec_check.h"

#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/string_view.h"
#include "service/batch_decoder.h"
#include "service/response_encoder.h"
#include "service/translate.h"

namespace crabcache::testing {
namespace {

using crabcache::v1::BatchRequest;
using crabcache::v1::BatchResponse;
using service::BatchResponseEncoder;
using service::DecodeBatchRequest;
using service::DecodedBatch;
using service::ExecuteDecoded;
using service::SliceWriter;
using service::ToCoreCommand;

constexpr size_t kNoLimit = std::numeric_limits<size_t>::max();

std::string Describe(const core::Command& c) {
  return absl::StrCat("{id ", static_cast<int>(c.id), " key \"",
                      absl::CHexEscape(core::ToAbsl(c.key)), "\" value \"",
                      absl::CHexEscape(core::ToAbsl(c.value)), "\" ttl_ms ", c.ttl_ms, " has_ttl ",
                      c.has_ttl, "}");
}

bool Same(const core::Command& a, const core::Command& b) {
  return a.id == b.id && a.key == b.key && a.value == b.value && a.ttl_ms == b.ttl_ms &&
         a.has_ttl == b.has_ttl;
}

bool Inside(std::string_view view, std::string_view bytes) {
  return view.empty() ||
         (view.data() >= bytes.data() && view.data() + view.size() <= bytes.data() + bytes.size());
}

// What differs between a decoded batch and protobuf's parse of the same bytes ("" if nothing).
std::string Diff(const DecodedBatch& batch, const BatchRequest& proto, std::string_view bytes) {
  if (batch.id != proto.id()) return absl::StrCat("id ", batch.id, " != protobuf's ", proto.id());
  if (batch.total_commands != static_cast<size_t>(proto.commands_size())) {
    return absl::StrCat(batch.total_commands, " commands, protobuf ", proto.commands_size());
  }
  size_t next = 0;
  size_t next_no_op = 0;
  for (int i = 0; i < proto.commands_size(); ++i) {
    const std::optional<core::Command> want = ToCoreCommand(proto.commands(i));
    if (!want.has_value()) {
      if (next_no_op >= batch.no_op_positions.size() ||
          batch.no_op_positions[next_no_op] != static_cast<uint32_t>(i)) {
        return absl::StrCat("command ", i, " has no operation but was not decoded as a no-op");
      }
      ++next_no_op;
      continue;
    }
    if (next >= batch.commands.size()) return absl::StrCat("command ", i, " is missing");
    const core::Command& got = batch.commands[next++];
    if (!Same(got, *want)) {
      return absl::StrCat("command ", i, ": ", Describe(got), " != protobuf's ", Describe(*want));
    }
    if (!Inside(got.key, bytes) || !Inside(got.value, bytes)) {
      return absl::StrCat("command ", i, " does not view the request bytes");
    }
  }
  if (next != batch.commands.size() || next_no_op != batch.no_op_positions.size()) {
    return "more commands decoded than protobuf parsed";
  }
  return "";
}

std::string Flatten(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& slice : slices) {
    out.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return out;
}

}  // namespace

std::string CompareDecoders(std::string_view bytes, size_t small_limit, BatchRequest* parsed) {
  DecodedBatch batch;
  const absl::Status status = DecodeBatchRequest(bytes, kNoLimit, &batch);
  BatchRequest proto;
  const bool protobuf_ok = proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
  if (status.ok() != protobuf_ok) {
    return absl::StrCat("the decoder ", status.ok() ? "accepts" : "refuses", " (", status.message(),
                        ") what protobuf ", protobuf_ok ? "accepts" : "refuses", ": \"",
                        absl::CHexEscape(absl::string_view(bytes.data(), bytes.size())), "\"");
  }
  if (!protobuf_ok) return "";
  if (std::string diff = Diff(batch, proto, bytes); !diff.empty()) return diff;

  const std::string canonical = proto.SerializeAsString();
  DecodedBatch again;
  if (absl::Status s = DecodeBatchRequest(canonical, kNoLimit, &again); !s.ok()) {
    return absl::StrCat("protobuf's re-serialization is refused: ", s.message());
  }
  if (std::string diff = Diff(again, proto, canonical); !diff.empty()) {
    return absl::StrCat("protobuf's re-serialization: ", diff);
  }

  DecodedBatch limited;
  const absl::Status limit_status = DecodeBatchRequest(bytes, small_limit, &limited);
  const bool over = static_cast<size_t>(proto.commands_size()) > small_limit;
  if (limit_status.ok() == over || limited.over_limit != over) {
    return absl::StrCat("limit ", small_limit, " with ", proto.commands_size(),
                        " commands: ", limit_status.ToString());
  }
  const std::string want = absl::StrCat("batch ", proto.id(), " has ", proto.commands_size(),
                                        " commands; the limit is ", small_limit);
  if (over && (limit_status.code() != absl::StatusCode::kInvalidArgument ||
               limit_status.message() != want)) {
    return absl::StrCat("over the limit: ", limit_status.ToString());
  }
  if (over && limited.commands.size() + limited.no_op_positions.size() != small_limit) {
    return "over the limit, more than the limit was stored";
  }
  if (parsed != nullptr) *parsed = std::move(proto);
  return "";
}

std::string CompareResponses(const core::Executor& typed, const core::Executor& raw,
                             std::string_view bytes, BatchResponse* typed_response) {
  BatchRequest request;
  if (!request.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return "protobuf refuses the request";
  }
  BatchResponse expected;
  service::ExecuteBatch(typed, request, &expected);

  DecodedBatch batch;
  if (absl::Status s = DecodeBatchRequest(bytes, kNoLimit, &batch); !s.ok()) {
    return absl::StrCat("the decoder refuses the request: ", s.message());
  }
  SliceWriter writer;
  writer.Reset(0);  // Small chunks, so larger responses span several.
  BatchResponseEncoder encoder;
  encoder.Begin(batch.id, &writer);
  ExecuteDecoded(raw, batch, encoder);
  grpc::ByteBuffer buffer;
  const size_t size = writer.Finish(&buffer);
  const std::string got = Flatten(buffer);
  if (got.size() != size || buffer.Length() != size) {
    return absl::StrCat("Finish says ", size, " bytes, the buffer holds ", got.size());
  }

  // STATS reports allocator-level memory figures that two stores with the same history need
  // not share, so its JSON is taken from the raw side; everything else must match as it is.
  BatchResponse parsed;
  if (!parsed.ParseFromString(got)) return "protobuf cannot parse the encoded response";
  if (parsed.results_size() != expected.results_size()) {
    return absl::StrCat(parsed.results_size(), " results, the typed path has ",
                        expected.results_size());
  }
  BatchResponse comparable = expected;
  for (int i = 0; i < request.commands_size() && i < comparable.results_size(); ++i) {
    if (request.commands(i).has_stats() && comparable.results(i).code() == crabcache::v1::OK) {
      comparable.mutable_results(i)->set_value(parsed.results(i).value());
    }
  }
  const std::string want = comparable.SerializeAsString();
  if (got != want) {
    size_t at = 0;
    while (at < got.size() && at < want.size() && got[at] == want[at]) ++at;
    return absl::StrCat("response bytes differ from protobuf's at byte ", at, " (", got.size(),
                        " vs ", want.size(), " bytes): \"",
                        absl::CHexEscape(absl::string_view(got)), "\" vs \"",
                        absl::CHexEscape(absl::string_view(want)), "\"");
  }
  if (!google::protobuf::util::MessageDifferencer::Equals(parsed, comparable)) {
    return absl::StrCat("the encoded response parses to ", parsed.ShortDebugString(),
                        ", the typed path's is ", comparable.ShortDebugString());
  }
  if (typed_response != nullptr) *typed_response = std::move(expected);
  return "";
}

}  // namespace crabcache::testing
