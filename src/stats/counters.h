// The one list of stratad's counters: name, ntpq label, unit and meaning. `strata stats`, the
// control API and (later) /metrics and docs/metrics.md are all generated from it.
// Each worker owns a WorkerCounters block and is its only writer; the control thread sums
// the blocks on read (relaxed atomics: no lock, no contended cache line on the packet path).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace strata::stats {

// X(name, ntpq label or "", unit, meaning). The first ten are ntpd's sysstats, with NTPsec's
// meanings (protocols.md 1.12); the rest are strata's own.
#define STRATA_COUNTERS(X)                                                                       \
  X(received, "packets received", "packets",                                                    \
    "Datagrams received on the NTP sockets, of every mode and shape.")                           \
  X(current_version, "current version", "packets",                                              \
    "NTPv4 packets that passed the version and mode filter.")                                   \
  X(older_version, "older version", "packets",                                                  \
    "NTPv1-v3 packets that passed the version and mode filter.")                                \
  X(bad_format, "bad length or format", "packets",                                               \
    "Dropped: too short, bad version, mode 0 above NTPv1, modes 2/5/7, bad trailer, source "    \
    "port 0, truncated. Rising: broken or hostile senders.")                                    \
  X(auth_failed, "authentication failed", "packets",                                             \
    "Dropped: the request carried a MAC or crypto-NAK that could not be verified.")             \
  X(declined, "declined", "packets",                                                             \
    "Dropped: well-formed but not served (mode 4, mode 6, NTS, MS-SNTP, unsynchronised with "   \
    "unsynchronised = \"drop\").")                                                              \
  X(restricted, "restricted", "packets",                                                         \
    "Refused by an access rule: ignored, denied, or answered with a KoD DENY.")                 \
  X(rate_limited, "rate limited", "packets",                                                     \
    "Requests over a client's rate limit (dropped or answered with a KoD).")                    \
  X(kod_sent, "KoD responses", "packets", "Kiss-o'-Death replies sent.")                        \
  X(processed, "processed for time", "packets", "Requests answered with the time.")            \
  X(responses_sent, "", "packets", "Replies the kernel accepted for sending (time and KoD).")    \
  X(send_errors, "", "packets", "Replies the kernel refused to send (sendmmsg errors).")         \
  X(received_v4, "", "packets", "Datagrams received over IPv4.")                                \
  X(received_v6, "", "packets", "Datagrams received over IPv6.")                                \
  X(sent_v4, "", "packets", "Replies sent over IPv4.")                                          \
  X(sent_v6, "", "packets", "Replies sent over IPv6.")                                          \
  X(bytes_in_v4, "", "bytes",                                                                    \
    "IP-level bytes received over IPv4 (payload + 8 UDP + 20 IPv4), as clouds bill them.")      \
  X(bytes_in_v6, "", "bytes", "IP-level bytes received over IPv6 (payload + 8 UDP + 40 IPv6).") \
  X(bytes_out_v4, "", "bytes", "IP-level bytes sent over IPv4 (payload + 8 UDP + 20 IPv4).")    \
  X(bytes_out_v6, "", "bytes", "IP-level bytes sent over IPv6 (payload + 8 UDP + 40 IPv6).")    \
  X(receive_calls, "", "calls", "Receive calls of the workers (wake-ups, including empty ones).") \
  X(receive_batches, "", "calls", "Receive calls that returned at least one datagram.")        \
  X(rx_queue_drops, "", "packets",                                                               \
    "Datagrams the kernel dropped because a socket's receive queue was full (read every "       \
    "100 ms). Rising: the workers cannot keep up; add threads or receive buffer.")              \
  X(unsynchronised_replies, "", "packets",                                                       \
    "Replies sent while the time source was unsynchronised (LI 3, stratum 16).")                \
  X(served_v1_mode0, "", "packets", "NTPv1 mode-0 requests answered as client requests.")       \
  X(served_symmetric, "", "packets", "Symmetric-active (mode 1) requests answered in mode 2.")   \
  X(drop_too_short, "", "packets", "Dropped: shorter than the 48-octet header.")                \
  X(drop_bad_version, "", "packets", "Dropped: version outside 1-4.")                           \
  X(drop_bad_mode0, "", "packets", "Dropped: mode 0 with a version above 1.")                   \
  X(drop_bad_trailer, "", "packets",                                                             \
    "Dropped: octets after the header fit no extension-field or MAC shape.")                    \
  X(drop_truncated, "", "packets", "Dropped: larger than the receive buffer.")                  \
  X(drop_source_port0, "", "packets", "Dropped: source port 0.")                                \
  X(drop_mode_symmetric_passive, "", "packets", "Dropped: mode 2 (symmetric passive).")         \
  X(drop_mode_server, "", "packets", "Dropped: mode 4 (server); we have no associations.")      \
  X(drop_mode_broadcast, "", "packets", "Dropped: mode 5 (broadcast).")                         \
  X(drop_mode_control, "", "packets",                                                            \
    "Dropped: mode 6 (ntpq) from a source no rule lets query, with no control-key MAC.")       \
  X(control_requests, "", "packets", "Mode-6 (ntpq) requests handed to the control responder.") \
  X(control_responses, "", "packets", "Mode-6 response datagrams sent (fragments and errors).") \
  X(control_errors, "", "packets", "Mode-6 requests answered with an error code.")             \
  X(drop_control_bad, "", "packets",                                                             \
    "Dropped by the control responder: malformed, a bad MAC, or an mrulist without a valid nonce.") \
  X(drop_control_limited, "", "packets", "Dropped: mode 6 over its per-source rate ([mode6]).") \
  X(drop_control_queue, "", "packets", "Dropped: mode 6 while the control responder was busy.") \
  X(drop_mode_private, "", "packets", "Dropped: mode 7 (ntpdc private), never served.")         \
  X(drop_mac, "", "packets",                                                                     \
    "A MAC whose key id is not in the keys file or not trusted: dropped (or crypto-NAKed).")   \
  X(drop_bad_mac, "", "packets",                                                                 \
    "A MAC that does not verify with its key: dropped (or crypto-NAKed).")                     \
  X(crypto_nak_sent, "", "packets",                                                              \
    "Crypto-NAK replies to requests whose MAC failed ([auth] bad_mac = \"crypto-nak\").")        \
  X(authenticated_replies, "", "packets", "Replies carrying a MAC with the request's key.")      \
  X(authenticated_cmac, "", "packets", "Of the authenticated replies, those with an AES-CMAC key.") \
  X(auth_failed_cmac, "", "packets", "Requests whose AES-CMAC MAC did not verify.")            \
  X(drop_crypto_nak, "", "packets", "Dropped: carries a crypto-NAK.")                           \
  X(drop_nts, "", "packets", "Dropped: NTS-authenticated request while NTS is off ([nts]).")   \
  X(drop_nts_malformed, "", "packets",                                                           \
    "Dropped: NTS fields that break RFC 8915 section 5 (no UID or cookie, two of them, a short " \
    "UID, the authenticator not last, placeholders not the cookie's length, bad lengths); no "  \
    "NAK is due.")                                                                              \
  X(drop_nts_missing_padding, "", "packets",                                                     \
    "Dropped: an NTS authenticator whose nonce and additional padding are under 16 octets "     \
    "(RFC 8915 section 5.6).")                                                                  \
  X(drop_mssntp, "", "packets", "Dropped: MS-SNTP authenticator (needs a domain controller).")  \
  X(drop_unsynchronised, "", "packets",                                                          \
    "Dropped: the time source is unsynchronised and unsynchronised = \"drop\".")                 \
  X(drop_rate_limited, "", "packets",                                                            \
    "Dropped silently: over the client's rate limit (no KoD: paced, or the source floods).")    \
  X(drop_ignored, "", "packets", "Dropped silently by an ignore rule (never recorded).")        \
  X(drop_denied, "", "packets",                                                                  \
    "Dropped by a deny rule when no KoD DENY was due (paced, or the source floods).")            \
  X(kod_deny_sent, "", "packets", "KoD DENY replies sent to sources a deny rule covers.")       \
  X(rate_limit_leaked, "", "packets",                                                            \
    "Over the rate limit but answered: the random leak that keeps a spoofed victim served.")    \
  X(blocked, "", "packets",                                                                      \
    "Requests from a prefix under a dynamic block (strata block list): dropped, answered with " \
    "a KoD RATE, or let through by the leak, as the block's action says.")                      \
  X(drop_blocked, "", "packets", "Dropped: a dynamic block covers the source.")                 \
  X(blocked_leaked, "", "packets",                                                               \
    "Under a dynamic block whose action is leak, answered anyway (the limiter's leak share).")  \
  X(requests_v1, "", "packets", "Requests of NTP version 1 that reached the client table.")   \
  X(requests_v2, "", "packets", "Requests of NTP version 2 that reached the client table.")   \
  X(requests_v3, "", "packets", "Requests of NTP version 3 that reached the client table.")   \
  X(requests_v4, "", "packets", "Requests of NTP version 4 that reached the client table.")   \
  X(requests_v1_mode3, "", "packets", "NTPv1 client (mode 3) requests that reached the client table.") \
  X(requests_v1_mode1, "", "packets", "NTPv1 symmetric-active requests that reached the client table.") \
  X(requests_mode0, "", "packets", "NTPv1 mode-0 requests that reached the client table.")     \
  X(requests_mode1, "", "packets", "Symmetric-active (mode 1) requests that reached the client table.") \
  X(requests_mode3, "", "packets", "Client (mode 3) requests that reached the client table.")  \
  X(clients_new, "", "clients", "Client records created (first request of an address).")       \
  X(clients_evicted, "", "clients",                                                              \
    "Client records evicted to make room (the oldest, not protected by mindepth or maxage).")   \
  X(clients_untracked, "", "packets",                                                            \
    "Requests served without a client record: the table was full of protected records.")        \
  X(limiter_evicted_active, "", "prefixes",                                                      \
    "Rate-limit prefixes evicted before their bucket refilled: the limiter table is too small.") \
  X(nts_requests, "", "packets", "NTS requests received while NTS is on, before any check.")   \
  X(nts_authenticated, "", "packets",                                                            \
    "NTS requests whose cookie opened and whose authenticator verified.")                       \
  X(nts_cookies_issued, "", "cookies", "Fresh cookies sent inside NTS replies.")                \
  X(nts_nak_sent, "", "packets", "KoD NTSN replies sent (the four reasons below).")             \
  X(nts_nak_unknown_key, "", "packets",                                                          \
    "NAK: the cookie's key id names no secret of the file, or a period beyond the next.")      \
  X(nts_nak_expired_key, "", "packets",                                                          \
    "NAK: the cookie's key is older than [nts] keep periods. Rising after an outage or with "   \
    "rarely-polling clients: raise keep.")                                                      \
  X(nts_nak_bad_cookie, "", "packets",                                                           \
    "NAK: the cookie does not open (altered, not 100 octets, or another fleet's secret).")     \
  X(nts_nak_bad_authenticator, "", "packets",                                                    \
    "NAK: the cookie opened but the request's authenticator does not verify with its C2S key.") \
  X(nts_key_current, "", "cookies", "Cookies opened under the current period's master key.")   \
  X(nts_key_past, "", "cookies",                                                                 \
    "Cookies opened under one of the [nts] keep previous periods' keys.")                       \
  X(nts_key_next, "", "cookies",                                                                 \
    "Cookies opened under the next period's key (a fleet server whose clock is ahead).")       \
  X(nts_bytes_in, "", "bytes",                                                                   \
    "IP-level bytes of NTS requests received (also counted in bytes_in_v4/v6).")               \
  X(nts_bytes_out, "", "bytes",                                                                  \
    "IP-level bytes of NTS replies and NAKs sent (also counted in bytes_out_v4/v6).")           \
  X(ke_accepted, "", "connections", "NTS-KE TCP connections accepted, before any check.")       \
  X(ke_refused_connections, "", "connections",                                                   \
    "NTS-KE connections closed at once: [nts] max_connections were open.")                     \
  X(ke_refused_access, "", "connections",                                                        \
    "NTS-KE connections closed at once: an access rule ignores or denies the source.")         \
  X(ke_rate_limited, "", "connections",                                                          \
    "NTS-KE connections closed before the handshake: the source prefix is over [nts] "          \
    "ke_interval/ke_burst (a client re-handshaking in a loop).")                                \
  X(ke_completed, "", "connections", "NTS-KE exchanges answered with cookies.")                 \
  X(ke_not_negotiated, "", "connections",                                                        \
    "NTS-KE exchanges answered without cookies: no NTPv4 or no AEAD 15 in the client's lists.") \
  X(ke_failed_tls, "", "connections",                                                            \
    "NTS-KE handshakes that failed: not TLS 1.3, no common cipher, an alert, not TLS at all.")  \
  X(ke_failed_alpn, "", "connections",                                                           \
    "NTS-KE handshakes refused for want of ALPN \"ntske/1\".")                                  \
  X(ke_bad_request, "", "connections",                                                           \
    "NTS-KE requests that broke RFC 8915 section 4 (answered with error 1, Bad Request), "      \
    "or a connection closed before End of Message.")                                            \
  X(ke_unrecognized_critical, "", "connections",                                                 \
    "NTS-KE requests with an unknown critical record (answered with error 0).")                 \
  X(ke_timeout, "", "connections",                                                               \
    "NTS-KE connections closed at [nts] timeout (slow or stalled clients).")                    \
  X(ke_cookies_issued, "", "cookies", "Cookies sent in NTS-KE responses.")                      \
  X(xdp_received, "", "packets", "Frames read from the AF_XDP sockets ([server] backend = \"xdp\").") \
  X(xdp_sent, "", "packets", "Replies put on the AF_XDP sockets' transmit rings.")             \
  X(xdp_malformed, "", "packets",                                                                \
    "AF_XDP frames dropped: IP or UDP lengths inconsistent, or an IPv6 UDP checksum of 0.")   \
  X(xdp_no_timestamp, "", "packets",                                                             \
    "AF_XDP frames without the program's receive time (the read time stood in).")              \
  X(xdp_tx_ring_full, "", "packets", "Replies not sent: an AF_XDP transmit ring was full.")     \
  X(xdp_rx_dropped, "", "packets",                                                               \
    "The kernel's XDP_STATISTICS rx_dropped: frames lost before an AF_XDP socket (no fill-ring " \
    "frame, too long). Rising: the workers cannot keep up.")                                   \
  X(xdp_rx_ring_full, "", "packets", "The kernel's rx_ring_full: an AF_XDP receive ring was full.") \
  X(xdp_fill_ring_empty, "", "events",                                                           \
    "The kernel's rx_fill_ring_empty_descs: a frame arrived and the fill ring was empty.")     \
  X(xdp_tx_ring_empty, "", "events", "The kernel's tx_ring_empty_descs (transmit kicks with nothing to send).") \
  X(xdp_invalid_descs, "", "packets", "The kernel's rx/tx_invalid_descs: should stay 0.")      \
  X(xdp_prog_redirected, "", "packets", "Frames the XDP program handed to an AF_XDP socket.")   \
  X(xdp_prog_pass_other, "", "packets",                                                          \
    "Frames the XDP program passed to the kernel: not NTP for us (ARP, ICMP, TCP, other ports "  \
    "or addresses, broadcast).")                                                               \
  X(xdp_prog_pass_fragment, "", "packets", "IPv4 fragments the XDP program passed to the kernel.") \
  X(xdp_prog_pass_ipv6_ext, "", "packets",                                                       \
    "IPv6 datagrams with extension headers the XDP program passed to the kernel.")             \
  X(xdp_prog_pass_control, "", "packets", "Mode 6 and 7 the XDP program passed to the sockets.") \
  X(xdp_prog_pass_no_socket, "", "packets",                                                      \
    "NTP requests the XDP program passed because no AF_XDP socket serves their queue or map "  \
    "slot: the sockets answered them.")                                                        \
  X(xdp_prog_no_meta, "", "packets", "Frames redirected without room for the receive time.")   \
  X(xdp_prog_pass_malformed, "", "packets",                                                      \
    "Frames with cut-short headers the XDP program passed to the kernel to judge.")            \
  X(interleaved_replies, "", "packets",                                                          \
    "Replies in interleaved mode (RFC 9769): the transmit timestamp of the client's previous "   \
    "reply, taken after it left.")                                                              \
  X(interleaved_basic, "", "packets",                                                            \
    "Interleaved requests answered in basic mode: nothing held for their origin (a client's "   \
    "first two exchanges, a lost reply, an entry given way or already used).")                  \
  X(tx_timestamps_kernel, "", "packets",                                                         \
    "Kernel transmit timestamps read back (SO_TIMESTAMPING) for replies an interleaved "        \
    "request may follow.")                                                                      \
  X(tx_timestamps_missing, "", "packets",                                                        \
    "Interleaved replies that carried the daemon's transmit timestamp: the kernel's never came " \
    "(AF_XDP replies have none).")                                                              \
  X(tx_timestamps_unmatched, "", "packets",                                                      \
    "Kernel transmit timestamps that found no held reply (already served, given way, or "       \
    "later than half a second).")                                                               \
  X(interleave_evicted, "", "entries",                                                           \
    "Held transmit timestamps that gave way before their client asked: raise [server] "         \
    "interleaved_entries.")

