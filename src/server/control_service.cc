// Mode 6 off the packet path (see control_service.h).
#include "server/control_service.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace strata::server {

using stats::Counter;

ControlQueue::ControlQueue(size_t workers) {
  for (size_t i = 0; i < workers; ++i) rings_.push_back(std::make_unique<Ring>());
  event_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

ControlQueue::~ControlQueue() {
  if (event_fd_ >= 0) ::close(event_fd_);
}

bool ControlQueue::push(size_t worker, const io::Packet& p, int64_t rx_ns) {
  if (worker >= rings_.size() || p.length > sizeof(ControlItem::data)) return false;
  Ring& r = *rings_[worker];
  const uint64_t head = r.head.load(std::memory_order_relaxed);
  if (head - r.tail.load(std::memory_order_acquire) >= kDepth) return false;
  ControlItem& item = r.items[head % kDepth];
  std::memcpy(item.data.data(), p.data, p.length);
  item.length = p.length;
  item.channel = p.channel;
  item.ifindex = p.ifindex;
  item.peer = p.peer;
  item.local = p.local;
  item.rx_ns = rx_ns;
  r.head.store(head + 1, std::memory_order_release);
  wake();
  return true;
}

void ControlQueue::wait(int timeout_ms) {
  pollfd pfd{event_fd_, POLLIN, 0};
  if (::poll(&pfd, 1, timeout_ms) > 0) {
    uint64_t v = 0;
    [[maybe_unused]] const ssize_t n = ::read(event_fd_, &v, sizeof v);
  }
}

void ControlQueue::wake() {
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(event_fd_, &one, sizeof one);
}

ControlService::ControlService(ControlQueue& queue, std::vector<io::Backend*> backends,
                               RulesCell& rules, size_t reader,
                               const mode6::ResponderOptions& options, mode6::Sources& sources,
                               stats::WorkerCounters& counters)
    : queue_(queue),
      backends_(std::move(backends)),
      rules_(rules),
      reader_(reader),
      counters_(counters),
      responder_(options, sources, counters) {}

ControlService::~ControlService() { stop(); }

void ControlService::start() {
  thread_ = std::thread([this] {
    while (!stop_.load(std::memory_order_relaxed)) run_once(250);
  });
}

void ControlService::stop() {
  stop_.store(true);
  queue_.wake();
  if (thread_.joinable()) thread_.join();
}

size_t ControlService::run_once(int timeout_ms) {
  queue_.wait(timeout_ms);
  // Held while draining only: waiting, the service holds no rules (as the workers).
  const RulesHold hold(rules_, reader_);
  const Rules& rules = *hold;
  const mode6::Access access{rules.policy, rules.keys, rules.control_key};
  return queue_.drain([&](size_t worker, const ControlItem& item) {
    const mode6::Incoming in{{item.data.data(), item.length}, item.peer, item.local, item.rx_ns};
    const auto replies = responder_.handle(in, access);
    io::Backend* backend = worker < backends_.size() ? backends_[worker] : nullptr;
    for (const auto& d : replies) {
      io::Packet p;
      p.data = const_cast<uint8_t*>(d.data());
      p.length = static_cast<uint16_t>(d.size());
      p.capacity = p.length;
      p.channel = item.channel;
      p.ifindex = item.ifindex;
      p.peer = item.peer;
      p.local = item.local;
      if (backend != nullptr && backend->send_one(p)) {
        const bool v4 = p.peer.address.family == base::Family::kV4;
        counters_.add(Counter::control_responses);
        counters_.add(v4 ? Counter::bytes_out_v4 : Counter::bytes_out_v6,
                      p.length + (v4 ? io::kIpUdpOverheadV4 : io::kIpUdpOverheadV6));
      } else {
        counters_.add(Counter::send_errors);
      }
    }
  });
}

}  // namespace strata::server
