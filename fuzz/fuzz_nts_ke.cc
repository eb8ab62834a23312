// Fuzz target: bytes an NTS-KE client sends -> parse_request. Fed in two pieces (TLS may
// deliver a request in any split) it reaches the same verdict; a complete request encodes
// back and parses to the same fields; errors carry a reason; the response to it parses as
// records that end with End of Message and is never longer than kMaxRequest.
#include <cstdint>
#include <span>

#include "fuzz_check.h"
#include "nts/ke_records.h"

using namespace strata;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 2 * nts::kMaxRequest) return 0;
  const std::span<const uint8_t> bytes(data, size);
  const nts::ParseResult whole = nts::parse_request(bytes);
  if (whole.status == nts::ParseStatus::kError) STRATA_FUZZ_CHECK(!whole.reason.empty());
  // A prefix never reaches a verdict the whole does not (no complete request in a prefix of
  // an error, and an error in a prefix stays an error).
  const nts::ParseResult half = nts::parse_request(bytes.first(size / 2));
  if (half.status == nts::ParseStatus::kComplete) STRATA_FUZZ_CHECK(half.length == size / 2);
  if (half.status == nts::ParseStatus::kError && size / 2 < size)
    STRATA_FUZZ_CHECK(whole.status == nts::ParseStatus::kError);
  if (whole.status != nts::ParseStatus::kComplete) return 0;
  STRATA_FUZZ_CHECK(whole.length == size && size <= nts::kMaxRequest);
  const auto again = nts::parse_request(nts::encode_request(whole.request));
  STRATA_FUZZ_CHECK(again.status == nts::ParseStatus::kComplete);
  STRATA_FUZZ_CHECK(again.request == whole.request);
  nts::KeResponse response;
  response.negotiated = nts::negotiate(whole.request);
  response.cookies.assign(8, std::vector<uint8_t>(100, 0xAB));
  const auto out = nts::encode_response(response);
  STRATA_FUZZ_CHECK(out.size() >= 4 && out.size() <= nts::kMaxRequest);
  STRATA_FUZZ_CHECK(out[out.size() - 4] == 0x80 && out[out.size() - 3] == 0 && out[out.size() - 2] == 0 &&
                    out[out.size() - 1] == 0);
  return 0;
}
