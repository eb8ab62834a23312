// Batched UDP backend (see udp_backend.h).
#include "io/udp_backend.h"

#include "io/pktinfo.h"
#include "io/tx_frame.h"

#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

namespace strata::io {

namespace {

bool set_int(int fd, int level, int name, int value) {
  return ::setsockopt(fd, level, name, &value, sizeof value) == 0;
}

base::RealTime real_time(const timespec& ts) { return base::RealTime{base::nanos_of(ts)}; }

// The software timestamp of an SO_TIMESTAMPING control message (its first of three); nothing
// when the kernel left it zero (only a hardware one).
std::optional<base::RealTime> software_timestamp(const cmsghdr* c) {
  scm_timestamping ts;
  std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
  if (ts.ts[0].tv_sec == 0 && ts.ts[0].tv_nsec == 0) return std::nullopt;
  return real_time(ts.ts[0]);
}

std::string errno_text(const char* what, const base::Endpoint& a) {
  return std::string(what) + " " + a.to_string() + ": " + std::strerror(errno);
}

}  // namespace

int open_server_socket(const base::Endpoint& address, const SocketOptions& options,
                       std::string& error) {
  const bool v4 = address.address.family == base::Family::kV4;
  const int fd = ::socket(v4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = errno_text("socket for", address);
    return -1;
  }
  // Kernel receive times: SO_TIMESTAMPNS, or SO_TIMESTAMPING (software receive timestamps,
  // reported with any transmit timestamps asked for packet by packet) for interleaved mode.
  const int stamping = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
  bool ok = set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1) &&
            ((options.tx_timestamps && set_int(fd, SOL_SOCKET, SO_TIMESTAMPING, stamping)) ||
             set_int(fd, SOL_SOCKET, SO_TIMESTAMPNS, 1));
  // Only a wildcard socket needs to learn each request's local address (to reply from it);
  // on a socket bound to one address the kernel already uses that one, and the per-packet
  // control messages are work saved.
  const bool wildcard = address.address.is_unspecified();
  if (v4)
    ok = ok && (!wildcard || set_int(fd, IPPROTO_IP, IP_PKTINFO, 1));
  else
    ok = ok && set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1) &&
         (!wildcard || set_int(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1));
  if (ok && options.freebind)
    ok = v4 ? set_int(fd, IPPROTO_IP, IP_FREEBIND, 1)
            : set_int(fd, IPPROTO_IPV6, IPV6_FREEBIND, 1);
  if (!ok) {
    error = errno_text("setsockopt on", address);
    ::close(fd);
    return -1;
  }
  if (options.receive_buffer > 0 &&
      !set_int(fd, SOL_SOCKET, SO_RCVBUFFORCE, options.receive_buffer))  // needs CAP_NET_ADMIN
    set_int(fd, SOL_SOCKET, SO_RCVBUF, options.receive_buffer);        // capped by rmem_max
  sockaddr_storage ss{};
  const socklen_t len = address.to_sockaddr(ss);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    error = errno_text("bind", address);
    ::close(fd);
    return -1;
  }
  return fd;
}

base::Endpoint bound_endpoint(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return base::Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss)).value_or(base::Endpoint{});
}

UdpBackend::UdpBackend(std::vector<int> fds, size_t batch)
    : fds_(std::move(fds)),
      drops_(fds_.size(), 0),
      bound_(fds_.size()),
      msgs_(batch),
      iovs_(batch),
      names_(batch),
      controls_(batch),
      stamping_(fds_.size(), 0),
      pending_(fds_.size(), 0),
      err_msgs_(batch),
      err_iovs_(batch),
      err_frames_(batch * kErrorFrameSize),
      err_controls_(batch) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = fds_.size();  // the wake fd's tag: one past the sockets
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  for (size_t i = 0; i < fds_.size(); ++i) {
    ev.data.u64 = i;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fds_[i], &ev);
    bound_[i] = bound_endpoint(fds_[i]).address;
    int flags = 0;
    socklen_t len = sizeof flags;
    stamping_[i] = ::getsockopt(fds_[i], SOL_SOCKET, SO_TIMESTAMPING, &flags, &len) == 0 &&
                   (flags & SOF_TIMESTAMPING_SOFTWARE) != 0;
  }
  tx_times_.reserve(4 * batch);
  ready_.reserve(fds_.size());
}

