// The clock thread (see clock_service.h).
#include "clock/clock_service.h"

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
  if (sample) {
    last_good_ = state_from_mirror(*sample, precision_);
    if (!have_good_) base::log(LogLevel::kInfo, "mirror {} answers", options_.mirror.to_string());
    have_good_ = true;
    last_good_mono_ = mono;
    std::lock_guard lock(mu_);
    last_error_.clear();
    return last_good_;
  }
  {
    std::lock_guard lock(mu_);
    if (last_error_ != mirror_->last_error())
      mirror_warnings_.log(LogLevel::kWarning, "mirror {}: {}", options_.mirror.to_string(),
                           mirror_->last_error());
    last_error_ = mirror_->last_error();
  }
  TimeState s = last_good_;
  s.source = Source::kMirror;
  const double silent = std::chrono::duration<double>(mono - last_good_mono_).count();
  if (!have_good_ || silent > options_.mirror_timeout) {
    s.synchronised = false;
    if (!have_good_) {
      s.precision = precision_;
      s.as_of = now;
    }
  }
  return s;
}

std::string ClockService::describe() const {
  std::lock_guard lock(mu_);
  return last_error_;
}

}  // namespace strata::clock
