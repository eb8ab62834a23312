// The whole per-packet logic of stratad: request bytes in, a reply or a counted drop reason
// out. Pure: the time state, receive timestamp and policy come in as parameters, so it is
// unit-tested and fuzzed without sockets or clocks. Called by each worker for each datagram.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "auth/keys.h"
#include "clients/block_meter.h"
#include "clients/tracker.h"
#include "server/rules.h"
#include "clock/time_state.h"
#include "nts/packet.h"
#include "stats/counters.h"
#include "wire/packet.h"

namespace strata::server {

enum class DropReason : uint8_t {
  kNone,
  kTooShort,
  kBadVersion,
  kBadMode0,
  kBadTrailer,
  kTruncated,
  kSourcePort0,
  kModeSymmetricPassive,
  kModeServer,
  kModeBroadcast,
  kModeControl,
  kModePrivate,
  kMac,         // key id unknown or untrusted
  kBadMac,      // the MAC does not verify
  kCryptoNak,
  kNts,              // NTS while NTS is off (declined)
  kNtsMalformed,     // NTS fields that break RFC 8915 section 5 (no NAK is due)
  kNtsMissingPadding,
  kMsSntp,
  kUnsynchronised,
  kRateLimited,
  kIgnored,  // an access rule says ignore
  kDenied,   // an access rule says deny, and no KoD DENY is due
  kBlocked,  // a dynamic block covers the source, and no KoD or leak is due
};

// The detailed counter for a drop reason and the ntpd sysstats bucket it belongs to.
stats::Counter drop_counter(DropReason reason);
stats::Counter ntpd_bucket(DropReason reason);

enum class VersionClass : uint8_t { kNotCounted, kCurrent, kOlder };

struct Decision {
  bool reply = false;
  DropReason reason = DropReason::kNone;
  VersionClass version = VersionClass::kNotCounted;
  uint16_t length = 0;          // reply octets written to `out`
  bool stamp_transmit = false;  // the reply needs its transmit timestamp written
  bool kod = false;
  bool unsynchronised = false;  // replied with LI 3
  bool v1_mode0 = false;
  bool symmetric = false;
  // Authentication: the reply gets a MAC with this key once its transmit timestamp is written
  // (finish_reply); `length` already counts the MAC. Or it is a crypto-NAK (MAC failed).
  const auth::Key* key = nullptr;
  bool crypto_nak = false;
  bool cmac_failed = false;  // the MAC that failed was of an AES-CMAC key
  // A mode-6 request a rule lets in: hand it to the control service (no reply here).
  bool to_control = false;
  // Client tracking and rate limiting (only with a Tracking argument).
  bool limited = false;    // over the rate limit: dropped or KoD
  bool denied = false;     // refused by a deny rule (KoD DENY or dropped)
  bool blocked = false;    // under a dynamic block (dropped, KoD RATE or leaked)
  bool leaked = false;     // over the rate limit, answered anyway
  bool untracked = false;  // client table full of protected records
  bool new_client = false;
  bool evicted = false;
  bool prefix_evicted = false;
  int64_t gap_ns = -1;     // since the client's previous request (tracked clients)
  uint8_t request_version = 0;  // of a request that passed the format checks
  uint8_t request_mode = 0;
  // NTS (with a Tracking that has NTS on): the request carried NTS fields; the reply is a NAK
  // (KoD NTSN) for this reason, or authenticated with `nts_cookies` fresh cookies and, when
  // `nts_seal_pending`, sealed by finish_reply() with the tracking's `nts_seal` context.
  bool nts = false;
  nts::Nak nts_nak = nts::Nak::kNone;
  bool nts_authenticated = false;
  bool nts_seal_pending = false;
  uint8_t nts_cookies = 0;
  int8_t nts_key_age = 0;  // periods since the cookie's key was current (-1: the next)
  nts::ReplySeal nts_seal;
};

// Where a request came from, for the access rules, the client table and the rate limiter.
struct Tracking {
  clients::Tracker& tracker;
  const Rules& rules;
  base::IpAddress peer;
  base::IpAddress local;
  int64_t rx_ns = 0;  // kernel receive time, ns since 1970
  bool control = false;  // a control service answers mode 6 (else it is dropped)
  // NTS: the worker's state, and the context that will seal this packet's reply (both null:
  // NTS requests are declined, as when the rules have no NTS secrets).
  nts::PacketState* nts = nullptr;
  nts::Siv* nts_seal = nullptr;
  // Dynamic blocks (policy/blocks.h): the set in force, this worker's meter of the rules'
  // rates, its ring of events to the main thread, and its index for the blocks' hit counts.
  // A null set: no blocks; a null meter or ring: rules are not evaluated.
  const policy::BlockSet* blocks = nullptr;
  clients::BlockMeter* meter = nullptr;
  clients::BlockEvents* events = nullptr;
  size_t worker = 0;
};

// Per-batch inputs: the reply fields from the time state, and the policy.
struct BatchContext {
  wire::ServerInfo server;
  bool synchronised = false;
  clock::UnsyncAction unsynchronised = clock::UnsyncAction::kReply;
};

BatchContext make_context(const clock::TimeState& state, base::RealTime now,
                          clock::UnsyncAction unsynchronised);

// Decides about one datagram. `truncated`: longer than the receive buffer. `receive`: the
// request's receive timestamp (T2). A reply is built in `out` (at least 48 octets) and is never
// longer than the request.
// With `tracking`, every request that passes the format checks meets the access rules
// (ignore: dropped; deny: a paced KoD DENY or dropped), is recorded in the client table and,
// unless a rule says nolimit, goes through the rate limiter: over the limit it is dropped or
// answered with a KoD RATE (wire::build_kod, the request's own length), or let through by
// the leak. A request with a MAC is checked against the rules' keys first: a good MAC gets a
// reply signed with the same key (same length as the request's MAC), a bad one or an unknown
// key id is dropped or answered with a crypto-NAK as the rules say (never longer than the
// request either). Without `tracking` there are no keys and every MAC is dropped.
// An NTS request (RFC 8915), with NTS on in the tracking and the rules: its fields are checked
// before anything else (malformed: dropped), then it meets the rules, client table and limiter
// like any request, and only then is the cookie opened and the authenticator verified (a
// flood of forged cookies costs the limiter's price, not the AEAD's): a failure is answered
// with a KoD NTSN carrying the UID (never longer than the request); a good one gets the time
// with fresh cookies, sealed after T3 by finish_reply(); a KoD RATE or DENY is authenticated
// too (sealed at once, it has no T3), and a rate-limited request whose authentication fails
// is dropped (chrony's rule: no NAK in place of a RATE).
// Mode 6 goes to the control service (to_control) when there is one and the source's rule
// says `query`, or a control key is configured (the service checks the MAC); else dropped.
Decision decide(std::span<const uint8_t> request, bool truncated, uint16_t source_port,
                base::NtpTimestamp receive, const BatchContext& context, std::span<uint8_t> out,
                const Tracking* tracking = nullptr);

// Writes the transmit timestamp of a reply decide() built and, for an authenticated request,
// its MAC or its NTS authenticator (which cover the timestamp): `seal` with `siv` when the
// decision says nts_seal_pending.
void finish_reply(std::span<uint8_t> reply, base::NtpTimestamp transmit, const auth::Key* key,
                  const nts::ReplySeal* seal = nullptr, const nts::Siv* siv = nullptr);

// Adds one decision to a worker's counters (received, version, drop buckets, served kinds).
void count(const Decision& decision, stats::WorkerCounters& counters);

}  // namespace strata::server
