// NTS on NTP packets (RFC 8915 section 5): the extension fields of a request (Unique
// Identifier, NTS Cookie, Cookie Placeholders, the Authenticator and Encrypted Extension
// Fields), their checks, and the reply's fields: the UID echoed, fresh cookies encrypted under
// S2C inside the authenticator, padded so the reply is as long as the request and never
// longer. Free of I/O; the caller's per-worker `PacketState` holds the AEAD contexts, the cookie
// jar and the random source, so nothing is allocated per packet. Fuzzed (fuzz/fuzz_nts_ntp.cc).
//
// The order follows chrony's server: parse, open the cookie, check the authenticator with C2S,
// count the encrypted placeholders, build the reply's cookies and key S2C *before* the transmit
// timestamp is read; only seal_reply() runs after it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "nts/aead.h"
#include "nts/cookies.h"
#include "nts/random.h"

namespace strata::nts {

enum EfType : uint16_t {
  kEfUniqueIdentifier = 0x0104,
  kEfCookie = 0x0204,
  kEfCookiePlaceholder = 0x0304,
  kEfAuthenticator = 0x0404,
};

inline constexpr size_t kMinUniqueIdentifier = 32;  // body octets (section 5.3)
inline constexpr size_t kMaxCookies = 8;            // per reply (section 5.7: 1 + placeholders)
inline constexpr size_t kReplyNonceSize = 16;       // chrony's too
inline constexpr size_t kMinNonceAndPadding = 16;   // N_REQ for SIV-CMAC (section 5.6)
inline constexpr size_t kMaxPlaintext = 1024;       // encrypted EFs a request may carry
inline constexpr uint32_t kKissNtsNak = 0x4e54534e; // "NTSN"

// Why a request is dropped without an answer (malformed: no NAK is due, section 5.7).
enum class Problem : uint8_t {
  kNone,
  kMalformed,             // an EF that does not parse, two UIDs or two cookies, a short UID
  kMissingField,          // no UID, cookie or authenticator
  kAuthenticatorNotLast,  // nothing may follow it (it would be unauthenticated)
  kPlaceholderLength,     // a placeholder not as long as the cookie
  kMissingPadding,        // nonce + additional padding under 16 octets
  kBadLengths,            // nonce or ciphertext lengths that do not fit the field
  kEncryptedFields,       // the decrypted EFs do not parse, or too many of them
};

struct ParsedRequest {
  std::span<const uint8_t> uid;     // the whole UID field, to echo
  std::span<const uint8_t> cookie;  // the cookie's body
  unsigned placeholders = 0;        // authenticated-only placeholders
  size_t authenticator = 0;         // offset of the authenticator EF: the AD ends there
  std::span<const uint8_t> nonce;
  std::span<const uint8_t> sealed;  // tag || ciphertext
};

// Walks the EFs after the 48-octet header.
Problem parse_request(std::span<const uint8_t> packet, ParsedRequest& out);

// A reply's NAK reasons (a KoD NTSN with the UID and nothing else is sent).
enum class Nak : uint8_t { kNone, kUnknownKey, kExpiredKey, kBadCookie, kBadAuthenticator };

// Where the parts of a reply's authenticator are, for seal_reply().
struct ReplySeal {
  uint16_t ad_length = 0;       // header + UID: what the tag covers besides the plaintext
  uint16_t nonce_offset = 0;
  uint16_t tag_offset = 0;      // the plaintext lies at tag_offset + kTagSize
  uint16_t plaintext_length = 0;
};

struct Checked {
  Problem problem = Problem::kNone;
  Nak nak = Nak::kNone;
  unsigned cookies = 0;  // to send: min(1 + valid placeholders, 8)
  int64_t key_age = 0;   // periods since the cookie's key was current
};

// One per worker: its cookie jar, random source, the C2S context and room for decrypted EFs.
struct PacketState {
  CookieJar jar;
  Random random;
  Siv c2s;
  std::array<uint8_t, kMaxPlaintext> plaintext{};
};

// Checks a parsed request: opens the cookie and verifies the authenticator with its C2S key.
// On success `keys` holds the session's keys.
Checked check_request(std::span<const uint8_t> packet, const ParsedRequest& request,
                      const Secrets& secrets, const KeyPolicy& policy, int64_t now_s,
                      PacketState& state, SessionKeys& keys);

// Appends to a reply whose header (48 octets) is written at `reply`: the UID echo and an
// authenticator holding up to `cookies` fresh cookies (sealed with the current master key),
// fewer when the reply would outgrow `max_length` (the request's length), padded to exactly
// `max_length` when that is a multiple of 4. Keys `s2c` with the session's S2C key. Returns the
// reply's length (0 when even the UID and an empty authenticator do not fit) and the layout
// for seal_reply().
size_t append_reply_fields(std::span<uint8_t> reply, const ParsedRequest& request,
                           unsigned cookies, size_t max_length, const Secrets& secrets,
                           const KeyPolicy& policy, int64_t now_s, const SessionKeys& keys,
                           PacketState& state, Siv& s2c, ReplySeal& seal, unsigned* sent = nullptr);

// Seals the reply (after its transmit timestamp is written): the tag over the header, the UID
// and the cookies, the cookies encrypted in place.
void seal_reply(std::span<uint8_t> reply, const ReplySeal& seal, const Siv& s2c);

// Appends the UID echo to a KoD header at `reply` (a NAK has nothing else). Returns the
// length, 0 if it does not fit.
size_t append_nak_fields(std::span<uint8_t> reply, const ParsedRequest& request);

// The client's side, for `strata query --nts` and `strata load --nts`: builds a request
// (header at `out` already written) with a random UID, the cookie, `placeholders`
// placeholders and the authenticator sealed with C2S. Returns its length, 0 if it does not fit.
size_t append_client_fields(std::span<uint8_t> out, std::span<const uint8_t> uid,
                            std::span<const uint8_t> cookie, unsigned placeholders,
                            const Siv& c2s, Random& random);

// A cookie as a client keeps it: other servers' cookies need not be 100 octets.
inline constexpr size_t kMaxClientCookie = 256;
struct ClientCookie {
  std::array<uint8_t, kMaxClientCookie> bytes{};
  size_t length = 0;
  std::span<const uint8_t> view() const { return {bytes.data(), length}; }
};

enum class ReplyCheck : int8_t { kOk, kNak, kBadAuthenticator, kMalformed, kNoUid };

// Checks a server's reply to a request with `uid`: the UID echo, then the authenticator with
// S2C, and collects the cookies inside it (up to cookies.size(); `received` says how many).
// A KoD NTSN with the UID and no authenticator is kNak.
ReplyCheck check_reply(std::span<const uint8_t> reply, std::span<const uint8_t> uid,
                       const Siv& s2c, std::span<ClientCookie> cookies, size_t& received);

}  // namespace strata::nts
