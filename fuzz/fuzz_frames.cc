// Fuzz target: capture frames. The first octet picks the link type; the rest is the frame,
// decoded and fed to the analysis. Invariants: the payload lies inside the frame, a UDP
// result has consistent lengths, decoding into a Decoded reused from earlier frames (as
// `strata analyze` does) gives what a fresh one does, and the totals account for every frame.
#include <cstdint>
#include <span>

#include "analyze/analysis.h"
#include "fuzz_check.h"

using namespace strata;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 4096) return 0;
  static const int kLinks[] = {analyze::kLinkNull, analyze::kLinkEthernet, analyze::kLinkRaw,
                               analyze::kLinkLinuxSll, analyze::kLinkIpv4, analyze::kLinkIpv6,
                               analyze::kLinkLinuxSll2, 105};
  const int link = kLinks[data[0] % 8];
  const std::span<const uint8_t> frame(data + 1, size - 1);
  const analyze::Decoded d = analyze::decode(link, frame);
  if (d.kind == analyze::Frame::kUdp) {
    STRATA_FUZZ_CHECK(d.payload.data() >= frame.data() &&
                      d.payload.data() + d.payload.size() <= frame.data() + frame.size());
    STRATA_FUZZ_CHECK(d.ip_length >= d.payload.size() + 8);
  }
  static analyze::Decoded reused;  // holds the previous input's frame
  analyze::decode(link, frame, reused);
  STRATA_FUZZ_CHECK(reused.kind == d.kind && reused.family == d.family && reused.source == d.source &&
                    reused.destination == d.destination && reused.source_port == d.source_port &&
                    reused.destination_port == d.destination_port && reused.ip_length == d.ip_length &&
                    reused.payload.data() == d.payload.data() && reused.payload.size() == d.payload.size() &&
                    reused.payload_complete == d.payload_complete);
  static analyze::Analysis analysis({});
  const uint64_t before = analysis.totals().frames;
  analysis.add(1.0, d);
  const auto& t = analysis.totals();
  STRATA_FUZZ_CHECK(t.frames == before + 1);
  STRATA_FUZZ_CHECK(t.frames == t.not_ip + t.other_ip + t.fragments + t.truncated + t.other_udp +
                                    t.requests + t.replies + t.unknown);
  return 0;
}
