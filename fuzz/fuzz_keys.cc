// Fuzz target: keys file text -> parse. Errors name a line; every key read signs and verifies
// its own MAC, and a changed digest fails.
#include <cstdint>
#include <string_view>

#include "auth/keys.h"
#include "fuzz_check.h"

using namespace strata;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auth::ParsedKeys parsed = auth::parse_keys_text(text, "fuzz");
  for (const auto& e : parsed.errors) STRATA_FUZZ_CHECK(e.line >= 1 && !e.reason.empty());
  const auth::KeyRing ring(parsed.keys);
  for (const auth::Key& k : parsed.keys) {
    STRATA_FUZZ_CHECK(k.id != 0 && k.secret_length > 0 && k.secret_length <= auth::kMaxSecret);
    STRATA_FUZZ_CHECK(ring.find(k.id) != nullptr);
    uint8_t mac[auth::kMaxMac];
    const size_t n = auth::sign(k, {data, size}, mac);
    STRATA_FUZZ_CHECK(n == auth::kKeyIdSize + auth::digest_length(k.algorithm));
    STRATA_FUZZ_CHECK(auth::key_id_of(mac) == k.id);
    STRATA_FUZZ_CHECK(auth::verify(k, {data, size}, {mac, n}));
    mac[n - 1] ^= 1;
    STRATA_FUZZ_CHECK(!auth::verify(k, {data, size}, {mac, n}));
  }
  return 0;
}
