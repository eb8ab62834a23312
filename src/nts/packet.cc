#include "nts/packet.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "base/bytes.h"

namespace strata::nts {
namespace {

constexpr size_t kHeader = 48;
constexpr size_t kEfHeader = 4;
constexpr size_t kAuthHeader = 4;  // nonce length, ciphertext length

constexpr size_t pad4(size_t n) { return (n + 3) & ~size_t{3}; }

struct Field {
  uint16_t type = 0;
  size_t offset = 0;  // of the field's header
  size_t length = 0;  // the whole field
  std::span<const uint8_t> body;
};

// One EF at `pos` of `bytes`: a 4-octet header whose length counts the whole field, a
// multiple of 4. NTS fields may be shorter than RFC 7822's 16 octets (section 5.1 of 8915
// leaves their sizes to their own rules), so only >= 4 is required here.
bool next_field(std::span<const uint8_t> bytes, size_t pos, Field& f) {
  if (bytes.size() - pos < kEfHeader) return false;
  f.type = base::load_be16(bytes.data() + pos);
  f.length = base::load_be16(bytes.data() + pos + 2);
  if (f.length < kEfHeader || f.length % 4 != 0 || f.length > bytes.size() - pos) return false;
  f.offset = pos;
  f.body = bytes.subspan(pos + kEfHeader, f.length - kEfHeader);
  return true;
}

// The authenticator's body: nonce length, ciphertext length, the nonce and the ciphertext
// (tag first), each padded to 4. False when the lengths do not fit the field.
bool split_authenticator(std::span<const uint8_t> body, std::span<const uint8_t>& nonce,
                         std::span<const uint8_t>& sealed) {
  if (body.size() < kAuthHeader) return false;
  const size_t nonce_length = base::load_be16(body.data());
  const size_t sealed_length = base::load_be16(body.data() + 2);
  if (nonce_length < 1 || sealed_length < kTagSize ||
      kAuthHeader + pad4(nonce_length) + pad4(sealed_length) > body.size())
    return false;
  nonce = body.subspan(kAuthHeader, nonce_length);
  sealed = body.subspan(kAuthHeader + pad4(nonce_length), sealed_length);
  return true;
}

void put_field_header(uint8_t* p, uint16_t type, size_t length) {
  base::store_be16(p, type);
  base::store_be16(p + 2, static_cast<uint16_t>(length));
}

}  // namespace

Problem parse_request(std::span<const uint8_t> packet, ParsedRequest& out) {
  out = ParsedRequest{};
  if (packet.size() < kHeader) return Problem::kMalformed;
  bool uid = false, cookie = false, auth = false;
  unsigned placeholders = 0;
  size_t placeholder_length = 0;
  bool placeholder_mismatch = false;
  Field f;
  for (size_t pos = kHeader; pos < packet.size(); pos += f.length) {
    if (!next_field(packet, pos, f)) return Problem::kMalformed;
    switch (f.type) {
      case kEfUniqueIdentifier:
        if (uid || f.body.size() < kMinUniqueIdentifier) return Problem::kMalformed;
        uid = true;
        out.uid = packet.subspan(f.offset, f.length);
        break;
      case kEfCookie:
        if (cookie) return Problem::kMalformed;
        cookie = true;
        out.cookie = f.body;
        break;
      case kEfCookiePlaceholder:
        if (placeholders > 0 && f.body.size() != placeholder_length) placeholder_mismatch = true;
        placeholder_length = f.body.size();
        ++placeholders;
        break;
      case kEfAuthenticator: {
        if (pos + f.length != packet.size()) return Problem::kAuthenticatorNotLast;
        auth = true;
        out.authenticator = pos;
        if (!split_authenticator(f.body, out.nonce, out.sealed)) return Problem::kBadLengths;
        // Section 5.6: nonce plus additional padding at least N_REQ (16) octets.
        if (kAuthHeader + std::max(pad4(out.nonce.size()), kMinNonceAndPadding) + pad4(out.sealed.size()) >
            f.body.size())
          return Problem::kMissingPadding;
        break;
      }
      default:
        break;  // authenticated, not ours: ignored
    }
  }
  if (!uid || !cookie || !auth) return Problem::kMissingField;
  if (placeholders > 0 && (placeholder_mismatch || placeholder_length != out.cookie.size()))
    return Problem::kPlaceholderLength;
  out.placeholders = placeholders;
  return Problem::kNone;
}

Checked check_request(std::span<const uint8_t> packet, const ParsedRequest& request,
                      const Secrets& secrets, const KeyPolicy& policy, int64_t now_s,
                      PacketState& state, SessionKeys& keys) {
  Checked c;
  switch (state.jar.open(secrets, policy, now_s, request.cookie, keys, &c.key_age)) {
    case CookieStatus::kOk: break;
    case CookieStatus::kUnknownKey: c.nak = Nak::kUnknownKey; return c;
    case CookieStatus::kExpiredKey: c.nak = Nak::kExpiredKey; return c;
    case CookieStatus::kBadCookie: c.nak = Nak::kBadCookie; return c;
  }
  const size_t plain_length = request.sealed.size() - kTagSize;
  if (plain_length > state.plaintext.size()) {
    c.problem = Problem::kEncryptedFields;
    return c;
  }
  state.c2s.set_key(keys.c2s);
  if (!state.c2s.open(request.nonce, packet.first(request.authenticator), request.sealed,
                      state.plaintext.data())) {
    c.nak = Nak::kBadAuthenticator;
    return c;
  }
  unsigned placeholders = request.placeholders;
  const std::span<const uint8_t> plain{state.plaintext.data(), plain_length};
  Field f;
  for (size_t pos = 0; pos < plain.size(); pos += f.length) {
    if (!next_field(plain, pos, f)) {
      c.problem = Problem::kEncryptedFields;
      return c;
    }
    if (f.type == kEfCookiePlaceholder) {
      if (f.body.size() != request.cookie.size()) {
        c.problem = Problem::kPlaceholderLength;
        return c;
      }
      ++placeholders;
    }
    // Other encrypted fields (a cookie among them: section 5.7 forbids encrypting it) are
    // authenticated but not ours: ignored.
  }
  c.cookies = std::min<unsigned>(1 + placeholders, kMaxCookies);
  return c;
}

size_t append_reply_fields(std::span<uint8_t> reply, const ParsedRequest& request,
                           unsigned cookies, size_t max_length, const Secrets& secrets,
                           const KeyPolicy& policy, int64_t now_s, const SessionKeys& keys,
                           PacketState& state, Siv& s2c, ReplySeal& seal, unsigned* sent) {
  const size_t limit = std::min(max_length, reply.size());
  const size_t uid_end = kHeader + request.uid.size();
  const size_t fixed = uid_end + kEfHeader + kAuthHeader + kReplyNonceSize + kTagSize;
  if (fixed > limit) return 0;
  const size_t cookie_field = kEfHeader + kCookieSize;
  const unsigned n = static_cast<unsigned>(
      std::min<size_t>(cookies, std::min<size_t>(kMaxCookies, (limit - fixed) / cookie_field)));
  const size_t plain_length = n * cookie_field;
  // Pad to the request's length (it is what the client sent, so no amplification), as chrony
  // does: the reply then has exactly the request's size. Not past a multiple of 4.
  const size_t unpadded = fixed + plain_length;
  const size_t total = std::max(unpadded, limit & ~size_t{3});

  uint8_t* p = reply.data();
  std::memcpy(p + kHeader, request.uid.data(), request.uid.size());
  const size_t auth = uid_end;
  put_field_header(p + auth, kEfAuthenticator, total - auth);
  base::store_be16(p + auth + kEfHeader, kReplyNonceSize);
  base::store_be16(p + auth + kEfHeader + 2, static_cast<uint16_t>(kTagSize + plain_length));
  const size_t nonce = auth + kEfHeader + kAuthHeader;
  state.random.fill(reply.subspan(nonce, kReplyNonceSize));
  const size_t tag = nonce + kReplyNonceSize;
  uint8_t* plain = p + tag + kTagSize;
  for (unsigned i = 0; i < n; ++i) {
    uint8_t* field = plain + i * cookie_field;
    put_field_header(field, kEfCookie, cookie_field);
    state.jar.seal(secrets, policy, now_s, keys, state.random,
                   std::span<uint8_t, kCookieSize>(field + kEfHeader, kCookieSize));
  }
  std::memset(p + unpadded, 0, total - unpadded);
  s2c.set_key(keys.s2c);
  seal.ad_length = static_cast<uint16_t>(auth);
  seal.nonce_offset = static_cast<uint16_t>(nonce);
  seal.tag_offset = static_cast<uint16_t>(tag);
  seal.plaintext_length = static_cast<uint16_t>(plain_length);
  if (sent != nullptr) *sent = n;
  return total;
}

void seal_reply(std::span<uint8_t> reply, const ReplySeal& seal, const Siv& s2c) {
  s2c.seal(reply.subspan(seal.nonce_offset, kReplyNonceSize), reply.first(seal.ad_length),
           reply.subspan(seal.tag_offset + kTagSize, seal.plaintext_length),
           reply.data() + seal.tag_offset);
}

size_t append_nak_fields(std::span<uint8_t> reply, const ParsedRequest& request) {
  if (reply.size() < kHeader + request.uid.size()) return 0;
  std::memcpy(reply.data() + kHeader, request.uid.data(), request.uid.size());
  return kHeader + request.uid.size();
}

size_t append_client_fields(std::span<uint8_t> out, std::span<const uint8_t> uid,
                            std::span<const uint8_t> cookie, unsigned placeholders,
                            const Siv& c2s, Random& random) {
  const size_t uid_field = kEfHeader + pad4(uid.size());
  const size_t cookie_field = kEfHeader + pad4(cookie.size());
  const size_t auth_field = kEfHeader + kAuthHeader + kReplyNonceSize + kTagSize;
  const size_t total = kHeader + uid_field + cookie_field * (1 + placeholders) + auth_field;
  if (out.size() < total || uid.empty() || cookie.empty()) return 0;
  uint8_t* p = out.data();
  size_t pos = kHeader;
  std::memset(p + pos, 0, total - pos);
  put_field_header(p + pos, kEfUniqueIdentifier, uid_field);
  std::memcpy(p + pos + kEfHeader, uid.data(), uid.size());
  pos += uid_field;
  put_field_header(p + pos, kEfCookie, cookie_field);
  std::memcpy(p + pos + kEfHeader, cookie.data(), cookie.size());
  pos += cookie_field;
  for (unsigned i = 0; i < placeholders; ++i) {
    put_field_header(p + pos, kEfCookiePlaceholder, cookie_field);
    pos += cookie_field;
  }
  const size_t auth = pos;
  put_field_header(p + auth, kEfAuthenticator, auth_field);
  base::store_be16(p + auth + kEfHeader, kReplyNonceSize);
  base::store_be16(p + auth + kEfHeader + 2, kTagSize);
  const size_t nonce = auth + kEfHeader + kAuthHeader;
  random.fill(out.subspan(nonce, kReplyNonceSize));
  c2s.seal(out.subspan(nonce, kReplyNonceSize), out.first(auth), {}, p + nonce + kReplyNonceSize);
  return total;
}

ReplyCheck check_reply(std::span<const uint8_t> reply, std::span<const uint8_t> uid,
                       const Siv& s2c, std::span<ClientCookie> cookies, size_t& received) {
  received = 0;
  if (reply.size() < kHeader) return ReplyCheck::kMalformed;
  bool uid_seen = false;
  Field f;
  for (size_t pos = kHeader; pos < reply.size(); pos += f.length) {
    if (!next_field(reply, pos, f)) return ReplyCheck::kMalformed;
    if (f.type == kEfUniqueIdentifier) {
      if (uid_seen || f.body.size() < uid.size() ||
          !std::equal(uid.begin(), uid.end(), f.body.begin()))
        return ReplyCheck::kNoUid;
      uid_seen = true;
      continue;
    }
    if (f.type != kEfAuthenticator) continue;  // unauthenticated until the authenticator
    if (!uid_seen) return ReplyCheck::kNoUid;
    std::span<const uint8_t> nonce, sealed;
    if (!split_authenticator(f.body, nonce, sealed)) return ReplyCheck::kMalformed;
    std::vector<uint8_t> plain(sealed.size() - kTagSize);
    if (!s2c.open(nonce, reply.first(pos), sealed, plain.data())) return ReplyCheck::kBadAuthenticator;
    Field e;
    for (size_t q = 0; q < plain.size(); q += e.length) {
      if (!next_field(plain, q, e)) return ReplyCheck::kMalformed;
      if (e.type != kEfCookie || received == cookies.size()) continue;
      if (e.body.size() > kMaxClientCookie) continue;
      ClientCookie& c = cookies[received++];
      std::copy(e.body.begin(), e.body.end(), c.bytes.begin());
      c.length = e.body.size();
    }
    return ReplyCheck::kOk;
  }
  if (uid_seen && reply[1] == 0 && base::load_be32(reply.data() + 12) == kKissNtsNak)
    return ReplyCheck::kNak;
  return uid_seen ? ReplyCheck::kBadAuthenticator : ReplyCheck::kNoUid;
}

}  // namespace strata::nts
