// Where the time state comes from: the kernel clock (adjtimex, read-only), a local chronyd or
// ntpd polled over NTP ("mirror", like rsntp), or a configured local stratum. The mapping from
// what a source reports to a TimeState is pure (unit-tested); the classes add the syscalls.
// Run by the clock thread. Never steps or slews the clock.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "auth/keys.h"
#include "base/net.h"
#include "base/ntp_time.h"
#include "clock/time_state.h"
#include "wire/packet.h"

namespace strata::clock {

// PHI of RFC 5905: the frequency tolerance assumed for dispersion growth, 15 ppm.
inline constexpr double kPhi = 15e-6;
// The kernel grows maxerror by 500 ppm per second (MAXFREQ in kernel/time/ntp.c).
inline constexpr double kKernelMaxErrorRate = 500e-6;
// The kernel caps maxerror at 16 s (NTP_PHASE_LIMIT) and then treats the clock as unsynced.
inline constexpr double kKernelMaxErrorLimit = 16.0;

struct Options {
  Source source = Source::kKernel;
  uint8_t stratum = 2;              // kernel and local sources
  uint32_t reference_id = 0x7F7F0100;  // 127.127.1.0; kernel and local sources
  std::optional<int8_t> precision;  // measured at start when absent
  double root_delay = 0;            // seconds; kernel and local sources
  double root_dispersion = 0;       // seconds; added for kernel, served for local
  base::Endpoint mirror{base::IpAddress::v4(0x7F000001), 11123};
  double mirror_interval = 1.0;     // seconds between polls of the mirrored server
  double mirror_timeout = 10.0;     // seconds without a valid reply before unsynchronised
  UnsyncAction unsynchronised = UnsyncAction::kReply;
  friend bool operator==(const Options&, const Options&) = default;
};

// Parses a reference id: dotted IPv4 ("192.0.2.1") or 1-4 ASCII letters/digits ("GPS").
std::optional<uint32_t> parse_reference_id(const std::string& text);
std::string format_reference_id(uint32_t refid, uint8_t stratum);

// Measures the precision of CLOCK_REALTIME reads as log2 seconds, like chrony: the smallest
// non-zero difference between consecutive readings, rounded up to a power of two.
int8_t measure_precision();

// What adjtimex(2) reports, read-only.
struct KernelStatus {
  int state = 0;        // return value: TIME_OK, TIME_INS, ... TIME_ERROR
  int status = 0;       // STA_* bits
  long maxerror_us = 0;
  long esterror_us = 0;
};

// Kernel status -> time state. `reference` is when the kernel was last seen corrected.
TimeState state_from_kernel(const KernelStatus& k, const Options& opt, int8_t precision,
                            base::NtpTimestamp reference, base::RealTime now);

TimeState state_from_local(const Options& opt, int8_t precision, base::RealTime now);

// One client/server exchange: the reply and our send (T1) and receive (T4) times.
// How a reply to an authenticated request was signed.
enum class ReplyAuth : uint8_t {
  kNotAsked,   // the request carried no MAC
  kOk,         // a MAC with our key that verifies
  kBad,        // a MAC that does not verify, or with another key id
  kCryptoNak,  // key id 0 alone: the server could not authenticate us
  kMissing,    // no MAC at all
};
std::string_view reply_auth_name(ReplyAuth a);

struct NtpSample {
  wire::Header reply;
  size_t length = 0;        // reply octets
  ReplyAuth auth = ReplyAuth::kNotAsked;
  base::RealTime sent;      // T1
  base::RealTime received;  // T4
};
// Clock offset of the server relative to us and round-trip delay, RFC 5905 section 8:
// offset = ((T2 - T1) + (T3 - T4)) / 2, delay = (T4 - T1) - (T3 - T2), in seconds.
struct OffsetDelay {
  double offset = 0;
  double delay = 0;
};
OffsetDelay offset_delay(const NtpSample& sample);

// Root distance (root delay / 2 + root dispersion) at or beyond which time is not served as
// synchronised: MAXDISP of RFC 5905, the bound chrony's test 7 applies to a reply.
inline constexpr double kMaxRootDistance = 16.0;

// Why a reply of the mirrored server (already matched to our request: origin, mode 4, 48
// octets) cannot be used; empty when it can. A kiss-o'-death, a version other than 1-4, a
// zero receive or transmit timestamp, a transmit before the receive, a root delay or
// dispersion of 16 s or more. A reply that says the server is unsynchronised (LI 3, stratum
// 16 or more) is usable: it is the server's true state, served at once.
std::string mirror_reply_problem(const NtpSample& sample);

// A usable reply -> time state: the mirrored server's stratum, refid, leap, root delay and
// reference time; root dispersion = its root dispersion + |offset| + delay/2, growing at PHI.
// Unsynchronised when the server says so, or when that root distance reaches 16 s (our
// system clock is that far from the server's).
TimeState state_from_mirror(const NtpSample& sample, int8_t precision);

// Reads the kernel clock status (adjtimex with modes 0: changes nothing).
KernelStatus read_kernel_status();

// Sends client requests to one NTP server (the mirrored one, or the server `strata query`
// asks) from one socket, i.e. one source port.
class NtpClient {
 public:
  // With `key` (kept by the caller), requests carry its MAC and replies are checked with it.
  explicit NtpClient(const base::Endpoint& server, uint8_t version = 4,
                     const auth::Key* key = nullptr);
  ~NtpClient();
  NtpClient(const NtpClient&) = delete;
  NtpClient& operator=(const NtpClient&) = delete;

  // Sends one request and waits up to `timeout` for a matching reply (origin timestamp equal
  // to our random transmit timestamp, mode 4, at least 48 octets). nullopt on no reply;
  // last_error() then says why ("no reply", a socket error, or that only datagrams that do
  // not answer our request came).
  std::optional<NtpSample> poll(base::Nanos timeout);
  const std::string& last_error() const { return last_error_; }

 private:
  base::Endpoint server_;
  uint8_t version_;
  const auth::Key* key_ = nullptr;
  int fd_ = -1;
  std::string last_error_;
};

}  // namespace strata::clock
