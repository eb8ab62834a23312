// NTS-KE record codec: strict request parsing per RFC 8915 section 4, negotiation, and the
// records of a response.
#include "nts/ke_records.h"

#include <gtest/gtest.h>

namespace strata::nts {
namespace {

// Built by push_back: gcc 12's -Warray-bounds misfires on insert() into a 4-octet vector.
std::vector<uint8_t> record(uint16_t word, const std::vector<uint8_t>& body) {
  std::vector<uint8_t> out;
  out.reserve(4 + body.size());
  for (const unsigned v : {static_cast<unsigned>(word >> 8), word & 0xFFu, static_cast<unsigned>(body.size() >> 8),
                           static_cast<unsigned>(body.size() & 0xFF)})
    out.push_back(static_cast<uint8_t>(v));
  for (const uint8_t b : body) out.push_back(b);
  return out;
}
std::vector<uint8_t> cat(std::initializer_list<std::vector<uint8_t>> parts) {
  std::vector<uint8_t> out;
  for (const auto& p : parts)
    for (const uint8_t b : p) out.push_back(b);
  return out;
}
const std::vector<uint8_t> kNtp = record(0x8001, {0, 0});
const std::vector<uint8_t> kSiv = record(0x8004, {0, 15});
const std::vector<uint8_t> kEnd = record(0x8000, {});

TEST(NtsKe, ParsesATypicalRequestAndNegotiates) {
  // chrony's request: NTPv4, AEAD 30 then 15, End of Message.
  const auto bytes = cat({kNtp, record(0x8004, {0, 30, 0, 15}), kEnd});
  const ParseResult r = parse_request(bytes);
  ASSERT_EQ(r.status, ParseStatus::kComplete) << r.reason;
  EXPECT_EQ(r.length, bytes.size());
  EXPECT_EQ(r.request.protocols, (std::vector<uint16_t>{0}));
  EXPECT_EQ(r.request.aeads, (std::vector<uint16_t>{30, 15}));
  const Negotiated n = negotiate(r.request);
  EXPECT_TRUE(n.usable());
  EXPECT_EQ(n.aead, kAeadAesSivCmac256);
}

TEST(NtsKe, WaitsForTheRestOfARequestSplitAnywhere) {
  const auto bytes = cat({kNtp, kSiv, kEnd});
  for (size_t cut = 0; cut < bytes.size(); ++cut)
    EXPECT_EQ(parse_request(std::span(bytes).first(cut)).status, ParseStatus::kNeedMore) << cut;
}

TEST(NtsKe, RefusesWhatTheRfcForbids) {
  const auto bad = [](std::vector<uint8_t> bytes) { return parse_request(bytes); };
  struct Case {
    std::vector<uint8_t> bytes;
    KeError error;
    const char* reason;
  };
  const std::vector<Case> cases = {
      {cat({record(0x0001, {0, 0}), kEnd}), KeError::kBadRequest, "Next Protocol Negotiation record without its critical bit"},
      {cat({kNtp, record(0x0000, {})}), KeError::kBadRequest, "End of Message record without its critical bit"},
      {cat({kNtp, record(0x8000, {1})}), KeError::kBadRequest, "End of Message with a body"},
      {cat({kNtp, kEnd, kNtp}), KeError::kBadRequest, "data after End of Message"},
      {cat({kSiv, kEnd}), KeError::kBadRequest, "no Next Protocol Negotiation record"},
      {cat({kNtp, kNtp, kEnd}), KeError::kBadRequest, "two Next Protocol Negotiation records"},
      {cat({record(0x8001, {0}), kEnd}), KeError::kBadRequest, "Next Protocol Negotiation of odd length"},
      {cat({kNtp, record(0x8002, {0, 1}), kEnd}), KeError::kBadRequest, "Error record from a client"},
      {cat({kNtp, record(0x8003, {0, 1}), kEnd}), KeError::kBadRequest, "Warning record from a client"},
      {cat({kNtp, record(0x0005, {1, 2}), kEnd}), KeError::kBadRequest, "New Cookie record from a client"},
      {cat({kNtp, kSiv, kSiv, kEnd}), KeError::kBadRequest, "two AEAD Algorithm Negotiation records"},
      {cat({kNtp, record(0x8006, {'a', ' ', 'b'}), kEnd}), KeError::kBadRequest, "Server Negotiation that is not printable ASCII"},
      {cat({kNtp, record(0x8006, {}), kEnd}), KeError::kBadRequest, "Server Negotiation of 0 octets"},
      {cat({kNtp, record(0x8007, {1}), kEnd}), KeError::kBadRequest, "Port Negotiation of 1 octets"},
      {cat({kNtp, record(0x9234, {}), kEnd}), KeError::kUnrecognizedCritical, "unrecognised critical record 4660"},
  };
  for (const auto& c : cases) {
    const ParseResult r = bad(c.bytes);
    EXPECT_EQ(r.status, ParseStatus::kError) << c.reason;
    EXPECT_EQ(r.error, c.error) << c.reason;
    EXPECT_EQ(r.reason, c.reason);
  }
}

TEST(NtsKe, IgnoresUnknownRecordsWithoutTheCriticalBit) {
  const ParseResult r = parse_request(cat({kNtp, record(0x1234, {1, 2, 3}), record(0x0400, {}), kSiv, kEnd}));
  ASSERT_EQ(r.status, ParseStatus::kComplete) << r.reason;
  EXPECT_EQ(r.request.aeads, (std::vector<uint16_t>{15}));
}

TEST(NtsKe, AcceptsLargeRequestsUpToTheCapAndNoMore) {
  // The RFC: servers MUST accept at least 1024 octets. Padding by ignored records.
  std::vector<uint8_t> padding = record(0x1000, std::vector<uint8_t>(2000, 0));
  const ParseResult big = parse_request(cat({kNtp, padding, kSiv, kEnd}));
  EXPECT_EQ(big.status, ParseStatus::kComplete) << big.reason;
  // A record that would take the request past kMaxRequest is refused before it all arrives.
  const auto huge = cat({kNtp, record(0x1000, std::vector<uint8_t>(kMaxRequest, 0))});
  const ParseResult r = parse_request(std::span(huge).first(20));
  EXPECT_EQ(r.status, ParseStatus::kError);
  EXPECT_EQ(r.reason, "request longer than 16384 octets");
}

TEST(NtsKe, NegotiationWithoutNtpOrWithoutSivGivesNoCookies) {
  KeRequest only_gcm{{0}, {30}, {}, {}};
  EXPECT_TRUE(negotiate(only_gcm).ntp_v4);
  EXPECT_FALSE(negotiate(only_gcm).usable());
  KeRequest other_protocol{{0x8001}, {15}, {}, {}};
  EXPECT_FALSE(negotiate(other_protocol).ntp_v4);
  EXPECT_FALSE(negotiate(other_protocol).aead);
  KeResponse response{negotiate(only_gcm), {{1, 2, 3}}, std::string("ntp.example"), 123};
  // NTPv4 accepted, AEAD empty: no cookie, no server or port.
  EXPECT_EQ(encode_response(response), cat({kNtp, record(0x8004, {}), kEnd}));
}

TEST(NtsKe, ResponseRecords) {
  KeResponse r;
  r.negotiated = negotiate(KeRequest{{0}, {15}, {}, {}});
  r.cookies = {std::vector<uint8_t>(100, 7), std::vector<uint8_t>(100, 8)};
  r.server = "192.0.2.1";
  r.port = 11123;
  EXPECT_EQ(encode_response(r),
            cat({kNtp, kSiv, record(0x0005, std::vector<uint8_t>(100, 7)),
                 record(0x0005, std::vector<uint8_t>(100, 8)),
                 record(0x8006, {'1', '9', '2', '.', '0', '.', '2', '.', '1'}),
                 record(0x8007, {0x2B, 0x73}), kEnd}));
  EXPECT_EQ(encode_error(KeError::kBadRequest), cat({record(0x8002, {0, 1}), kEnd}));
}

TEST(NtsKe, RequestRoundTrip) {
  const KeRequest q{{0, 0x8001}, {15, 30}, std::string("time.example.org"), 4123};
  const ParseResult r = parse_request(encode_request(q));
  ASSERT_EQ(r.status, ParseStatus::kComplete) << r.reason;
  EXPECT_EQ(r.request, q);
}

}  // namespace
}  // namespace strata::nts
