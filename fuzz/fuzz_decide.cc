// Fuzz target: the whole per-packet decision. The first 4 octets choose the time state and
// policy (synchronised, unsynchronised action, source port, whether the client table and rate
// limiter take part); the rest is the datagram. The tracker persists across inputs, small, so
// eviction and limiting paths run too. NTS is on in the tracked rules (a fixed secret: the
// fuzzer cannot forge cookies, so NTS requests reach the NAK paths; fuzz_nts_ntp builds
// genuine ones).
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
  uint8_t out[2048];
  static clients::Tracker tracker([] {
    clients::TrackerOptions o;
    o.table.capacity = 64;
    o.table.mindepth = 8;
    o.table.maxage_ns = 1'000'000'000;
    o.prefix_capacity = 32;
    return o;
  }());
  // Two rule sets: MAC failures dropped, or answered with a crypto-NAK (bit 6).
  static const auto make_rules = [](auth::BadMac bad_mac) {
    server::Rules r;
    const auto parsed = policy::parse_rules_text("10.0.0.0/30 ignore\n10.0.0.4/30 deny\n"
                                                 "10.0.0.8/30 nolimit\n", "fuzz");
    std::vector<policy::RuleError> errors;
    r.policy = policy::Policy::compile(parsed.rules, {true}, errors);
    r.keys = auth::KeyRing(auth::parse_keys_text("1 MD5 sesame\n2 SHA1 HEX:0011223344556677889900112233445566778899\n"
                                                 "3 AES128 HEX:2b7e151628aed2a6abf7158809cf4f3c\n", "fuzz").keys);
    r.bad_mac = bad_mac;
    auto secrets = std::make_shared<nts::Secrets>();
    nts::Key k{};
    k.fill(0x42);
    secrets->secrets.push_back(nts::make_secret(k));
    secrets->generation = 1;
    r.nts_secrets = secrets;
    return r;
  };
  static const server::Rules drop_rules = make_rules(auth::BadMac::kDrop);
  static const server::Rules nak_rules = make_rules(auth::BadMac::kCryptoNak);
  const server::Rules& rules = (data[0] & 64) ? nak_rules : drop_rules;
  static int64_t now_ns = 0;
  now_ns += int64_t{data[3]} * 10'000'000;
  static nts::PacketState nts_state;
  static nts::Siv seal;
  server::Tracking tracking{tracker, rules, base::IpAddress::v4(0x0a000000u | (data[1] & 0x3f)),
                            base::IpAddress::v4(0x7f000001u), now_ns, false, &nts_state, &seal};
  const bool tracked = (data[0] & 32) != 0;
  const server::Decision d = server::decide(request, (data[0] & 16) != 0, port,
                                            base::NtpTimestamp{42}, ctx, out,
                                            tracked ? &tracking : nullptr);
  STRATA_FUZZ_CHECK(tracker.table().size() <= tracker.table().capacity());
  stats::WorkerCounters counters;
  server::count(d, counters);
  STRATA_FUZZ_CHECK(counters.get(stats::Counter::received) == 1);
  if (!d.reply) {
    STRATA_FUZZ_CHECK(d.reason != server::DropReason::kNone);
    return 0;
  }
  // Never more bytes out than in (no amplification), and a well-formed reply.
  STRATA_FUZZ_CHECK(d.length <= request.size());
  if (d.nts) {
    // Only a NAK can answer what the fuzzer makes: the UID after a KoD NTSN.
    STRATA_FUZZ_CHECK(tracked && d.kod && d.nts_nak != nts::Nak::kNone && d.length > wire::kHeaderSize);
    const wire::Header h = wire::decode_header(out);
    STRATA_FUZZ_CHECK(h.stratum == 0 && h.reference_id == nts::kKissNtsNak);
    STRATA_FUZZ_CHECK(out[wire::kHeaderSize] == 0x01 && out[wire::kHeaderSize + 1] == 0x04);
    return 0;
  }
  STRATA_FUZZ_CHECK(d.length == wire::kHeaderSize + (d.key ? auth::kKeyIdSize + auth::digest_length(d.key->algorithm)
                                                     : d.crypto_nak ? wire::kCryptoNakSize : 0));
  if (d.key != nullptr && !d.kod) {  // the request's MAC verified with this key
    STRATA_FUZZ_CHECK(d.key->id == wire::parse_request(request).key_id);
    server::finish_reply({out, d.length}, base::NtpTimestamp{43}, d.key);
    STRATA_FUZZ_CHECK(auth::verify(*d.key, {out, wire::kHeaderSize}, {out + wire::kHeaderSize, d.length - wire::kHeaderSize}));
  }
  const wire::Header h = wire::decode_header(out);
  STRATA_FUZZ_CHECK(h.version == wire::version_of(request[0]));
  STRATA_FUZZ_CHECK(h.mode == wire::Mode::kServer || h.mode == wire::Mode::kSymmetricPassive);
  if (d.kod) {
    // KoD RATE in ntpd's layout: stratum 0, LI 3, and no server time revealed.
    STRATA_FUZZ_CHECK(tracked && h.stratum == 0 &&
                      h.reference_id == (d.denied ? wire::kKissDeny : wire::kKissRate));
    STRATA_FUZZ_CHECK(h.leap == wire::Leap::kUnsynchronised && !d.stamp_transmit);
    return 0;
  }
  STRATA_FUZZ_CHECK(h.receive.raw == 42);
  STRATA_FUZZ_CHECK(s.synchronised || h.leap == wire::Leap::kUnsynchronised);
  return 0;
}
