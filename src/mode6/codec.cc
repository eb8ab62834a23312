// Mode-6 datagrams (see codec.h).
#include "mode6/codec.h"

#include <algorithm>

#include "base/bytes.h"

namespace strata::mode6 {

namespace {

constexpr uint8_t kResponse = 0x80;
constexpr uint8_t kError = 0x40;
constexpr uint8_t kMore = 0x20;
constexpr uint8_t kModeControl = 6;

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

void write_header(uint8_t* p, const Request& r, uint8_t flags, uint16_t status, uint16_t offset,
                  uint16_t count, uint8_t leap) {
  p[0] = static_cast<uint8_t>((leap & 3) << 6 | (r.version & 7) << 3 | kModeControl);
  p[1] = static_cast<uint8_t>(flags | (r.opcode & 0x1f));
  base::store_be16(p + 2, r.sequence);
  base::store_be16(p + 4, status);
  base::store_be16(p + 6, r.association);
  base::store_be16(p + 8, offset);
  base::store_be16(p + 10, count);
}

// Pads to 8 and appends the MAC over everything so far.
void sign_into(std::vector<uint8_t>& d, const auth::Key& key) {
  d.resize(round_up(d.size(), 8), 0);
  const size_t at = d.size();
  d.resize(at + auth::kMaxMac);
  d.resize(at + auth::sign(key, {d.data(), at}, {d.data() + at, auth::kMaxMac}));
}

}  // namespace

ParseResult parse(std::span<const uint8_t> d, Request& out) {
  if (d.size() < kHeaderSize) return ParseResult::kDrop;
  out.version = (d[0] >> 3) & 7;
  if (out.version < 1 || out.version > 4) return ParseResult::kDrop;
  if ((d[1] & (kResponse | kError | kMore)) != 0) return ParseResult::kDrop;
  if (base::load_be16(&d[8]) != 0) return ParseResult::kDrop;  // a fragment of a request
  out.opcode = d[1] & 0x1f;
  out.sequence = base::load_be16(&d[2]);
  out.association = base::load_be16(&d[6]);
  const size_t count = base::load_be16(&d[10]);
  if (count > kMaxData || kHeaderSize + count > d.size() || d.size() % 4 != 0)
    return ParseResult::kBadFormat;
  out.data = d.subspan(kHeaderSize, count);
  out.has_mac = false;
  const size_t end = kHeaderSize + count;
  for (size_t align : {size_t{8}, size_t{4}}) {
    const size_t at = round_up(end, align);
    if (at > d.size()) continue;
    const size_t rest = d.size() - at;
    if (rest != auth::kKeyIdSize + 16 && rest != auth::kKeyIdSize + 20) continue;
    out.has_mac = true;
    out.key_id = base::load_be32(&d[at]);
    out.signed_part = d.first(at);
    out.mac = d.subspan(at);
    break;
  }
  return ParseResult::kOk;
}

std::vector<std::vector<uint8_t>> build_response(const Request& request, uint16_t status,
                                                 std::string_view data, const auth::Key* key,
                                                 uint8_t leap) {
  std::vector<std::vector<uint8_t>> out;
  size_t offset = 0;
  do {
    const size_t n = std::min(kMaxData, data.size() - offset);
    const bool more = offset + n < data.size();
    std::vector<uint8_t> d(kHeaderSize + n);
    write_header(d.data(), request, static_cast<uint8_t>(kResponse | (more ? kMore : 0)), status,
                 static_cast<uint16_t>(offset), static_cast<uint16_t>(n), leap);
    std::copy_n(data.data() + offset, n, d.data() + kHeaderSize);
    d.resize(round_up(d.size(), 4), 0);
    if (key != nullptr) sign_into(d, *key);
    out.push_back(std::move(d));
    offset += n;
  } while (offset < data.size());
  return out;
}

std::vector<uint8_t> build_error(const Request& request, ErrorCode code, const auth::Key* key,
                                 uint8_t leap) {
  std::vector<uint8_t> d(kHeaderSize);
  write_header(d.data(), request, kResponse | kError, static_cast<uint16_t>(code << 8), 0, 0, leap);
  if (key != nullptr) sign_into(d, *key);
  return d;
}

bool VarWriter::add(std::string_view name, std::string_view value) {
  std::string item;
  item.reserve(name.size() + value.size() + 1);
  item.append(name);
  item.push_back('=');
  item.append(value);
  return add_raw(item);
}

bool VarWriter::add_raw(std::string_view item) {
  if (!fits(item.size())) return false;
  if (!text_.empty()) {
    text_.push_back(',');
    ++line_;
    if (line_ + 1 + item.size() > 72) {
      text_.append("\r\n");
      line_ = 0;
    } else {
      text_.push_back(' ');
      ++line_;
    }
  }
  text_.append(item);
  line_ += item.size();
  return true;
}

std::string VarWriter::finish() {
  std::string out = text_;
  if (!out.empty() && out.size() + 2 <= limit_) out.append("\r\n");
  return out;
}

}  // namespace strata::mode6
