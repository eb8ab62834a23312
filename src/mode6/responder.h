// The mode-6 responder: one request in, the datagrams to send back out. Who may ask (access
// rules, the control key), how often (a token bucket per source), how much may go back (no
// reply longer than the request to an unauthenticated source off loopback), and the opcodes
// ntpq uses: READSTAT, READVAR (every variable of vars.h), REQ_NONCE and READ_MRU (mru.h).
// Runs on one thread (the control service), never on the packet path.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <unordered_map>
#include <vector>

#include "auth/keys.h"
#include "base/net.h"
#include "mode6/codec.h"
#include "mode6/mru.h"
#include "mode6/vars.h"
#include "policy/policy.h"
#include "stats/counters.h"

namespace strata::mode6 {

// Who may read the client list (READ_MRU: every client's address).
enum class MrulistAccess : uint8_t {
  kControlKey,  // only requests signed with the control key (the default: addresses are private)
  kQuery,       // whoever may query (loopback, `query` rules), as other mode-6 reads
};

struct ResponderOptions {
  double rate = 100;          // requests per second per source address
  double burst = 1000;        // requests a source may send at once (an mrulist walk)
  size_t mrulist_max = 100000;  // newest client records an mrulist walk can see
  uint32_t max_frags = 128;   // per response (ntpd's MRU_FRAGS_LIMIT)
  MrulistAccess mrulist = MrulistAccess::kControlKey;
  // Whether a trusted time-client key (not the control key) authorises mode 6 as the control
  // key does; off, its MAC is checked and the reply signed, but it opens nothing.
  bool time_keys = false;
};

// What the responder reads from the daemon.
class Sources {
 public:
  virtual ~Sources() = default;
  virtual SystemView system() = 0;
  // Every client record of every worker.
  virtual void client_entries(std::vector<MruEntry>& out) = 0;
  // The same, one at a time (no copy of them all): the daemon streams its tables.
  virtual void for_each_client(const std::function<void(const MruEntry&)>& visit) {
    std::vector<MruEntry> all;
    client_entries(all);
    for (const auto& e : all) visit(e);
  }
};

// The rules in force for one request.
struct Access {
  const policy::Policy& policy;
  const auth::KeyRing& keys;
  uint32_t control_key = 0;
};

struct Incoming {
  std::span<const uint8_t> data;
  base::Endpoint peer;
  base::IpAddress local;
  int64_t now_ns = 0;  // real time, ns since 1970
};

// The system status word (protocols.md 2.4).
uint16_t system_status(const SystemView& view);

class Responder {
 public:
  Responder(const ResponderOptions& options, Sources& sources, stats::WorkerCounters& counters);

  // The datagrams to send to in.peer from in.local; empty: send nothing.
  std::vector<std::vector<uint8_t>> handle(const Incoming& in, const Access& access);

 private:
  bool take_token(const base::IpAddress& peer, int64_t now_ns);
  // A signed request already seen from another source address: a captured packet replayed
  // with a forged source (its MAC does not cover the address). Remembers this one.
  bool replayed(std::span<const uint8_t> mac, const base::IpAddress& peer, int64_t now_ns);
  std::vector<std::vector<uint8_t>> dispatch(const Request& r, const Incoming& in,
                                             const auth::Key* key, bool control_key, size_t budget);
  // `budget`: the most octets the answer may have (the request's size for an unauthorised
  // source off loopback); names are looked up only while the answer stays within it.
  std::vector<std::vector<uint8_t>> read_variables(const Request& r, const auth::Key* key, size_t budget);
  std::vector<std::vector<uint8_t>> read_mru(const Request& r, const Incoming& in,
                                             const auth::Key* key);

  ResponderOptions options_;
  Sources& sources_;
  stats::WorkerCounters& counters_;
  NonceKeeper nonces_;
  MruSnapshot snapshot_;
  bool have_snapshot_ = false;
  int64_t snapshot_used_ns_ = 0;
  int64_t snapshot_built_ns_ = 0;
  size_t snapshot_max_ = 0;
  double build_tokens_ = 4;  // snapshot builds allowed now (kBuildBurst)
  int64_t build_refill_ns_ = 0;
  struct Bucket {
    double tokens;
    int64_t last_ns;
  };
  struct AddressHash {
    size_t operator()(const base::IpAddress& a) const;
  };
  std::unordered_map<base::IpAddress, Bucket, AddressHash> buckets_;
  // Signed requests seen, by a hash of their MAC: the first source address and when.
  struct Seen {
    base::IpAddress source;
    int64_t when_ns;
  };
  std::unordered_map<uint64_t, Seen> seen_macs_;
  uint8_t leap_ = 3;  // of the view read for the current request
  SystemView view_;
};

}  // namespace strata::mode6
