// Mode 6 (RFC 9327, ntpq's control protocol) on the wire: parse and validate a request as
// ntpd does (protocols.md 2.5), build responses of name=value text split into fragments of at
// most 468 data octets, zero-padded, optionally signed with the request's key, and error
// responses (12 octets: never longer than the request). Pure: no sockets, no clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "auth/keys.h"

namespace strata::mode6 {

inline constexpr size_t kHeaderSize = 12;
inline constexpr size_t kMaxData = 468;       // CTL_MAX_DATA_LEN
inline constexpr size_t kClientMaxFrags = 32;  // what ntpq reassembles (MAXFRAGS)

enum Opcode : uint8_t {
  kUnspec = 0,
  kReadStatus = 1,
  kReadVariables = 2,
  kWriteVariables = 3,
  kReadClock = 4,
  kWriteClock = 5,
  kConfigure = 8,
  kSaveConfig = 9,
  kReadMru = 10,
  kReadOrderedList = 11,
  kRequestNonce = 12,
};

enum ErrorCode : uint8_t {
  kErrUnspec = 0,
  kErrPermission = 1,
  kErrBadFormat = 2,
  kErrBadOpcode = 3,
  kErrBadAssociation = 4,
  kErrUnknownVariable = 5,
  kErrBadValue = 6,
  kErrRestricted = 7,
};

struct Request {
  uint8_t version = 0;
  uint8_t opcode = 0;
  uint16_t sequence = 0;
  uint16_t association = 0;
  std::span<const uint8_t> data;  // `count` octets
  // A trailing MAC (key id + digest) and the octets it covers, when there is one.
  bool has_mac = false;
  uint32_t key_id = 0;
  std::span<const uint8_t> signed_part;
  std::span<const uint8_t> mac;
};

enum class ParseResult : uint8_t {
  kOk,
  kDrop,       // no reply at all: too short, a response/error/fragment bit, offset != 0, bad VN
  kBadFormat,  // reply CERR_BADFMT: count beyond the datagram or over 468, length not 4-aligned
};

// Validates a mode-6 datagram (mode 6 already checked by the caller) and fills `out`. A MAC
// is looked for after the data padded to 8 octets (ntp.org's ntpq, NTPsec's server), then
// padded to 4 (NTPsec's ntpq without auth padding).
ParseResult parse(std::span<const uint8_t> datagram, Request& out);

// The data of a request as text (it is ASCII for every opcode we serve).
inline std::string_view data_text(const Request& r) {
  return {reinterpret_cast<const char*>(r.data.data()), r.data.size()};
}

// Builds the datagrams of one response: `data` (at most max_frags * 468 octets) split into
// fragments, each with R, M on all but the last, the running offset, zero padding to 4 (to 8
// and a MAC when `key`), the request's version, opcode, sequence and association.
std::vector<std::vector<uint8_t>> build_response(const Request& request, uint16_t status,
                                                 std::string_view data, const auth::Key* key,
                                                 uint8_t leap);

// A 12-octet error response (plus a MAC when `key`): R|E|opcode, status = code << 8, count 0.
std::vector<uint8_t> build_error(const Request& request, ErrorCode code, const auth::Key* key,
                                 uint8_t leap);

// Accumulates "name=value" items as ntpd writes them: ", " between items, "\r\n" instead of
// the space when a line would pass 72 characters, up to a size limit.
class VarWriter {
 public:
  explicit VarWriter(size_t limit) : limit_(limit) {}
  // False (and nothing written) when the item does not fit in the limit.
  bool add(std::string_view name, std::string_view value);
  bool add_raw(std::string_view item);  // an item already "name=value"
  // Whether an item of `size` octets would still fit.
  bool fits(size_t size) const { return text_.size() + size + 3 <= limit_; }
  const std::string& text() const { return text_; }
  // Appends the final "\r\n" when there is room (ntpd does).
  std::string finish();

 private:
  size_t limit_;
  std::string text_;
  size_t line_ = 0;
};

}  // namespace strata::mode6
