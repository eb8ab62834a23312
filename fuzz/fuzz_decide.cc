// Fuzz target: the whole per-packet decision. The first 4 octets choose the time state and
// policy (synchronised, unsynchronised action, source port); the rest is the datagram.
#include <cstdint>
#include <span>

#include "fuzz_check.h"
#include "server/decide.h"

using namespace strata;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  clock::TimeState s;
  s.synchronised = data[0] & 1;
  s.leap = static_cast<wire::Leap>((data[0] >> 1) & 3);
  s.stratum = static_cast<uint8_t>(1 + data[0] % 15);
  s.precision = -static_cast<int8_t>(data[3] % 31);
  const auto action = (data[0] & 8) ? clock::UnsyncAction::kDrop : clock::UnsyncAction::kReply;
  const uint16_t port = static_cast<uint16_t>(data[1] << 8 | data[2]);
  const server::BatchContext ctx = server::make_context(s, s.as_of, action);
  const std::span<const uint8_t> request(data + 4, size - 4);
  uint8_t out[128];
  const server::Decision d =
      server::decide(request, (data[0] & 16) != 0, port, base::NtpTimestamp{42}, ctx, out);
  stats::WorkerCounters counters;
  server::count(d, counters);
  STRATA_FUZZ_CHECK(counters.get(stats::Counter::received) == 1);
  if (!d.reply) {
    STRATA_FUZZ_CHECK(d.reason != server::DropReason::kNone);
    return 0;
  }
  // Never more bytes out than in (no amplification), and a well-formed reply.
  STRATA_FUZZ_CHECK(d.length <= request.size() && d.length == wire::kHeaderSize);
  const wire::Header h = wire::decode_header(out);
  STRATA_FUZZ_CHECK(h.version == wire::version_of(request[0]));
  STRATA_FUZZ_CHECK(h.mode == wire::Mode::kServer || h.mode == wire::Mode::kSymmetricPassive);
  STRATA_FUZZ_CHECK(h.receive.raw == 42);
  STRATA_FUZZ_CHECK(s.synchronised || h.leap == wire::Leap::kUnsynchronised);
  return 0;
}