UdpBackend::~UdpBackend() {
  for (int fd : fds_) ::close(fd);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void UdpBackend::wake() {
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

void UdpBackend::poll_drops() {
  // The kernel's per-socket drop counter (sk_drops), the one SO_RXQ_OVFL would attach to
  // every datagram: read it a few times a second instead of paying a control message per
  // packet.
  const base::Nanos now = base::now_mono();
  if (now - last_drop_poll_ < kDropPollInterval) return;
  last_drop_poll_ = now;
  for (size_t i = 0; i < fds_.size(); ++i) {
    uint32_t info[SK_MEMINFO_VARS] = {};
    socklen_t len = sizeof info;
    if (::getsockopt(fds_[i], SOL_SOCKET, SO_MEMINFO, info, &len) != 0 ||
        len <= SK_MEMINFO_DROPS * sizeof(uint32_t))
      continue;
    const uint32_t drops = info[SK_MEMINFO_DROPS];
    drops_total_ += static_cast<uint32_t>(drops - drops_[i]);  // wraps like the kernel's
    drops_[i] = drops;
  }
}

size_t UdpBackend::receive(std::span<Packet> slots, base::Nanos timeout) {
  poll_drops();
  // Transmit timestamps first, so that the batch this returns can use them.
  for (size_t i = 0; i < fds_.size(); ++i)
    if (pending_[i] > 0) drain_errors(i);
  if (fds_.size() == 1) return receive_single(slots, timeout);
  for (int round = 0; round < 2; ++round) {
    while (!ready_.empty()) {
      const size_t socket = ready_.back();
      const size_t n = receive_from(socket, slots, MSG_DONTWAIT);
      if (n == 0) {
        ready_.pop_back();
        continue;
      }
      // Still busy: serve the other ready sockets first next time.
      ready_.pop_back();
      if (n == std::min(slots.size(), msgs_.size())) ready_.insert(ready_.begin(), socket);
      return n;
    }
    if (round == 1) break;
    epoll_event events[16];
    const int ms = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count());
    const int n = ::epoll_wait(epoll_fd_, events, 16, std::max(ms, 0));
    for (int i = 0; i < n; ++i) {
      const size_t tag = events[i].data.u64;
      if (tag == fds_.size()) {
        uint64_t value;
        [[maybe_unused]] const ssize_t r = ::read(wake_fd_, &value, sizeof value);
        return 0;
      }
      // A timestamp that came after its socket's queue was read: read it now (epoll would
      // report the socket again and again).
      if (events[i].events & EPOLLERR) drain_errors(tag);
      if ((events[i].events & EPOLLIN) &&
          std::find(ready_.begin(), ready_.end(), tag) == ready_.end())
        ready_.push_back(tag);
    }
  }
  return 0;
}

size_t UdpBackend::receive_single(std::span<Packet> slots, base::Nanos timeout) {
  // One socket: block in recvmmsg itself (one syscall per batch instead of epoll_wait +
  // recvmmsg), at most kMaxBlock at a time so a stop request is seen promptly.
  const base::Nanos block = std::min(timeout, kMaxBlock);
  if (block.count() == 0) {
    const size_t n = receive_from(0, slots, MSG_DONTWAIT);
    // Polled without data (busy polling, or the AF_XDP backend's poll saw this socket's epoll
    // fd readable): a late transmit timestamp may be what made it readable.
    if (n == 0 && stamping_[0]) drain_errors(0);
    return n;
  }
  if (block != blocking_for_) {
    const timeval tv{static_cast<time_t>(block.count() / 1'000'000'000),
                     static_cast<suseconds_t>(block.count() % 1'000'000'000 / 1000)};
    ::setsockopt(fds_[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    blocking_for_ = block;
  }
  return receive_from(0, slots, MSG_WAITFORONE);
}

size_t UdpBackend::receive_from(size_t socket, std::span<Packet> slots, int flags) {
  const size_t want = std::min(slots.size(), msgs_.size());
  for (size_t i = 0; i < want; ++i) {
    iovs_[i] = {slots[i].data, slots[i].capacity};
    msghdr& h = msgs_[i].msg_hdr;
    h = msghdr{};
    h.msg_name = &names_[i];
    h.msg_namelen = sizeof names_[i];
    h.msg_iov = &iovs_[i];
    h.msg_iovlen = 1;
    h.msg_control = controls_[i].bytes;
    h.msg_controllen = kControlSize;
    msgs_[i].msg_len = 0;
  }
  int n;
  do {
    n = ::recvmmsg(fds_[socket], msgs_.data(), static_cast<unsigned>(want), flags, nullptr);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return 0;
  for (int i = 0; i < n; ++i) {
    Packet& p = slots[i];
    const msghdr& h = msgs_[i].msg_hdr;
    p.truncated = (h.msg_flags & MSG_TRUNC) != 0;
    p.length = static_cast<uint16_t>(std::min<size_t>(msgs_[i].msg_len, p.capacity));
    p.channel = static_cast<uint16_t>(socket);
    p.sent = false;
    p.peer = base::Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(h.msg_name))
                 .value_or(base::Endpoint{});
    parse_control(h, socket, p);
  }
  return static_cast<size_t>(n);
}

void UdpBackend::parse_control(const msghdr& h, size_t socket, Packet& p) {
  p.rx_kernel_time = false;
  p.local = bound_[socket];  // a wildcard socket's pktinfo replaces it below
  p.ifindex = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(const_cast<msghdr*>(&h), c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
      timespec ts;
      std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
      p.rx_time = real_time(ts);
      p.rx_kernel_time = true;
    } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPING) {
      if (const auto t = software_timestamp(c)) {
        p.rx_time = *t;
        p.rx_kernel_time = true;
      }
    } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      in_pktinfo info;
      std::memcpy(&info, CMSG_DATA(c), sizeof info);
      // ipi_spec_dst is our local address for the packet (an interface address even when the
      // request went to a broadcast address): the right source for the reply.
      std::memcpy(p.local.bytes.data(), &info.ipi_spec_dst, 4);
      p.ifindex = info.ipi_ifindex;
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      in6_pktinfo info;
      std::memcpy(&info, CMSG_DATA(c), sizeof info);
      std::memcpy(p.local.bytes.data(), &info.ipi6_addr, 16);
      p.ifindex = static_cast<int>(info.ipi6_ifindex);
    }
  }
}

size_t UdpBackend::send(std::span<Packet> replies) {
  size_t sent = 0;
  for (std::span<Packet> rest = replies; !rest.empty();) {
    const std::span<Packet> run = channel_run(rest);
    rest = rest.subspan(run.size());
    // Larger runs than our message array go in several calls.
    for (size_t at = 0; at < run.size(); at += msgs_.size())
      sent += send_run(run.subspan(at, std::min(run.size() - at, msgs_.size())));
  }
  return sent;
}

size_t UdpBackend::send_run(std::span<Packet> run) {
  const size_t socket = run.front().channel;
  for (size_t i = 0; i < run.size(); ++i) {
    Packet& p = run[i];
    p.sent = false;
    iovs_[i] = {p.data, p.length};
    msghdr& h = msgs_[i].msg_hdr;
    h = msghdr{};
    h.msg_name = &names_[i];
    h.msg_namelen = p.peer.to_sockaddr(names_[i]);
    h.msg_iov = &iovs_[i];
    h.msg_iovlen = 1;
    // A socket bound to one address sends from it; a wildcard one is told the source.
    if (bound_[socket].is_unspecified() && !p.local.is_unspecified()) {
      // IPv6 link-local and multicast need the interface the request came in on.
      const bool pin = p.local.is_v6_link_local() || p.local.is_multicast() ||
                       p.peer.address.is_v6_link_local();
      set_source_address(h, controls_[i].bytes, p.local, pin ? p.ifindex : 0);
    }
    if (p.want_tx_time && stamping_[socket]) {
      // This datagram only: its software transmit timestamp to the error queue.
      cmsghdr* c = reinterpret_cast<cmsghdr*>(controls_[i].bytes + h.msg_controllen);
      std::memset(c, 0, CMSG_SPACE(sizeof(uint32_t)));
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SO_TIMESTAMPING;
      c->cmsg_len = CMSG_LEN(sizeof(uint32_t));
      const uint32_t flags = SOF_TIMESTAMPING_TX_SOFTWARE;
      std::memcpy(CMSG_DATA(c), &flags, sizeof flags);
      h.msg_control = controls_[i].bytes;
      h.msg_controllen += CMSG_SPACE(sizeof(uint32_t));
    }
  }
  size_t done = 0, sent = 0;
  while (done < run.size()) {
    const int n = ::sendmmsg(fds_[socket], msgs_.data() + done,
                             static_cast<unsigned>(run.size() - done), 0);
    if (n > 0) {
      for (size_t i = done; i < done + static_cast<size_t>(n); ++i) {
        run[i].sent = true;
        if (run[i].want_tx_time && stamping_[socket]) ++pending_[socket];
      }
      done += static_cast<size_t>(n);
      sent += static_cast<size_t>(n);
    } else if (errno != EINTR) {
      ++done;  // this datagram failed (unreachable, bad address...): skip it, keep the rest
    }
  }
  return sent;
}

void UdpBackend::drain_errors(size_t socket) {
  if (tx_taken_) {
    tx_times_.clear();
    tx_taken_ = false;
  }
  const size_t batch = err_msgs_.size();
  for (;;) {
    for (size_t i = 0; i < batch; ++i) {
      err_iovs_[i] = {&err_frames_[i * kErrorFrameSize], kErrorFrameSize};
      msghdr& h = err_msgs_[i].msg_hdr;
      h = msghdr{};
      h.msg_iov = &err_iovs_[i];
      h.msg_iovlen = 1;
      h.msg_control = err_controls_[i].bytes;
      h.msg_controllen = kErrorControlSize;
    }
    int n;
    do {
      n = ::recvmmsg(fds_[socket], err_msgs_.data(), static_cast<unsigned>(batch),
                     MSG_ERRQUEUE | MSG_DONTWAIT, nullptr);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
      pending_[socket] = 0;  // the queue is empty: a late one is read with the next ones
      return;
    }
    pending_[socket] -= std::min<uint32_t>(pending_[socket], static_cast<uint32_t>(n));
    for (int i = 0; i < n; ++i) {
      const msghdr& h = err_msgs_[i].msg_hdr;
      TxTimestamp t;
      bool stamped = false;
      for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(const_cast<msghdr*>(&h), c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SO_TIMESTAMPING) continue;
        if (const auto time = software_timestamp(c)) {
          t.time = *time;
          stamped = true;
        }
      }
      const size_t got = std::min<size_t>(err_msgs_[i].msg_len, kErrorFrameSize);
      const auto sent = parse_sent({&err_frames_[i * kErrorFrameSize], got});
      if (!stamped || !sent || tx_times_.size() == tx_times_.capacity()) continue;
      t.peer = sent->peer.address;
      t.length = static_cast<uint16_t>(std::min(sent->payload.size(), sizeof t.head));
      std::memcpy(t.head, sent->payload.data(), t.length);
      tx_times_.push_back(t);
    }
    if (static_cast<size_t>(n) < batch) return;
  }
}

std::span<const TxTimestamp> UdpBackend::take_tx_timestamps() {
  if (tx_taken_) return {};
  tx_taken_ = true;
  return tx_times_;
}

bool UdpBackend::send_one(const Packet& p) {
  if (p.channel >= fds_.size()) return false;
  sockaddr_storage name{};
  iovec iov{p.data, p.length};
  Control control;
  msghdr h{};
  h.msg_name = &name;
  h.msg_namelen = p.peer.to_sockaddr(name);
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  if (bound_[p.channel].is_unspecified() && !p.local.is_unspecified()) {
    const bool pin = p.local.is_v6_link_local() || p.local.is_multicast() ||
                     p.peer.address.is_v6_link_local();
    set_source_address(h, control.bytes, p.local, pin ? p.ifindex : 0);
  }
  for (;;) {
    const ssize_t n = ::sendmsg(fds_[p.channel], &h, 0);
    if (n >= 0) return true;
    if (errno != EINTR) return false;
  }
}

}  // namespace strata::io
