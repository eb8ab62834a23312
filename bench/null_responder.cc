// The machine's limit for bench/throughput: a UDP responder doing no NTP work. It receives
// batches with recvmmsg and sends each datagram's first 48 octets back with sendmmsg, with
// mode 4 set, so `strata load` accepts the reply shape (its timestamps are the request's).
// Single thread, one socket; runs until killed.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "base/net.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: null_responder ADDR:PORT\n");
    return 2;
  }
  const auto ep = strata::base::Endpoint::parse(argv[1], std::nullopt);
  if (!ep) {
    std::fprintf(stderr, "bad address %s\n", argv[1]);
    return 2;
  }
  const int fd = ::socket(ep->address.family == strata::base::Family::kV4 ? AF_INET : AF_INET6,
                          SOCK_DGRAM, 0);
  sockaddr_storage ss;
  const socklen_t len = ep->to_sockaddr(ss);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    std::perror("bind");
    return 1;
  }
  constexpr int kBatch = 64;
  std::vector<uint8_t> bufs(kBatch * 2048);
  std::vector<sockaddr_storage> names(kBatch);
  std::vector<iovec> iovs(kBatch);
  std::vector<mmsghdr> msgs(kBatch);
  for (;;) {
    for (int i = 0; i < kBatch; ++i) {
      iovs[i] = {&bufs[i * 2048], 2048};
      msgs[i].msg_hdr = msghdr{};
      msgs[i].msg_hdr.msg_name = &names[i];
      msgs[i].msg_hdr.msg_namelen = sizeof names[i];
      msgs[i].msg_hdr.msg_iov = &iovs[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    const int n = ::recvmmsg(fd, msgs.data(), kBatch, MSG_WAITFORONE, nullptr);
    if (n <= 0) continue;
    for (int i = 0; i < n; ++i) {
      uint8_t* p = &bufs[i * 2048];
      iovs[i].iov_len = msgs[i].msg_len < 48 ? msgs[i].msg_len : 48;
      if (iovs[i].iov_len == 48) {
        p[0] = static_cast<uint8_t>((p[0] & 0x38) | 4);  // keep the version, mode 4
        p[1] = 1;                                         // stratum 1
        std::memcpy(p + 24, p + 40, 8);                   // origin = request transmit
        std::memcpy(p + 32, p + 40, 8);                   // "receive" and "transmit"
      }
    }
    int done = 0;
    while (done < n) {
      const int r = ::sendmmsg(fd, msgs.data() + done, static_cast<unsigned>(n - done), 0);
      done += r > 0 ? r : 1;
    }
  }
}
