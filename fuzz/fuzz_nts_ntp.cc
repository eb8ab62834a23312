// Fuzz target: NTS extension fields on NTP packets (src/nts/packet) and cookies.
// The first octet picks what the rest is:
//   0: a request as received: parse_request, and check_request when it parses (a fixed
//      secret: the fuzzer cannot forge a cookie, so this reaches the NAK paths);
//   1: the recipe of a genuine request (placeholders, UID, one octet changed at an offset
//      after sealing), built with the client code: unchanged it must authenticate and the
//      reply must be as long as the request and verify on the client's side; changed it must
//      not authenticate;
//   2: a reply as a client receives it: check_reply;
//   3: a cookie as received: CookieJar::open.
// Invariants throughout: a reply is never longer than its request, cookies <= 8.
#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "fuzz_check.h"
#include "nts/packet.h"

using namespace strata;

namespace {

struct Fixed {
  nts::Secrets secrets;
  nts::KeyPolicy policy{86400, 7};
  int64_t now = 1'800'000'000;
  nts::PacketState state;
  nts::SessionKeys keys;
  nts::Siv c2s, s2c;
  Fixed() {
    nts::Key k{};
    k.fill(0x42);
    secrets.secrets.push_back(nts::make_secret(k));
    secrets.generation = 1;
    keys.c2s.fill(0xc2);
    keys.s2c.fill(0x52);
    c2s.set_key(keys.c2s);
    s2c.set_key(keys.s2c);
  }
};

Fixed& fixed() {
  static Fixed f;
  return f;
}

// The server's whole handling of one request; returns the reply length (0: none).
size_t serve(std::span<const uint8_t> req, std::span<uint8_t> reply, bool* authentic) {
  Fixed& f = fixed();
  *authentic = false;
  nts::ParsedRequest parsed;
  if (nts::parse_request(req, parsed) != nts::Problem::kNone) return 0;
  STRATA_FUZZ_CHECK(parsed.authenticator < req.size() && !parsed.uid.empty());
  nts::SessionKeys keys;
  const nts::Checked c = nts::check_request(req, parsed, f.secrets, f.policy, f.now, f.state, keys);
  if (c.problem != nts::Problem::kNone) return 0;
  if (c.nak != nts::Nak::kNone) {
    const size_t n = nts::append_nak_fields(reply, parsed);
    STRATA_FUZZ_CHECK(n <= req.size());
    return n;
  }
  STRATA_FUZZ_CHECK(c.cookies >= 1 && c.cookies <= nts::kMaxCookies);
  nts::Siv s2c;
  nts::ReplySeal seal;
  unsigned sent = 0;
  const size_t n = nts::append_reply_fields(reply, parsed, c.cookies, req.size(), f.secrets, f.policy,
                                            f.now, keys, f.state, s2c, seal, &sent);
  STRATA_FUZZ_CHECK(n <= req.size() && sent <= c.cookies);
  if (n > 0) nts::seal_reply(reply.first(n), seal, s2c);
  *authentic = true;
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 4096) return 0;
  Fixed& f = fixed();
  const std::span<const uint8_t> rest(data + 1, size - 1);
  std::vector<uint8_t> reply(4096);
  bool authentic = false;
  switch (data[0] % 4) {
    case 0: {
      if (rest.size() < 48) return 0;
      serve(rest, reply, &authentic);
      break;
    }
    case 1: {
      if (rest.size() < 36) return 0;
      const unsigned placeholders = rest[0] % 10;
      const size_t offset = (size_t{rest[1]} << 8 | rest[2]);
      const uint8_t flip = rest[3];
      std::array<uint8_t, nts::kCookieSize> cookie{};
      f.state.jar.seal(f.secrets, f.policy, f.now, f.keys, f.state.random, cookie);
      std::vector<uint8_t> req(2048);
      req[0] = 0x23;
      const size_t n = nts::append_client_fields(req, rest.subspan(4, 32), cookie, placeholders,
                                                 f.c2s, f.state.random);
      STRATA_FUZZ_CHECK(n == 228 + 104 * placeholders);
      req.resize(n);
      const bool changed = offset < n && flip != 0;
      if (changed) req[offset] ^= flip;
      const size_t m = serve(req, reply, &authentic);
      if (!changed) {
        STRATA_FUZZ_CHECK(authentic && m == n);
        std::array<nts::ClientCookie, 8> got{};
        size_t received = 0;
        STRATA_FUZZ_CHECK(nts::check_reply({reply.data(), m}, rest.subspan(4, 32), f.s2c, got, received) ==
                          nts::ReplyCheck::kOk);
        STRATA_FUZZ_CHECK(received == std::min<size_t>(1 + placeholders, 8));
      } else {
        // Everything before the authenticator is its associated data, and its own fields
        // choose the nonce and ciphertext: no change may pass.
        STRATA_FUZZ_CHECK(!authentic);
      }
      break;
    }
    case 2: {
      std::array<nts::ClientCookie, 8> got{};
      size_t received = 0;
      const std::span<const uint8_t> uid = rest.first(std::min<size_t>(rest.size(), 32));
      const nts::ReplyCheck r = nts::check_reply(rest.subspan(uid.size()), uid, f.s2c, got, received);
      STRATA_FUZZ_CHECK(received <= got.size());
      if (r != nts::ReplyCheck::kOk) STRATA_FUZZ_CHECK(received == 0);
      break;
    }
    case 3: {
      nts::SessionKeys keys;
      int64_t age = 0;
      const nts::CookieStatus s = f.state.jar.open(f.secrets, f.policy, f.now, rest, keys, &age);
      if (s == nts::CookieStatus::kOk) STRATA_FUZZ_CHECK(rest.size() == nts::kCookieSize && age >= -1 && age <= 7);
      break;
    }
  }
  return 0;
}
