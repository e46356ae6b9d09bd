// Kicks that cannot starve the vCPU: a storm of kicks queues at most one signal per vCPU, so
// run() and run_for() come back promptly; and a kick that lands after run() returned does not
// interrupt the vCPU thread's other system calls (the kick signal is blocked outside KVM_RUN
// and consumed before run() returns), whatever mask set_signal_mask() gives the guest.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <thread>

#include "guest.h"

using namespace testing;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

void spin_forever(Assembler& a) {
  auto top = a.new_label();
  a.bind(top);
  a.jmp(top);
}

std::chrono::milliseconds ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t);
}

// Kicks `kicker` back to back on its own thread until stopped; counts its kicks.
class KickStorm {
 public:
  explicit KickStorm(kvm::Kicker kicker)
      : thread_([this, k = std::move(kicker)] {
          while (!stop_.load(std::memory_order_relaxed)) {
            k.kick();
            kicks_.fetch_add(1, std::memory_order_relaxed);
          }
        }) {}
  ~KickStorm() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  long kicks() const { return kicks_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<long> kicks_{0};
  std::thread thread_;
};

// A pipe whose read end gets one byte every `period` from a writer thread.
class DrippingPipe {
 public:
  explicit DrippingPipe(std::chrono::microseconds period) {
    REQUIRE(::pipe2(fds_, O_CLOEXEC) == 0);
    writer_ = std::thread([this, period] {
      while (!stop_.load()) {
        std::this_thread::sleep_for(period);
        char c = 'k';
        if (::write(fds_[1], &c, 1) != 1) return;
      }
    });
  }
  ~DrippingPipe() {
    stop_ = true;
    writer_.join();
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  int read_fd() const { return fds_[0]; }

 private:
  int fds_[2] = {-1, -1};
  std::atomic<bool> stop_{false};
  std::thread writer_;
};

}  // namespace

TEST_CASE("kick storm: 100,000 back-to-back kicks stop a run() at once, not after the storm") {
  LongModeGuest g(spin_forever);
  kvm::Kicker kicker = g.vcpu.kicker();
  std::atomic<bool> storm_started{false};
  Clock::time_point storm_start;
  Clock::duration storm_took{};
  std::thread storm([&] {
    std::this_thread::sleep_for(20ms);  // let the guest enter KVM_RUN
    storm_start = Clock::now();
    storm_started = true;
    for (int i = 0; i < 100'000; ++i) kicker.kick();
    storm_took = Clock::now() - storm_start;
  });
  kvm::Exit e = g.vcpu.run();
  Clock::time_point returned = Clock::now();
  storm.join();
  REQUIRE(storm_started);
  CHECK(e.interrupted());
  auto latency = std::chrono::duration_cast<std::chrono::milliseconds>(returned - storm_start);
  INFO(
      "run() returned " << latency.count() << " ms into a storm of "
                        << std::chrono::duration_cast<std::chrono::milliseconds>(storm_took).count()
                        << " ms");
  CHECK(latency < 100ms);
  // Nothing of the storm is left queued for this thread: one more kick stops exactly one run.
  kicker.kick();
  CHECK(g.vcpu.run().interrupted());
  std::atomic<bool> done{false};
  std::thread late([&] {
    std::this_thread::sleep_for(50ms);
    if (!done) kicker.kick();
  });
  auto t0 = Clock::now();
  kvm::Exit next = g.vcpu.run();  // only the late kick stops it
  done = true;
  late.join();
  CHECK(next.interrupted());
  CHECK(ms_since(t0) >= 40ms);
}

TEST_CASE("kick storm: run_for(100ms) under continuous kicks comes back on time") {
  LongModeGuest g(spin_forever);
  KickStorm storm(g.vcpu.kicker());
  std::chrono::milliseconds worst{0};
  auto t_all = Clock::now();
  while (Clock::now() - t_all < 1s) {
    auto t0 = Clock::now();
    kvm::Exit e = g.vcpu.run_for(100ms);
    worst = std::max(worst, ms_since(t0));
    CHECK(e.interrupted());
  }
  storm.stop();
  INFO("worst run_for(100ms) under " << storm.kicks() << " kicks: " << worst.count() << " ms");
  CHECK(storm.kicks() > 0);
  CHECK(worst < 250ms);
}

TEST_CASE("late kicks: a blocking read() on the vCPU thread is never interrupted") {
  LongModeGuest g(spin_forever);
  DrippingPipe pipe(200us);
  KickStorm storm(g.vcpu.kicker());
  int eintr = 0, runs = 0;
  for (int i = 0; i < 2000; ++i) {
    runs += g.vcpu.run().interrupted();  // the storm stops every run
    char c;
    ssize_t n = ::read(pipe.read_fd(), &c, 1);  // blocks until the next drip
    if (n < 0 && errno == EINTR) ++eintr;
    REQUIRE((n == 1 || errno == EINTR));
  }
  storm.stop();
  INFO(storm.kicks() << " kicks during 2000 runs, each followed by a blocking read()");
  CHECK(runs == 2000);
  CHECK(eintr == 0);
}

TEST_CASE("late kicks: poll() and nanosleep() on the vCPU thread are never interrupted") {
  LongModeGuest g(spin_forever);
  KickStorm storm(g.vcpu.kicker());
  int eintr = 0;
  for (int i = 0; i < 500; ++i) {
    REQUIRE(g.vcpu.run().interrupted());
    struct pollfd none {};
    none.fd = -1;
    if (::poll(&none, 1, 1) < 0 && errno == EINTR) ++eintr;  // poll is never restarted
    struct timespec ts = {0, 200'000};
    if (::nanosleep(&ts, nullptr) < 0 && errno == EINTR) ++eintr;
  }
  storm.stop();
  CHECK(eintr == 0);
}

TEST_CASE("set_signal_mask: a mask that blocks every signal still lets kicks reach the guest") {
  LongModeGuest g(spin_forever);
  sigset_t all;
  sigfillset(&all);
  g.vcpu.set_signal_mask(&all);  // the kick signal is taken out of it
  kvm::Kicker kicker = g.vcpu.kicker();
  std::thread k([&] {
    std::this_thread::sleep_for(30ms);
    kicker.kick();
  });
  auto t0 = Clock::now();
  kvm::Exit e = g.vcpu.run();
  k.join();
  CHECK(e.interrupted());
  CHECK(ms_since(t0) >= 20ms);
  // Back to the default (the thread's own mask, without the kick signal): kicks still work,
  // and the kick signal stays blocked in this thread outside KVM_RUN.
  g.vcpu.set_signal_mask(nullptr);
  std::thread k2([&] {
    std::this_thread::sleep_for(30ms);
    kicker.kick();
  });
  CHECK(g.vcpu.run().interrupted());
  k2.join();
  sigset_t now;
  REQUIRE(::pthread_sigmask(SIG_BLOCK, nullptr, &now) == 0);
  CHECK(sigismember(&now, kvm::kick_signal()) == 1);
}
