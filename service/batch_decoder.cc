// Grammar (protobuf wire format, service/wire_format.h; field numbers from
// proto/crabcache/v1/cache.proto):
//
//   message   := field*                        up to the end of the message's bytes
//   field     := tag payload                   tag = field_number << 3 | wire_type (<= 5 bytes)
//   payload   := varint                        wire type 0 (<= 10 bytes)
//              | 8 bytes                       wire type 1
//              | length bytes                  wire type 2 (length <= 5 bytes, < 2 GiB)
//              | field* end_group_tag          wire type 3 (the end tag names the same field)
//              | 4 bytes                       wire type 5
//
//   Known fields (any other field, or a known number with another wire type, is skipped):
//     BatchRequest  1 id: varint          2 commands: Command (repeated)
//     Command       oneof op: 1 ping: Ping  2 set: Set  3 get: Get  4 delete: Delete
//                             5 expire: Expire  6 ttl: Ttl  7 stats: Stats
//     Set           1 key: bytes   2 value: bytes   3 ttl_ms: varint
//     Expire        1 key: bytes   2 ttl_ms: varint
//     Get, Delete, Ttl   1 key: bytes
//     Ping, Stats   no fields (their bytes are still checked)
//
// Refused, as protobuf refuses them: a field cut short by the end of its message; tag 0 or field
// number 0; wire type 6 or 7; an end-group tag outside a group or naming another field; a
// length of 2 GiB or more; messages and groups nested more than 100 deep.
//
// Limit: max_commands. A command past it is checked and counted but nothing is stored for it.
#include "service/batch_decoder.h"

#include "absl/strings/str_cat.h"
#include "service/wire_format.h"

namespace crabcache::service {
namespace {

using wire::kEndGroup;
using wire::kLengthDelimited;
using wire::kVarint;
using wire::MakeTag;

// Field numbers of Command.op (1 to 7): CommandId + 1.
constexpr uint32_t kNumOps = 7;

// The known fields of an operation's message, by field number (0: the message has none).
struct OpFields {
  uint32_t key;
  uint32_t value;
  uint32_t ttl_ms;
};
constexpr OpFields kOpFields[kNumOps + 1] = {
    {0, 0, 0},  // (no operation)
    {0, 0, 0},  // 1 Ping
    {1, 2, 3},  // 2 Set
    {1, 0, 0},  // 3 Get
    {1, 0, 0},  // 4 Delete
    {1, 0, 2},  // 5 Expire
    {1, 0, 0},  // 6 Ttl
    {0, 0, 0},  // 7 Stats
};

// A Command's operation as parsed so far.
struct Op {
  uint32_t field = 0;  // Which op (1 to 7); 0 while none is set.
  std::string_view key;
  std::string_view value;
  uint64_t ttl_ms = 0;
};

// CommandId is the oneof field number minus one.
static_assert(static_cast<int>(core::CommandId::kPing) == 0 &&
              static_cast<int>(core::CommandId::kSet) == 1 &&
              static_cast<int>(core::CommandId::kGet) == 2 &&
              static_cast<int>(core::CommandId::kDelete) == 3 &&
              static_cast<int>(core::CommandId::kExpire) == 4 &&
              static_cast<int>(core::CommandId::kTtl) == 5 &&
              static_cast<int>(core::CommandId::kStats) == 6);

// Fills `out` with the core command of a set operation, exactly as ToCoreCommand builds it from
// the proto (core::Command's factories): an op's unknown fields were never read, so they are
// empty or zero here as there; SET has a TTL when ttl_ms != 0, EXPIRE always.
void ToCommand(const Op& op, core::Command* out) {
  out->id = static_cast<core::CommandId>(op.field - 1);
  out->key = op.key;
  out->value = op.value;
  out->ttl_ms = op.ttl_ms;
  out->has_ttl = op.field == 5 || (op.field == 2 && op.ttl_ms != 0);
}

std::string_view View(const uint8_t* p, size_t n) { return {reinterpret_cast<const char*>(p), n}; }

// One decoding pass. Each Parse/Skip function takes the bytes [p, end) of the enclosing message
// and the nesting depth still allowed there, and returns the byte after what it consumed, or
// nullptr after recording why it failed.
class Decoder {
 public:
  Decoder(const uint8_t* begin, size_t max_commands, DecodedBatch* out)
      : begin_(begin), max_commands_(max_commands), out_(out) {}

  bool ParseBatch(const uint8_t* p, const uint8_t* end) {
    while (p < end) {
      if (const uint8_t* next = ShortCommand(p, end); next != nullptr) {
        p = next;
        continue;
      }
      uint32_t tag;
      if ((p = NextTag(p, end, &tag)) == nullptr) return false;
      if (tag == MakeTag(1, kVarint)) {
        p = Varint(p, end, &out_->id);
      } else if (tag == MakeTag(2, kLengthDelimited)) {
        p = SubMessage(p, end, wire::kMaxDepth,
                       [this](const uint8_t* q, const uint8_t* e, int depth) {
                         return ParseCommand(q, e, depth);
                       });
      } else {
        p = SkipField(tag, p, end, wire::kMaxDepth);
      }
      if (p == nullptr) return false;
    }
    return true;
  }

