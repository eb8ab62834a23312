// Per-packet decision (see decide.h). One straight line of checks, each exit a counted reason,
// in NTPsec's order so `ntpq -c sysstats` style counters mean what operators expect.
#include "server/decide.h"

#include <algorithm>

#include "io/backend.h"

namespace strata::server {

using stats::Counter;
using wire::Mode;
using wire::Trailer;
using wire::Verdict;

Counter drop_counter(DropReason r) {
  switch (r) {
    case DropReason::kNone: break;
    case DropReason::kTooShort: return Counter::drop_too_short;
    case DropReason::kBadVersion: return Counter::drop_bad_version;
    case DropReason::kBadMode0: return Counter::drop_bad_mode0;
    case DropReason::kBadTrailer: return Counter::drop_bad_trailer;
    case DropReason::kTruncated: return Counter::drop_truncated;
    case DropReason::kSourcePort0: return Counter::drop_source_port0;
    case DropReason::kModeSymmetricPassive: return Counter::drop_mode_symmetric_passive;
    case DropReason::kModeServer: return Counter::drop_mode_server;
    case DropReason::kModeBroadcast: return Counter::drop_mode_broadcast;
    case DropReason::kModeControl: return Counter::drop_mode_control;
    case DropReason::kModePrivate: return Counter::drop_mode_private;
    case DropReason::kMac: return Counter::drop_mac;
    case DropReason::kBadMac: return Counter::drop_bad_mac;
    case DropReason::kCryptoNak: return Counter::drop_crypto_nak;
    case DropReason::kNts: return Counter::drop_nts;
    case DropReason::kNtsMalformed: return Counter::drop_nts_malformed;
    case DropReason::kNtsMissingPadding: return Counter::drop_nts_missing_padding;
    case DropReason::kMsSntp: return Counter::drop_mssntp;
    case DropReason::kUnsynchronised: return Counter::drop_unsynchronised;
    case DropReason::kRateLimited: return Counter::drop_rate_limited;
    case DropReason::kIgnored: return Counter::drop_ignored;
    case DropReason::kDenied: return Counter::drop_denied;
    case DropReason::kBlocked: return Counter::drop_blocked;
  }
  return Counter::received;  // unreachable for real reasons
}

Counter ntpd_bucket(DropReason r) {
  switch (r) {
    case DropReason::kMac:
    case DropReason::kBadMac:
    case DropReason::kCryptoNak: return Counter::auth_failed;
    case DropReason::kModeServer:
    case DropReason::kNts:
    case DropReason::kMsSntp:
    case DropReason::kUnsynchronised: return Counter::declined;
    case DropReason::kRateLimited: return Counter::rate_limited;
    case DropReason::kIgnored:
    case DropReason::kModeControl:  // noquery, as NTPsec counts it
    case DropReason::kBlocked:      // a dynamic access rule
    case DropReason::kDenied: return Counter::restricted;
    default: return Counter::bad_format;
  }
}

BatchContext make_context(const clock::TimeState& state, base::RealTime now,
                          clock::UnsyncAction unsynchronised) {
  BatchContext c;
  c.server = clock::server_info(state, now);
  c.synchronised = state.synchronised;
  c.unsynchronised = unsynchronised;
  return c;
}

namespace {

Decision drop(DropReason reason, VersionClass version = VersionClass::kNotCounted) {
  Decision d;
  d.reason = reason;
  d.version = version;
  return d;
}

// Modes refused before the version is counted (NTPsec's early mode filter).
DropReason early_mode_drop(Mode mode) {
  switch (mode) {
    case Mode::kSymmetricPassive: return DropReason::kModeSymmetricPassive;
    case Mode::kBroadcast: return DropReason::kModeBroadcast;
    case Mode::kPrivate: return DropReason::kModePrivate;
    case Mode::kControl: return DropReason::kModeControl;
    default: return DropReason::kNone;
  }
}

}  // namespace

Decision decide(std::span<const uint8_t> request, bool truncated, uint16_t source_port,
                base::NtpTimestamp receive, const BatchContext& context,
                std::span<uint8_t> out, const Tracking* tracking) {
  if (truncated) return drop(DropReason::kTruncated);
  const wire::Request req = wire::parse_request(request);
  if (req.verdict == Verdict::kBadVersion) return drop(DropReason::kBadVersion);
  if (req.verdict == Verdict::kBadMode0) return drop(DropReason::kBadMode0);
  if (request.empty()) return drop(DropReason::kTooShort);
  if (req.mode == Mode::kControl && tracking != nullptr && tracking->control) {
    const policy::Verdict pv = tracking->rules.policy.lookup(tracking->peer);
    if (pv.access == policy::Access::kIgnore) return drop(DropReason::kIgnored);
    if (!pv.query && tracking->rules.control_key == 0) return drop(DropReason::kModeControl);
    // The longest request: header, 468 octets of data padded to 8, a 24-octet MAC.
    if (request.size() > 12 + 472 + 24) return drop(DropReason::kBadTrailer);
    Decision d;
    d.to_control = true;
    return d;
  }
  if (const DropReason r = early_mode_drop(req.mode); r != DropReason::kNone) return drop(r);
  if (source_port == 0) return drop(DropReason::kSourcePort0);

  const VersionClass version =
      req.version == wire::kMaxVersion ? VersionClass::kCurrent : VersionClass::kOlder;
  if (req.verdict == Verdict::kTooShort) return drop(DropReason::kTooShort, version);
  if (req.verdict == Verdict::kBadTrailer) return drop(DropReason::kBadTrailer, version);
  if (req.mode == Mode::kServer) return drop(DropReason::kModeServer, version);
  // NTS: its fields are checked first; the cookie and authenticator after the limiter.
  const bool nts_request = req.nts;
  nts::ParsedRequest nts_fields;
  if (nts_request) {
    if (tracking == nullptr || tracking->nts == nullptr || !tracking->rules.nts_secrets)
      return drop(DropReason::kNts, version);
    if (req.mode != Mode::kClient || req.trailer != Trailer::kNone) {
      Decision x = drop(DropReason::kNtsMalformed, version);
      x.nts = true;
      return x;
    }
    const nts::Problem p = nts::parse_request(request, nts_fields);
    if (p != nts::Problem::kNone) {
      Decision x = drop(p == nts::Problem::kMissingPadding ? DropReason::kNtsMissingPadding
                                                           : DropReason::kNtsMalformed,
                        version);
      x.nts = true;
      return x;
    }
  }
  const auth::Key* key = nullptr;
  bool cmac_failed = false;
  DropReason auth_failure = DropReason::kNone;  // answered with a crypto-NAK if the rules say so
  switch (req.trailer) {
    case Trailer::kNone: break;
    case Trailer::kCryptoNak: return drop(DropReason::kCryptoNak, version);
    case Trailer::kMac: {
      if (tracking == nullptr) return drop(DropReason::kMac, version);  // no keys
      const Rules& rules = tracking->rules;
      key = rules.keys.find(req.key_id);
      if (key == nullptr || !key->trusted) {
        auth_failure = DropReason::kMac;
      } else if (!auth::verify(*key, request.first(req.mac_offset),
                               request.subspan(req.mac_offset))) {
        auth_failure = DropReason::kBadMac;
      }
      if (auth_failure != DropReason::kNone) {
        const bool cmac = key != nullptr && key->algorithm == auth::Algorithm::kAes128Cmac;
        key = nullptr;
        if (rules.bad_mac == auth::BadMac::kDrop) {
          Decision x = drop(auth_failure, version);
          x.cmac_failed = cmac;
          return x;
        }
        cmac_failed = cmac;
      }
      break;
    }
    case Trailer::kMsSntp: return drop(DropReason::kMsSntp, version);
  }

  Decision d;
  d.nts = nts_request;
  // An NTS request refused after the client table saw it: what the table said is kept.
  const auto dropped = [&](Decision x, DropReason reason = DropReason::kNtsMalformed) {
    x.reply = false;
    x.kod = false;
    x.nts_authenticated = false;
    x.nts_nak = nts::Nak::kNone;
    x.reason = reason;
    x.version = version;
    return x;
  };
  nts::SessionKeys nts_keys;
  // Opens the cookie and verifies the authenticator (once the limiter has let the request on).
  const auto nts_check = [&](Decision& x) {
    const nts::Checked c =
        nts::check_request(request, nts_fields, *tracking->rules.nts_secrets, tracking->rules.nts_keys,
                           tracking->rx_ns / 1'000'000'000, *tracking->nts, nts_keys);
    x.nts_key_age = static_cast<int8_t>(std::clamp<int64_t>(c.key_age, -1, 127));
    if (c.problem != nts::Problem::kNone) return false;
    x.nts_nak = c.nak;
    x.nts_authenticated = c.nak == nts::Nak::kNone;
    x.nts_cookies = static_cast<uint8_t>(c.cookies);
    return true;
  };
  // Appends the UID and the authenticator with fresh cookies to the header in `out`.
  const auto nts_fields_out = [&](Decision& x) {
    unsigned sent = 0;
    const size_t n = nts::append_reply_fields(out, nts_fields, x.nts_cookies, request.size(),
                                              *tracking->rules.nts_secrets, tracking->rules.nts_keys,
                                              tracking->rx_ns / 1'000'000'000, nts_keys, *tracking->nts,
                                              *tracking->nts_seal, x.nts_seal, &sent);
    x.nts_cookies = static_cast<uint8_t>(sent);
    x.length = static_cast<uint16_t>(n);
    return n > 0;
  };
  if (tracking != nullptr) {
    const policy::Verdict pv = tracking->rules.policy.lookup(tracking->peer);
    if (pv.access == policy::Access::kIgnore) return drop(DropReason::kIgnored, version);
    const clients::LimitParams& limits = tracking->rules.limits;
    clients::Treatment treatment =
        pv.access == policy::Access::kDeny ? clients::Treatment::kDenied
        : pv.limited && limits.enabled     ? clients::Treatment::kLimited
                                           : clients::Treatment::kUnlimited;
    // Dynamic blocks: one placed by hand covers every source it names (a nolimit one too);
    // the rules meter every source not denied and not under a nolimit rule (with the limiter
    // off, [ratelimit] enabled = false, every source not denied: [blocks] exclude keeps some out).
    if (const policy::BlockSet* blocks = tracking->blocks; blocks != nullptr && treatment != clients::Treatment::kDenied) {
      const clients::AddressKey source = clients::AddressKey::from(tracking->peer);
      if (tracking->meter != nullptr && tracking->events != nullptr && blocks->rules_enabled() &&
          (pv.limited || !limits.enabled)) {
        tracking->meter->observe(source, tracking->rx_ns, blocks->meter_rules(), blocks->epoch(),
                                 [&](const clients::BlockEvent& e) { tracking->events->push(e); });
      }
      if (const policy::Block* block = blocks->match(source)) {
        if (block->hits) block->hits->add(tracking->worker);
        treatment = block->action == policy::BlockAction::kDrop  ? clients::Treatment::kBlockedDrop
                    : block->action == policy::BlockAction::kKod ? clients::Treatment::kBlockedKod
                                                                 : clients::Treatment::kBlockedLeak;
      }
    }
    const clients::Observation o = tracking->tracker.observe(
        tracking->peer, tracking->local, static_cast<uint8_t>(req.mode), req.version,
        tracking->rx_ns, limits, treatment,
        static_cast<uint32_t>(request.size() + (tracking->peer.family == base::Family::kV4
                                                    ? io::kIpUdpOverheadV4
                                                    : io::kIpUdpOverheadV6)),
        static_cast<uint8_t>(nts_request ? clients::kFlagNts : 0));
    const bool denied = treatment == clients::Treatment::kDenied;
    const bool blocked = clients::blocked(treatment);
    const DropReason refusal = denied ? DropReason::kDenied : blocked ? DropReason::kBlocked : DropReason::kRateLimited;
    d.blocked = blocked;
    const auto note = [&](Decision& x) {
      x.untracked = !o.tracked;
      x.new_client = o.created;
      x.evicted = o.evicted;
      x.prefix_evicted = o.prefix_evicted;
      x.gap_ns = o.gap_ns;
      x.request_version = req.version;
      x.request_mode = static_cast<uint8_t>(req.mode);
    };
    if (o.verdict == clients::Verdict::kDrop) {
      Decision x = drop(refusal, version);
      x.limited = !denied && !blocked;
      x.denied = denied;
      x.blocked = blocked;
      x.nts = nts_request;
      note(x);
      return x;
    }
    note(d);
    if (o.verdict == clients::Verdict::kKod) {
      d.limited = !denied && !blocked;
      d.denied = denied;
      // To an NTS client the KoD is authenticated and carries cookies, so the client is not
      // starved of them; one whose authentication fails is not answered at all.
      if (nts_request && (!nts_check(d) || d.nts_nak != nts::Nak::kNone)) return dropped(d, refusal);
      d.reply = true;
      d.version = version;
      d.kod = true;
      d.length = static_cast<uint16_t>(
          wire::build_kod(req, denied ? wire::kKissDeny : wire::kKissRate,
                          std::max(req.header.poll, limits.kod_poll()), out));
      if (nts_request) {  // sealed now: a KoD has no transmit stamp to wait for
        if (d.length == 0 || !nts_fields_out(d)) return dropped(d);
        nts::seal_reply(out.first(d.length), d.nts_seal, *tracking->nts_seal);
        return d;
      }
      if (key != nullptr) {  // a KoD has no transmit stamp to wait for: sign it now
        d.length = static_cast<uint16_t>(
            d.length + auth::sign(*key, out.first(d.length), out.subspan(d.length)));
        d.key = key;
      }
      return d;
    }
    d.leaked = o.verdict == clients::Verdict::kLeak;
  }
  if (!context.synchronised && context.unsynchronised == clock::UnsyncAction::kDrop)
    return dropped(d, DropReason::kUnsynchronised);

  if (nts_request) {
    if (!nts_check(d)) return dropped(d);
    if (d.nts_nak != nts::Nak::kNone) {
      // KoD NTSN: the UID and nothing else (RFC 8915 section 5.7).
      d.reply = true;
      d.version = version;
      d.kod = true;
      if (wire::build_kod(req, nts::kKissNtsNak, req.header.poll, out) == 0) return dropped(d);
      d.length = static_cast<uint16_t>(nts::append_nak_fields(out, nts_fields));
      if (d.length == 0) return dropped(d);
      return d;
    }
  }
  d.reply = true;
  d.version = version;
  d.length = static_cast<uint16_t>(
      wire::build_reply(req, context.server, receive, req.header.poll, out));
  d.stamp_transmit = true;
  if (nts_request) {
    if (!nts_fields_out(d)) return dropped(d);
    d.nts_seal_pending = true;
  }
  if (key != nullptr && out.size() >= d.length + auth::kMaxMac) {
    d.key = key;
    d.length = static_cast<uint16_t>(d.length + auth::kKeyIdSize + auth::digest_length(key->algorithm));
  } else if (auth_failure != DropReason::kNone && out.size() >= d.length + wire::kCryptoNakSize) {
    std::fill_n(out.begin() + d.length, wire::kCryptoNakSize, uint8_t{0});
    d.length = static_cast<uint16_t>(d.length + wire::kCryptoNakSize);
    d.crypto_nak = true;
    d.cmac_failed = cmac_failed;
    d.reason = auth_failure;  // which failure, for the counters
  }
  d.unsynchronised = context.server.leap == wire::Leap::kUnsynchronised;
  d.v1_mode0 = req.v1_mode0;
  d.symmetric = req.mode == Mode::kSymmetricActive;
  return d;
}

void finish_reply(std::span<uint8_t> reply, base::NtpTimestamp transmit, const auth::Key* key,
                  const nts::ReplySeal* seal, const nts::Siv* siv) {
  wire::stamp_transmit(reply, transmit);
  if (key != nullptr && reply.size() > wire::kHeaderSize)
    auth::sign(*key, reply.first(wire::kHeaderSize), reply.subspan(wire::kHeaderSize));
  if (seal != nullptr && siv != nullptr) nts::seal_reply(reply, *seal, *siv);
}

void count(const Decision& d, stats::WorkerCounters& c) {
  c.add(Counter::received);
  if (d.version == VersionClass::kCurrent) c.add(Counter::current_version);
  if (d.version == VersionClass::kOlder) c.add(Counter::older_version);
  if (d.request_version != 0) {
    // The version and mode mix of requests that met the client table.
    static constexpr Counter kVersion[] = {Counter::requests_v1, Counter::requests_v1,
                                           Counter::requests_v2, Counter::requests_v3,
                                           Counter::requests_v4};
    if (d.request_version <= 4) c.add(kVersion[d.request_version]);
    if (d.request_version == 1 && d.request_mode == 3) c.add(Counter::requests_v1_mode3);
    if (d.request_version == 1 && d.request_mode == 1) c.add(Counter::requests_v1_mode1);
    c.add(d.request_mode == 1 ? Counter::requests_mode1
                              : d.request_mode == 0 ? Counter::requests_mode0 : Counter::requests_mode3);
  }
  if (d.to_control) return;  // counted by the control service
  if (d.nts) {
    c.add(Counter::nts_requests);
    if (d.nts_authenticated) {
      c.add(Counter::nts_authenticated);
      c.add(d.nts_key_age == 0 ? Counter::nts_key_current
            : d.nts_key_age < 0 ? Counter::nts_key_next : Counter::nts_key_past);
    }
    if (d.reply) c.add(Counter::nts_cookies_issued, d.nts_cookies);
  }
  if (d.blocked) c.add(Counter::blocked);
  if (d.new_client) c.add(Counter::clients_new);
  if (d.evicted) c.add(Counter::clients_evicted);
  if (d.untracked) c.add(Counter::clients_untracked);
  if (d.prefix_evicted) c.add(Counter::limiter_evicted_active);
  if (!d.reply) {
    c.add(ntpd_bucket(d.reason));
    c.add(drop_counter(d.reason));
    return;
  }
  if (d.cmac_failed) c.add(Counter::auth_failed_cmac);
  if (d.key != nullptr) {
    c.add(Counter::authenticated_replies);
    if (d.key->algorithm == auth::Algorithm::kAes128Cmac) c.add(Counter::authenticated_cmac);
  }
  if (d.nts_nak != nts::Nak::kNone) {
    static constexpr Counter kNak[] = {Counter::nts_nak_sent, Counter::nts_nak_unknown_key,
                                       Counter::nts_nak_expired_key, Counter::nts_nak_bad_cookie,
                                       Counter::nts_nak_bad_authenticator};
    c.add(Counter::auth_failed);
    c.add(Counter::kod_sent);
    c.add(Counter::nts_nak_sent);
    c.add(kNak[static_cast<size_t>(d.nts_nak)]);
    return;
  }
  if (d.kod) {
    c.add(d.denied || d.blocked ? Counter::restricted : Counter::rate_limited);
    if (d.denied) c.add(Counter::kod_deny_sent);
    c.add(Counter::kod_sent);
    return;
  }
  if (d.crypto_nak) {
    c.add(Counter::auth_failed);
    c.add(drop_counter(d.reason));
    c.add(Counter::crypto_nak_sent);
    return;
  }
  if (d.leaked) c.add(d.blocked ? Counter::blocked_leaked : Counter::rate_limit_leaked);
  c.add(Counter::processed);
  if (d.unsynchronised) c.add(Counter::unsynchronised_replies);
  if (d.v1_mode0) c.add(Counter::served_v1_mode0);
  if (d.symmetric) c.add(Counter::served_symmetric);
}

}  // namespace strata::server
