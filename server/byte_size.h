// Byte counts on the command line: "1048576", "64Ki", "512M", "2Gi" (K/M/G and Ki/Mi/Gi are both
// powers of 1024; a trailing "B" is accepted: "64KiB", "1GB").
#ifndef CRABCACHE_SERVER_BYTE_SIZE_H_
#define CRABCACHE_SERVER_BYTE_SIZE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/strings/string_view.h"

namespace crabcache::server {

// A flag value type: `ABSL_FLAG(ByteSize, max_memory, ByteSize{0}, ...)`.
struct ByteSize {
  uint64_t bytes = 0;
};

// Parses a size; nullopt on syntax errors and on values that overflow 64 bits.
std::optional<uint64_t> ParseByteSize(std::string_view text);
// The shortest exact spelling: 1073741824 -> "1Gi", 1000 -> "1000".
std::string FormatByteSize(uint64_t bytes);

// absl flag marshalling (found by ADL).
bool AbslParseFlag(absl::string_view text, ByteSize* size, std::string* error);
std::string AbslUnparseFlag(ByteSize size);

}  // namespace crabcache::server

#endif  // CRABCACHE_SERVER_BYTE_SIZE_H_
