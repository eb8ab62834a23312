// `strata cost`: what an NTP server's traffic costs. Inputs (a live stratad, pasted `ntpq -c
// sysstats` output, or rates given by hand) become packets per second in and out, then GiB per
// month at the IP level, then money under a provider's tiered prices (data/prices.toml). The
// arithmetic is here, apart from the command, so that it is unit-tested.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stats/prices.h"

namespace strata::cli {

// IP-level octets of one NTP packet without extensions: 48 + 8 UDP + 20 IPv4 / 40 IPv6.
inline constexpr double kPacketV4 = 76;
inline constexpr double kPacketV6 = 96;
inline constexpr double kEthernet = 14;  // with --l2: providers that bill frames
// What NTS adds to a packet with one cookie: UID field 36 + cookie field 104 + authenticator
// 40 (228 octets of NTP against 48), each way (docs/configuration.md, bench/nts).
inline constexpr double kNtsExtra = 180;

// The prices and their arithmetic live in stats/prices.h (stratad prices its history too).
using stats::Cost;
using stats::kGiB;
using stats::kMonthSeconds;
using stats::CostLine;
using stats::Prices;
using stats::Provider;
using stats::Tier;
using stats::builtin_prices;
using stats::parse_prices;
using stats::tiered_cost;

// Counts from `ntpq -c sysstats` (NTPsec's or ntp.org's) or `strata stats` text: the
// period they cover (sysstats reset, else uptime) and the counters of the sent formula.
struct Sysstats {
  double seconds = 0;
  double received = 0;
  double bad_format = 0;
  double auth_failed = 0;
  double declined = 0;
  double restricted = 0;
  double rate_limited = 0;
  double kod_sent = 0;
  double processed = 0;
  // Only in `strata stats` text (stratad's own counters, after the ntpq labels): the replies
  // and IP-level bytes as counted, so nothing needs to be inferred.
  std::optional<double> responses_sent, control_responses, received_v4, received_v6;
  std::optional<double> bytes_in, bytes_out;  // v4 + v6
};
std::optional<Sysstats> parse_sysstats(std::string_view text, std::string& error);

// Replies sent, inferred from ntpq's buckets: what was received less what was not answered
// (bad format, auth failed, declined, restricted, rate limited), plus the KoDs, which are
// replies (billed like any) although ntpd counts their requests as restricted or rate limited.
double sysstats_replies(const Sysstats& s);
// The same without the KoDs added back: the arithmetic often published (too low by the KoDs).
double sysstats_replies_without_kod(const Sysstats& s);
// "1D 02:03:04", "02:03:04" or "93784" -> seconds.
std::optional<double> parse_period(std::string_view text);

// Traffic per month from packet rates, the IPv6 share of packets, and whether frames count.
struct Traffic {
  double in_pps = 0;
  double out_pps = 0;
  double v6_share = 0;
  bool l2 = false;
  // Measured IP-level bytes per second, when known (a live stratad): used instead of the
  // per-packet sizes.
  std::optional<double> in_bytes_per_s;
  std::optional<double> out_bytes_per_s;
  // NTS (RFC 8915): the share of packets that carry it (per-packet sizes: 180 octets more
  // each way, a UID, one cookie and an authenticator), or what was measured of it.
  double nts_share = 0;
  double nts_in_pps = 0, nts_out_pps = 0;
  double nts_in_bytes_per_s = 0, nts_out_bytes_per_s = 0;
  // The same packets as plain NTP: what the traffic would be without NTS's fields.
  Traffic without_nts() const;
  bool has_nts() const { return nts_share > 0 || nts_in_pps > 0 || nts_out_pps > 0; }
  double in_bytes_per_packet() const;
  double out_bytes_per_packet() const;
  double in_gib_per_month() const;
  double out_gib_per_month() const;
};

struct CostOptions {
  std::string control;  // live stratad
  std::string sysstats;  // file with ntpq -c sysstats output ("-": stdin)
  std::vector<std::string> captures;  // pcap/pcapng files: measured requests and replies
  uint16_t port = 123;                // the NTP port in the captures
  double rate = 0;       // packets/s received (by hand)
  double sent_rate = -1;  // packets/s sent (default: as received)
  double v6_share = -1;  // share of IPv6 packets (default: measured, else 0)
  bool l2 = false;
  std::string provider;  // one provider (default: all)
  double price = -1;     // flat USD per GiB instead
  std::string prices;    // prices file instead of the built-in one
  double nts_share = -1;  // with --rate: share of packets with NTS (default 0)
  bool json = false;
};
int run_cost(const CostOptions& options);

}  // namespace strata::cli
