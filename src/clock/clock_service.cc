// The clock thread (see clock_service.h).
#include "clock/clock_service.h"

#include <fmt/format.h>

#include "base/log.h"

namespace strata::clock {

using base::LogLevel;

namespace {
// Kernel and local sources are re-read at this period (seconds).
constexpr double kRefreshPeriod = 1.0;
// A mirror poll waits at most this long for its reply, and never longer than half a period.
constexpr base::Nanos kMirrorReplyWait = std::chrono::milliseconds(500);
}  // namespace

ClockService::ClockService(const Options& options, TimeStateCell& cell)
    : options_(options),
      cell_(cell),
      precision_(options.precision ? *options.precision : measure_precision()) {
  if (options_.source == Source::kMirror) mirror_ = std::make_unique<NtpClient>(options_.mirror);
}

ClockService::~ClockService() { stop(); }

void ClockService::start() {
  refresh();
  thread_ = std::thread([this] { run(); });
}

void ClockService::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ClockService::run() {
  const double period =
      options_.source == Source::kMirror ? options_.mirror_interval : kRefreshPeriod;
  const auto step = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(period));
  auto next = std::chrono::steady_clock::now() + step;
  std::unique_lock lock(mu_);
  while (!cv_.wait_until(lock, next, [this] { return stopping_; })) {
    lock.unlock();
    refresh();
    lock.lock();
    next += step;
    const auto now = std::chrono::steady_clock::now();
    if (next < now) next = now + step;  // we fell behind (suspend): do not burst
  }
}

void ClockService::refresh() {
  TimeState s = poll_source(base::now_real());
  s.updates = ++updates_;
  cell_.store(s);
}

TimeState ClockService::poll_source(base::RealTime now) {
  switch (options_.source) {
    case Source::kKernel: return poll_kernel(now);
    case Source::kMirror: return poll_mirror(now);
    case Source::kLocal: return state_from_local(options_, precision_, now);
  }
  return TimeState{};
}

TimeState ClockService::poll_kernel(base::RealTime now) {
  const KernelStatus k = read_kernel_status();
  // A drop in maxerror means a daemon just corrected the clock: that is the reference time.
  if (last_maxerror_us_ < 0 || k.maxerror_us < last_maxerror_us_) kernel_reference_ = base::to_ntp(now);
  last_maxerror_us_ = k.maxerror_us;
  return state_from_kernel(k, options_, precision_, kernel_reference_, now);
}

TimeState ClockService::poll_mirror(base::RealTime now) {
  const auto wait = std::min<base::Nanos>(
      kMirrorReplyWait, std::chrono::duration_cast<base::Nanos>(
                            std::chrono::duration<double>(options_.mirror_interval / 2)));
  const auto sample = mirror_->poll(wait);
  const base::Nanos mono = base::now_mono();
  std::string error = sample ? mirror_reply_problem(*sample) : mirror_->last_error();
  const bool had_good = have_good_;
  const base::Nanos previous_good = last_good_mono_;
  TimeState s;
  if (error.empty()) {
    s = state_from_mirror(*sample, precision_);
    last_good_ = s;
    have_good_ = true;
    last_good_mono_ = mono;
    if (!s.synchronised) {
      error = sample->reply.leap == wire::Leap::kUnsynchronised || sample->reply.stratum >= 16
                  ? fmt::format("the server is unsynchronised (LI {}, stratum {})",
                                static_cast<int>(sample->reply.leap), sample->reply.stratum)
                  : fmt::format("root distance {:.3f} s (our clock is that far from the server's)",
                                s.root_delay / 2 + s.root_dispersion);
    }
  } else {
    // No usable reply: the last good state, its dispersion growing at PHI from when it was
    // taken, until mirror_timeout has passed without one.
    s = last_good_;
    s.source = Source::kMirror;
    const double silent = std::chrono::duration<double>(mono - last_good_mono_).count();
    if (!have_good_ || silent > options_.mirror_timeout) {
      s.synchronised = false;
      if (!have_good_) {
        s.precision = precision_;
        s.as_of = now;
      }
    }
  }
  // One line when the replies change between synchronised and not (and why), none per poll;
  // a flapping server goes through the limiter.
  const int state = s.synchronised ? 1 : 0;
  if (state != announced_) {
    const std::string who = options_.mirror.to_string();
    if (s.synchronised) {
      if (!had_good)
        mirror_warnings_.log(LogLevel::kInfo, "mirror {} answers: stratum {}, replies are synchronised",
                             who, s.stratum);
      else
        mirror_warnings_.log(LogLevel::kInfo,
                             "mirror {} answers again after {:.1f} s without a usable reply: "
                             "stratum {}, replies are synchronised",
                             who, std::chrono::duration<double>(mono - previous_good).count(),
                             s.stratum);
    } else {
      // `error` is set whenever the state is unsynchronised: the poll's problem, or why a
      // usable reply was unsynchronised.
      const std::string why =
          have_good_ && last_good_mono_ != mono
              ? fmt::format("no usable reply for {:.1f} s (last: {})",
                            std::chrono::duration<double>(mono - last_good_mono_).count(), error)
              : error;
      mirror_warnings_.log(LogLevel::kWarning, "mirror {}: {}; {}", who, why,
                           options_.unsynchronised == UnsyncAction::kDrop
                               ? "requests are dropped until it answers"
                               : "replies are unsynchronised (LI 3, stratum 16) until it answers");
    }
    announced_ = state;
  }
  std::lock_guard lock(mu_);
  last_error_ = error;
  return s;
}

std::string ClockService::describe() const {
  std::lock_guard lock(mu_);
  return last_error_;
}

}  // namespace strata::clock