  std::string Error() const {
    return absl::StrCat("malformed BatchRequest: ", why_, " at byte ", at_ - begin_);
  }

 private:
  // A shortcut for the commands protobuf's serializer writes when every length is below 128:
  //   0x12 len op_tag len [0x0a len key] [0x12 len value] [ttl_tag varint]
  // (one operation, its known fields in number order, nothing else). On such bytes it does what
  // the general parser would; on anything else it returns nullptr having done nothing, and the
  // general parser decides.
  const uint8_t* ShortCommand(const uint8_t* p, const uint8_t* end) {
    if (end - p < 4 || p[0] != MakeTag(2, kLengthDelimited)) return nullptr;
    const size_t command_length = p[1];
    const uint32_t op_tag = p[2];
    const uint32_t field = wire::FieldOf(op_tag);
    if (command_length >= 0x80 || command_length > static_cast<size_t>(end - p - 2) ||
        size_t{p[3]} + 2 != command_length || wire::TypeOf(op_tag) != kLengthDelimited ||
        field == 0 || field > kNumOps) {
      return nullptr;
    }
    const OpFields& known = kOpFields[field];
    const uint8_t* const op_end = p + 2 + command_length;
    const uint8_t* q = p + 4;
    Op op{.field = field};
    if (known.key != 0 && q < op_end && *q == MakeTag(known.key, kLengthDelimited)) {
      if ((q = ShortBytes(q + 1, op_end, &op.key)) == nullptr) return nullptr;
    }
    if (known.value != 0 && q < op_end && *q == MakeTag(known.value, kLengthDelimited)) {
      if ((q = ShortBytes(q + 1, op_end, &op.value)) == nullptr) return nullptr;
    }
    if (known.ttl_ms != 0 && q < op_end && *q == MakeTag(known.ttl_ms, kVarint)) {
      if ((q = wire::ReadVarint64(q + 1, op_end, &op.ttl_ms)) == nullptr) return nullptr;
    }
    if (q != op_end) return nullptr;
    AddCommand(op);
    return op_end;
  }

  // A length below 128 and that many bytes, within [p, end); nullptr otherwise.
  static const uint8_t* ShortBytes(const uint8_t* p, const uint8_t* end, std::string_view* out) {
    if (p >= end || *p >= 0x80 || *p > end - p - 1) return nullptr;
    *out = View(p + 1, *p);
    return p + 1 + *p;
  }

  const uint8_t* ParseCommand(const uint8_t* p, const uint8_t* end, int depth) {
    Op op;
    while (p < end) {
      uint32_t tag;
      if ((p = NextTag(p, end, &tag)) == nullptr) return nullptr;
      const uint32_t field = wire::FieldOf(tag);
      if (field <= kNumOps && wire::TypeOf(tag) == kLengthDelimited) {
        // Another case replaces the op; the same case again is merged into it.
        if (op.field != field) op = Op{.field = field};
        p = SubMessage(p, end, depth, [this, &op](const uint8_t* q, const uint8_t* e, int d) {
          return ParseOp(q, e, d, &op);
        });
      } else {
        p = SkipField(tag, p, end, depth);
      }
      if (p == nullptr) return nullptr;
    }
    AddCommand(op);
    return p;
  }

  const uint8_t* ParseOp(const uint8_t* p, const uint8_t* end, int depth, Op* op) {
    const OpFields& known = kOpFields[op->field];
    while (p < end) {
      uint32_t tag;
      if ((p = NextTag(p, end, &tag)) == nullptr) return nullptr;
      const uint32_t field = wire::FieldOf(tag);
      const uint32_t type = wire::TypeOf(tag);
      if (type == kLengthDelimited && field == known.key) {
        p = Bytes(p, end, &op->key);
      } else if (type == kLengthDelimited && field == known.value) {
        p = Bytes(p, end, &op->value);
      } else if (type == kVarint && field == known.ttl_ms) {
        p = Varint(p, end, &op->ttl_ms);
      } else {
        p = SkipField(tag, p, end, depth);
      }
      if (p == nullptr) return nullptr;
    }
    return p;
  }

  void AddCommand(const Op& op) {
    const size_t index = out_->total_commands++;
    if (index >= max_commands_) {
      out_->over_limit = true;
      return;
    }
    if (op.field == 0) {
      out_->no_op_positions.push_back(static_cast<uint32_t>(index));
    } else {
      ToCommand(op, &out_->commands.emplace_back());
    }
  }

