// The clock thread: refreshes the time state from the configured source at least once a
// second (or each mirror poll) and publishes it to the TimeStateCell the workers read.
// Started by the daemon before the workers, stopped after them.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/log.h"
#include "clock/sources.h"
#include "clock/time_state.h"

namespace strata::clock {

class ClockService {
 public:
  ClockService(const Options& options, TimeStateCell& cell);
  ~ClockService();
  ClockService(const ClockService&) = delete;
  ClockService& operator=(const ClockService&) = delete;

  // Publishes a first state synchronously (a mirror gets one short poll), then starts the thread.
  void start();
  void stop();
  // One refresh from the source, published to the cell. Called by the thread; public for tests.
  void refresh();

  int8_t precision() const { return precision_; }
  // Human-readable state of the source (last mirror error, ...); control thread.
  std::string describe() const;

 private:
  TimeState poll_source(base::RealTime now);
  TimeState poll_kernel(base::RealTime now);
  TimeState poll_mirror(base::RealTime now);
  void run();

  Options options_;
  TimeStateCell& cell_;
  int8_t precision_;
  std::unique_ptr<NtpClient> mirror_;
  // Kernel source: when maxerror was last seen to drop (a daemon corrected the clock).
  long last_maxerror_us_ = -1;
  base::NtpTimestamp kernel_reference_;
  // Mirror source: the last state from a valid reply, and when it came.
  TimeState last_good_{};
  bool have_good_ = false;
  base::Nanos last_good_mono_{};
  int announced_ = -1;  // what the log last said: -1 nothing yet, 0 unsync, 1 sync
  uint64_t updates_ = 0;

  mutable std::mutex mu_;  // guards the fields below (control thread reads them)
  std::string last_error_;
  base::LogLimiter mirror_warnings_{6, std::chrono::seconds(60)};  // a flapping mirror's changes
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace strata::clock
