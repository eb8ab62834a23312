// Fuzz target: the NTP request parser, and reply/KoD building from whatever it accepts
// (parse -> build -> parse back, as ntpd-rs does).
#include <cstdint>
#include <span>

#include "fuzz_check.h"
#include "wire/packet.h"

using namespace strata::wire;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> in(data, size);
  const Request r = parse_request(in);
  if (r.verdict != Verdict::kOk) return 0;
  STRATA_FUZZ_CHECK(r.version >= 1 && r.version <= 4);
  if (r.mode == Mode::kControl || r.mode == Mode::kPrivate) return 0;
  STRATA_FUZZ_CHECK(size >= kHeaderSize);
  if (r.trailer == Trailer::kMac || r.trailer == Trailer::kCryptoNak)
    STRATA_FUZZ_CHECK(r.mac_offset + r.mac_length == size && r.mac_offset % 4 == 0);
  uint8_t out[kHeaderSize];
  ServerInfo info;
  STRATA_FUZZ_CHECK(build_reply(r, info, NtpTimestamp{1}, r.header.poll, out) == kHeaderSize);
  Header h = decode_header(out);
  STRATA_FUZZ_CHECK(h.origin == r.header.transmit && h.version == r.version);
  STRATA_FUZZ_CHECK(h.mode == Mode::kServer || h.mode == Mode::kSymmetricPassive);
  STRATA_FUZZ_CHECK(build_kod(r, kKissRate, 6, out) == kHeaderSize);
  h = decode_header(out);
  STRATA_FUZZ_CHECK(is_kod(h) && h.receive == r.header.transmit && h.transmit == r.header.transmit);
  return 0;
}
