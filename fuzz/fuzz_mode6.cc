// Fuzz target: mode 6. The first octet picks the source (loopback, a `query` prefix off
// loopback, or neither); the rest is the datagram, answered by the responder. Also: the
// READ_MRU parameter parser and the mrulist walk on the same bytes, since the fuzzer cannot
// forge a nonce. Invariants: fragments within ntpq's limits, and no reply longer than the
// request to an unauthenticated source off loopback.
#include <cstdint>
#include <span>
#include <string_view>

#include "base/bytes.h"
#include "fuzz_check.h"
#include "mode6/responder.h"

using namespace strata;

namespace {

class Sources final : public mode6::Sources {
 public:
  mode6::SystemView system() override {
    mode6::SystemView v;
    v.time.synchronised = true;
    v.time.stratum = 2;
    v.version = "fuzz";
    return v;
  }
  void client_entries(std::vector<mode6::MruEntry>& out) override {
    for (uint32_t i = 0; i < 300; ++i) {
      mode6::MruEntry e;
      e.address = base::IpAddress::v4(0x0a000000u + i);
      e.first = (uint64_t{3900000000} + i) << 32;
      e.last = e.first + (uint64_t{i % 3} << 32);
      e.count = 1 + i % 4;
      out.push_back(e);
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 1024) return 0;
  static Sources sources;
  static stats::WorkerCounters counters;
  static mode6::Responder responder({}, sources, counters);
  static const policy::Policy policy = [] {
    std::vector<policy::RuleError> errors;
    return policy::Policy::compile(policy::parse_rules_text("192.0.2.0/24 query\n", "fuzz").rules,
                                   {true}, errors);
  }();
  static const auth::KeyRing keys(auth::parse_keys_text("1 MD5 sesame\n2 AES128 HEX:2b7e151628aed2a6abf7158809cf4f3c\n",
                                                        "fuzz").keys);
  static int64_t now_ns = int64_t{1'800'000'000} * 1'000'000'000;
  now_ns += 1'000'000;
  const uint32_t sources_v4[] = {0x7f000001u, 0xc0000207u, 0xcb007109u};
  const base::Endpoint peer{base::IpAddress::v4(sources_v4[data[0] % 3]), 40000};
  const std::span<const uint8_t> request(data + 1, size - 1);
  const mode6::Access access{policy, keys, 1};
  const auto out = responder.handle({request, peer, {}, now_ns}, access);
  size_t total = 0;
  bool authenticated = false;
  for (const auto& d : out) {
    STRATA_FUZZ_CHECK(d.size() >= mode6::kHeaderSize);
    STRATA_FUZZ_CHECK(d.size() <= mode6::kHeaderSize + mode6::kMaxData + 4 + auth::kMaxMac);
    STRATA_FUZZ_CHECK((d[0] & 7) == 6 && (d[1] & 0x80) != 0);
    STRATA_FUZZ_CHECK(base::load_be16(&d[10]) <= mode6::kMaxData);
    total += d.size();
    authenticated = authenticated || d.size() > mode6::kHeaderSize + base::load_be16(&d[10]) + 7;
  }
  STRATA_FUZZ_CHECK(out.size() <= 128);
  if (!authenticated && !peer.address.is_loopback()) STRATA_FUZZ_CHECK(total <= request.size());

  // The mrulist parser and walk, straight.
  const std::string_view text(reinterpret_cast<const char*>(request.data()), request.size());
  if (const auto q = mode6::parse_mru_query(text)) {
    std::vector<mode6::MruEntry> entries;
    sources.client_entries(entries);
    mode6::MruSnapshot snap;
    snap.build(entries, q->filter, uint64_t{3'900'000'400} << 32, 1000);
    const auto r = mode6::write_mru_response(snap, *q, "000000000000000000000000",
                                             uint64_t{3'900'000'400} << 32, 2 * mode6::kMaxData);
    STRATA_FUZZ_CHECK(r.data.size() <= 2 * mode6::kMaxData);
  }
  return 0;
}