enum class Counter : uint16_t {
#define STRATA_COUNTER_ENUM(name, label, unit, help) name,
  STRATA_COUNTERS(STRATA_COUNTER_ENUM)
#undef STRATA_COUNTER_ENUM
};

struct CounterInfo {
  std::string_view name;
  std::string_view ntpq_label;
  std::string_view unit;
  std::string_view help;
};

inline constexpr CounterInfo kCounterInfo[] = {
#define STRATA_COUNTER_INFO(name, label, unit, help) {#name, label, unit, help},
    STRATA_COUNTERS(STRATA_COUNTER_INFO)
#undef STRATA_COUNTER_INFO
};

inline constexpr size_t kCounterCount = std::size(kCounterInfo);

inline constexpr size_t index(Counter c) { return static_cast<size_t>(c); }

// One worker's counters. Single writer (the worker), any number of readers.
class alignas(64) WorkerCounters {
 public:
  void add(Counter c, uint64_t n = 1) {
    auto& v = values_[index(c)];
    v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  // Sets an absolute value (for counters mirrored from the kernel).
  void set(Counter c, uint64_t value) { values_[index(c)].store(value, std::memory_order_relaxed); }
  uint64_t get(Counter c) const { return values_[index(c)].load(std::memory_order_relaxed); }

 private:
  std::array<std::atomic<uint64_t>, kCounterCount> values_{};
};

// Sum of several workers' counters.
using CounterTotals = std::array<uint64_t, kCounterCount>;

}  // namespace strata::stats
