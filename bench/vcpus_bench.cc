// Exits on several vCPUs at once: aggregate exit round trips with 1 and 2 vCPU threads, ours
// against raw. Each thread runs its own vCPU of one VM (the out loop; the vCPUs share the
// code, which they only read). If the runtime had state the threads contend on, the 2-thread
// ratio would grow over the 1-thread one.
//
//   vcpus/1, vcpus/2   one operation = one exit on every thread; the time reported is the
//                      turn's wall time divided by (operations x threads), i.e. the inverse
//                      of the aggregate exits per second. Sides: raw, ours.
// The threads live as long as the benchmark and are started and awaited once per turn.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench.h"
#include "checks.h"
#include "guest.h"

namespace bench {
namespace {

// Threads that each run `ops(thread, n)` when a turn starts; run(n) returns the turn's
// wall time. A failure in a thread is handed to the caller of run().
class Team {
 public:
  Team(std::size_t threads, std::function<void(std::size_t, std::size_t)> op) : op_(std::move(op)) {
    for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this, i] { work(i); });
  }
  ~Team() {
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
    }
    start_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

  double run(std::size_t n) {
    std::unique_lock<std::mutex> lock(m_);
    n_ = n;
    busy_ = threads_.size();
    ++turn_;
    auto t0 = std::chrono::steady_clock::now();
    start_.notify_all();
    done_.wait(lock, [this] { return busy_ == 0; });
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!error_.empty()) fail(error_);
    return s;
  }

 private:
  void work(std::size_t i) {
    std::uint64_t seen = 0;
    for (;;) {
      std::size_t n;
      {
        std::unique_lock<std::mutex> lock(m_);
        start_.wait(lock, [&] { return stop_ || turn_ != seen; });
        if (stop_) return;
        seen = turn_;
        n = n_;
      }
      std::string error;
      try {
        op_(i, n);
      } catch (const Failure& f) {
        error = f.what;
      } catch (const std::exception& e) {
        error = e.what();
      }
      std::lock_guard<std::mutex> lock(m_);
      if (!error.empty()) error_ = error;
      if (--busy_ == 0) done_.notify_one();
    }
  }

  std::function<void(std::size_t, std::size_t)> op_;
  std::vector<std::thread> threads_;
  std::mutex m_;
  std::condition_variable start_, done_;
  std::uint64_t turn_ = 0;
  std::size_t n_ = 0, busy_ = 0;
  bool stop_ = false;
  std::string error_;
};

// ---- raw: one VM, K vCPUs, plain ioctls ---------------------------------------------------

struct RawVcpu {
  int fd = -1;
  struct kvm_run* run = nullptr;
};

struct RawMultiGuest {
  RawGuest base{Program::OutLoop};  // vCPU 0 and the memory
  std::vector<RawVcpu> extra;       // vCPUs 1..K-1

  explicit RawMultiGuest(std::size_t vcpus) {
    try {
      add_vcpus(vcpus);
    } catch (...) {
      release();  // the destructor does not run for a constructor that throws
      throw;
    }
  }
  ~RawMultiGuest() { release(); }

  void add_vcpus(std::size_t vcpus) {
    for (unsigned id = 1; id < vcpus; ++id) {
      RawVcpu v;
      v.fd = ioctl(base.vm, KVM_CREATE_VCPU, id);
      if (v.fd < 0) fail("KVM_CREATE_VCPU: " + std::string(std::strerror(errno)));
      void* p = mmap(nullptr, base.run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v.fd, 0);
      if (p == MAP_FAILED) {
        close(v.fd);
        fail("mmap kvm_run: " + std::string(std::strerror(errno)));
      }
      v.run = static_cast<struct kvm_run*>(p);
      extra.push_back(v);
      struct kvm_sregs sregs;
      raw_ioctl(v.fd, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
      init_sregs(sregs);
      raw_ioctl(v.fd, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");
      struct kvm_regs regs;
      init_regs(regs);
      raw_ioctl(v.fd, KVM_SET_REGS, &regs, "KVM_SET_REGS");
    }
  }
  void release() {
    for (RawVcpu& v : extra) {
      munmap(v.run, base.run_size);
      close(v.fd);
    }
    extra.clear();
  }
  RawVcpu vcpu(std::size_t i) const { return i == 0 ? RawVcpu{base.vcpu, base.run} : extra[i - 1]; }

  void exits(std::size_t i, std::size_t n) const {
    RawVcpu v = vcpu(i);
    for (std::size_t k = 0; k < n; ++k) {
      int rc;
      do {
        rc = ioctl(v.fd, KVM_RUN, 0);
      } while (rc < 0 && (errno == EINTR || errno == EAGAIN));
      if (rc < 0) fail("KVM_RUN: " + std::string(std::strerror(errno)));
      check_raw_exit(*v.run, Program::OutLoop);
    }
  }
};

// ---- ours: the same through the runtime --------------------------------------------------

struct OurMultiGuest {
  OurGuest base{Program::OutLoop};
  std::vector<kvm::Vcpu> extra;

  explicit OurMultiGuest(std::size_t vcpus) {
    for (unsigned id = 1; id < vcpus; ++id) {
      extra.push_back(base.vm.create_vcpu(id));
      kvm::x86::start_in_long_mode(extra.back(), layout());
    }
  }
  kvm::Vcpu& vcpu(std::size_t i) { return i == 0 ? base.vcpu : extra[i - 1]; }

  void exits(std::size_t i, std::size_t n) {
    kvm::Vcpu& v = vcpu(i);
    for (std::size_t k = 0; k < n; ++k) check_our_exit(run_ours(v), Program::OutLoop);
  }
};

class TeamSide final : public Side {
 public:
  TeamSide(std::string name, std::size_t threads, std::function<void(std::size_t, std::size_t)> op)
      : Side(std::move(name)), threads_(threads), team_(threads, std::move(op)) {}
  double run(std::size_t n) override {
    return team_.run(n) / static_cast<double>(threads_);  // per exit, all threads together
  }

 private:
  std::size_t threads_;
  Team team_;
};

void vcpus_bench(benchmark::State& st, std::size_t threads) {
  guarded(st, [&] {
    RawMultiGuest raw(threads);
    OurMultiGuest ours(threads);
    Sides s;
    s.push_back(std::make_unique<TeamSide>(
        "raw", threads, [&raw](std::size_t i, std::size_t n) { raw.exits(i, n); }));
    s.push_back(std::make_unique<TeamSide>(
        "ours", threads, [&ours](std::size_t i, std::size_t n) { ours.exits(i, n); }));
    interleave(st, std::move(s), 256);
  });
}

const bool registered = [] {
  for (std::size_t threads : {1, 2}) {
    benchmark::RegisterBenchmark(("vcpus/" + std::to_string(threads)).c_str(), vcpus_bench, threads)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
  return true;
}();

const bool compared = [] {
  compare({"1 vCPU thread: time per exit (1 / exits/s)", "vcpus/1", "raw", "ours"});
  compare(
      {"2 vCPU threads: time per exit, aggregate", "vcpus/2", "raw", "ours", Goal::MaxRatio, 1.01});
  compare({"2 threads vs 1: aggregate time per exit, raw", "vcpus/1", "raw", "raw", Goal::Info, 0,
           "vcpus/2"});
  compare({"2 threads vs 1: aggregate time per exit, ours", "vcpus/1", "ours", "ours", Goal::Info,
           0, "vcpus/2"});
  return true;
}();

}  // namespace
}  // namespace bench
