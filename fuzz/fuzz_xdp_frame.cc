// Fuzz target: AF_XDP frames (io/xdp_frame.h). Input: one octet of reply length, then an
// Ethernet frame. Invariants: a parsed frame's payload lies inside it; the reply written over
// it (any payload up to the request's, as stratad never answers longer) parses again, with the
// endpoints swapped, the same payload, an IPv4 header checksum and a UDP checksum that verify.
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_check.h"
#include "io/xdp_frame.h"

using namespace strata;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 4096) return 0;
  const std::span<const uint8_t> frame(data + 1, size - 1);
  const io::ParsedFrame p = io::parse_frame(frame);
  if (p.error != io::FrameError::kNone) return 0;
  const io::FrameView& v = p.view;
  STRATA_FUZZ_CHECK(size_t{v.payload} + v.payload_length <= frame.size());
  const size_t reply_length = std::min<size_t>(data[0], v.payload_length);
  std::vector<uint8_t> payload(frame.begin() + v.payload, frame.begin() + v.payload + reply_length);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] ^= static_cast<uint8_t>(i * 7);
  std::vector<uint8_t> buffer(frame.begin(), frame.end());
  const size_t n = io::write_reply(buffer.data(), buffer.size(), v, payload);
  if (n == 0) return 0;  // did not fit (IPv4 options gave room the reply header does not need)
  STRATA_FUZZ_CHECK(n <= buffer.size());
  const io::ParsedFrame r = io::parse_frame({buffer.data(), n});
  STRATA_FUZZ_CHECK(r.error == io::FrameError::kNone);
  STRATA_FUZZ_CHECK(r.view.peer == v.local && r.view.local == v.peer);
  STRATA_FUZZ_CHECK(r.view.payload_length == payload.size());
  STRATA_FUZZ_CHECK(payload.empty() || std::memcmp(buffer.data() + r.view.payload, payload.data(), payload.size()) == 0);
  const bool v4 = v.peer.address.family == base::Family::kV4;
  const uint8_t* ip = buffer.data() + r.view.l3;
  if (v4) STRATA_FUZZ_CHECK(io::checksum_finish(io::checksum_add(0, {ip, 20})) == 0);
  const size_t udp = r.view.payload - 8;
  const size_t udp_length = 8 + payload.size();
  uint64_t sum = v4 ? io::checksum_add(0, {ip + 12, 8}) : io::checksum_add(0, {ip + 8, 32});
  sum += 17 + udp_length;
  STRATA_FUZZ_CHECK(io::checksum_finish(io::checksum_add(sum, {buffer.data() + udp, udp_length})) == 0);
  return 0;
}
