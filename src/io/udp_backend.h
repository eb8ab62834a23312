// The batched UDP socket backend: SO_REUSEPORT sockets (one per worker and listen address),
// recvmmsg/sendmmsg, kernel receive timestamps (SO_TIMESTAMPNS), the local address of each
// request (IP_PKTINFO / IPV6_RECVPKTINFO) so replies leave from it, and kernel queue drops
// (SO_MEMINFO's drop counter, read a few times a second). With SocketOptions::tx_timestamps
// a reply marked want_tx_time asks for its kernel transmit timestamp (a SO_TIMESTAMPING
// control message with SOF_TIMESTAMPING_TX_SOFTWARE, so no other reply costs one), and
// receive() first reads the error queue of each socket with timestamps outstanding. Several sockets are multiplexed with epoll; a single one is read with a
// blocking recvmmsg, which saves a syscall per batch (wake() then takes up to kMaxBlock).
// Sockets are opened by the daemon before it drops root; each UdpBackend is then used by one
// worker thread only.
#pragma once

#include <sys/socket.h>

#include <string>
#include <vector>

#include "io/backend.h"

namespace strata::io {

struct SocketOptions {
  int receive_buffer = 0;  // bytes; 0 keeps the system default
  bool freebind = false;   // bind addresses not (yet) configured (IP_FREEBIND), e.g. anycast
  // Kernel transmit timestamps on request (interleaved mode): SO_TIMESTAMPING for receive
  // and transmit times instead of SO_TIMESTAMPNS. Not a config key of its own.
  bool tx_timestamps = false;
  friend bool operator==(const SocketOptions&, const SocketOptions&) = default;
};

// Opens a UDP socket bound to `address` with every option the engine needs. Returns the fd,
// or -1 with `error` set ("bind 0.0.0.0:123: Permission denied").
int open_server_socket(const base::Endpoint& address, const SocketOptions& options,
                       std::string& error);

// The local address a socket is bound to (to learn the port after binding port 0).
base::Endpoint bound_endpoint(int fd);

class UdpBackend final : public Backend {
 public:
  // Takes ownership of the sockets. `batch`: most datagrams per receive.
  UdpBackend(std::vector<int> fds, size_t batch);
  ~UdpBackend() override;
  UdpBackend(const UdpBackend&) = delete;
  UdpBackend& operator=(const UdpBackend&) = delete;

  size_t receive(std::span<Packet> slots, base::Nanos timeout) override;
  size_t send(std::span<Packet> replies) override;
  bool send_one(const Packet& p) override;
  std::span<const TxTimestamp> take_tx_timestamps() override;
  uint64_t rx_queue_drops() const override { return drops_total_; }
  void wake() override;
  // Readable when a socket has a datagram or wake() was called (for a backend that waits on
  // these sockets beside others).
  int poll_fd() const { return epoll_fd_; }

 private:
  // Control-message room on receive: timestamp + pktinfo (v6 is largest); on send it holds
  // one pktinfo (io/pktinfo.h).
  static constexpr size_t kControlSize = 128;
  // Longest a single-socket receive blocks: bounds how long wake() can take to be seen.
  static constexpr base::Nanos kMaxBlock = std::chrono::milliseconds(250);
  struct Control {
    alignas(cmsghdr) uint8_t bytes[kControlSize];
  };

  // How often the sockets' kernel drop counters are read (SO_MEMINFO).
  static constexpr base::Nanos kDropPollInterval = std::chrono::milliseconds(100);

  void poll_drops();
  size_t receive_single(std::span<Packet> slots, base::Nanos timeout);
  size_t receive_from(size_t socket, std::span<Packet> slots, int flags);
  void parse_control(const msghdr& hdr, size_t socket, Packet& p);
  size_t send_run(std::span<Packet> run);
  void drain_errors(size_t socket);
  // What of a returned frame the error queue gives us: the headers and the reply's first
  // octets (an NTS reply's cookies are cut off, MSG_TRUNC).
  static constexpr size_t kErrorFrameSize = 256;
  // Room for the scm_timestamping and the sock_extended_err (with an IPv6 offender).
  static constexpr size_t kErrorControlSize = 192;
  struct ErrorControl {
    alignas(cmsghdr) uint8_t bytes[kErrorControlSize];
  };

  std::vector<int> fds_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::vector<size_t> ready_;       // sockets that may have data, most recently served last
  std::vector<uint32_t> drops_;     // last kernel drop count read per socket
  base::Nanos last_drop_poll_{0};
  std::vector<base::IpAddress> bound_;  // each socket's address (unspecified: wildcard)
  base::Nanos blocking_for_{0};          // SO_RCVTIMEO now set on a single socket
  uint64_t drops_total_ = 0;
  std::vector<mmsghdr> msgs_;
  std::vector<iovec> iovs_;
  std::vector<sockaddr_storage> names_;
  std::vector<Control> controls_;
  // Transmit timestamps: which sockets give them, how many each owes, what was collected.
  std::vector<uint8_t> stamping_;
  std::vector<uint32_t> pending_;
  std::vector<TxTimestamp> tx_times_;
  bool tx_taken_ = false;  // take_tx_timestamps() returned tx_times_: clear before adding
  std::vector<mmsghdr> err_msgs_;
  std::vector<iovec> err_iovs_;
  std::vector<uint8_t> err_frames_;
  std::vector<ErrorControl> err_controls_;
};

}  // namespace strata::io