  // A tag that may start a field of a message (not a group's end).
  const uint8_t* NextTag(const uint8_t* p, const uint8_t* end, uint32_t* tag) {
    if (p < end && *p < 0x80 && *p >= 8 && (*p & 7) != kEndGroup) {  // A valid one-byte tag.
      *tag = *p;
      return p + 1;
    }
    const uint8_t* at = p;
    if ((p = wire::ReadTag(p, end, tag)) == nullptr) return Fail("truncated or overlong tag", at);
    if (wire::FieldOf(*tag) == 0) return Fail("field number 0", at);
    if (wire::TypeOf(*tag) == kEndGroup) return Fail("end-group tag outside a group", at);
    return p;
  }

  const uint8_t* Varint(const uint8_t* p, const uint8_t* end, uint64_t* value) {
    const uint8_t* at = p;
    if ((p = wire::ReadVarint64(p, end, value)) == nullptr) {
      return Fail("truncated or overlong varint", at);
    }
    return p;
  }

  const uint8_t* Bytes(const uint8_t* p, const uint8_t* end, std::string_view* value) {
    size_t n;
    const uint8_t* at = p;
    if ((p = wire::ReadLength(p, end, &n)) == nullptr) return Fail("bad length", at);
    *value = View(p, n);
    return p + n;
  }

  // A length-delimited message parsed by `parse` with one level less of depth.
  template <typename Parse>
  const uint8_t* SubMessage(const uint8_t* p, const uint8_t* end, int depth, Parse parse) {
    size_t n;
    const uint8_t* at = p;
    if ((p = wire::ReadLength(p, end, &n)) == nullptr) return Fail("bad length", at);
    if (depth - 1 < 0) return Fail("nested more than 100 deep", at);
    const uint8_t* sub_end = p + n;
    if ((p = parse(p, sub_end, depth - 1)) == nullptr) return nullptr;
    return p;  // == sub_end: every parse loop runs to its end.
  }

  // Skips an unknown field's payload (the tag is read; it is not an end-group tag).
  const uint8_t* SkipField(uint32_t tag, const uint8_t* p, const uint8_t* end, int depth) {
    const uint8_t* at = p;
    switch (wire::TypeOf(tag)) {
      case wire::kVarint: {
        uint64_t ignored;
        return Varint(p, end, &ignored);
      }
      case wire::kFixed64:
        return end - p >= 8 ? p + 8 : Fail("truncated fixed64", at);
      case wire::kLengthDelimited: {
        std::string_view ignored;
        return Bytes(p, end, &ignored);
      }
      case wire::kStartGroup:
        return SkipGroup(wire::FieldOf(tag), p, end, depth);
      case wire::kFixed32:
        return end - p >= 4 ? p + 4 : Fail("truncated fixed32", at);
      default:
        return Fail("invalid wire type", at);
    }
  }

  const uint8_t* SkipGroup(uint32_t field, const uint8_t* p, const uint8_t* end, int depth) {
    const uint8_t* start = p;
    if (--depth < 0) return Fail("nested more than 100 deep", start);
    while (p < end) {
      const uint8_t* at = p;
      uint32_t tag;
      if ((p = wire::ReadTag(p, end, &tag)) == nullptr) {
        return Fail("truncated or overlong tag", at);
      }
      if (wire::TypeOf(tag) == kEndGroup) {
        return tag == MakeTag(field, kEndGroup) ? p : Fail("end-group tag of another field", at);
      }
      if (wire::FieldOf(tag) == 0) return Fail("field number 0", at);
      if ((p = SkipField(tag, p, end, depth)) == nullptr) return nullptr;
    }
    return Fail("group without its end-group tag", start);
  }

  const uint8_t* Fail(const char* why, const uint8_t* at) {
    why_ = why;
    at_ = at;
    return nullptr;
  }

  const uint8_t* const begin_;
  const size_t max_commands_;
  DecodedBatch* const out_;
  const char* why_ = "";
  const uint8_t* at_ = nullptr;
};

}  // namespace

void DecodedBatch::Clear() {
  id = 0;
  commands.clear();
  no_op_positions.clear();
  total_commands = 0;
  over_limit = false;
}

void DecodedBatch::ShrinkIfAbove(size_t max_commands) {
  if (commands.capacity() > max_commands) std::vector<core::Command>().swap(commands);
  if (no_op_positions.capacity() > max_commands) std::vector<uint32_t>().swap(no_op_positions);
}

absl::Status DecodeBatchRequest(std::string_view bytes, size_t max_commands, DecodedBatch* out) {
  out->Clear();
  const auto* begin = reinterpret_cast<const uint8_t*>(bytes.data());
  Decoder decoder(begin, max_commands, out);
  if (!decoder.ParseBatch(begin, begin + bytes.size())) {
    out->over_limit = false;
    return absl::InvalidArgumentError(decoder.Error());
  }
  if (out->over_limit) {
    return absl::InvalidArgumentError(absl::StrCat("batch ", out->id, " has ", out->total_commands,
                                                   " commands; the limit is ", max_commands));
  }
  return absl::OkStatus();
}

}  // namespace crabcache::service
