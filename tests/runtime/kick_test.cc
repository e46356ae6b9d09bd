// Kicking: a guest spinning forever is stopped from another thread; a kick before run() stops
// the next run; several vCPUs on their own threads are started, kicked and joined repeatedly.
#include <catch2/catch.hpp>

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "guest.h"

using namespace testing;
using namespace std::chrono_literals;
using kvm::ExitReason;

namespace {
void spin_forever(Assembler& a) {
  auto top = a.new_label();
  a.bind(top);
  a.jmp(top);
}
}  // namespace

TEST_CASE("a kick from another thread stops a guest that spins forever") {
  LongModeGuest g(spin_forever);
  kvm::Kicker kicker = g.vcpu.kicker();
  for (int round = 0; round < 3; ++round) {
    auto t0 = std::chrono::steady_clock::now();
    std::thread k([&] {
      std::this_thread::sleep_for(50ms);
      kicker.kick();
    });
    kvm::Exit e = g.vcpu.run();
    k.join();
    CHECK(e.interrupted());
    CHECK(e.run_errno() == EINTR);
    CHECK(e.reason() == ExitReason::Intr);
    CHECK(std::chrono::steady_clock::now() - t0 >= 50ms);
    CHECK(g.vcpu.run_struct().immediate_exit == 0);  // consumed by that run
  }
}

TEST_CASE("a kick before run() makes exactly the next run return at once") {
  LongModeGuest g([](Assembler& a) {
    a.out(Width::k8, 0x10);
    a.hlt();
  });
  g.vcpu.kicker().kick();
  kvm::Exit e = g.vcpu.run();
  CHECK(e.interrupted());
  CHECK_THROWS_WITH(e.io(), Catch::Contains("the run was interrupted (EINTR)"));
  e = g.vcpu.run();  // the kick was consumed: the guest now runs
  REQUIRE_FALSE(e.interrupted());
  CHECK(e.reason() == ExitReason::Io);
}

namespace {
bool kick_signal_blocked_here() {
  sigset_t now;
  pthread_sigmask(SIG_BLOCK, nullptr, &now);
  return sigismember(&now, kvm::kick_signal()) == 1;
}

// A thread inherits its creator's mask, and the test runner's thread has run kickable vCPUs:
// the tests set the mask of the threads they make themselves.
void set_kick_signal_blocked_here(bool blocked) {
  sigset_t kick;
  sigemptyset(&kick);
  sigaddset(&kick, kvm::kick_signal());
  pthread_sigmask(blocked ? SIG_BLOCK : SIG_UNBLOCK, &kick, nullptr);
}
}  // namespace

TEST_CASE(
    "a vCPU without a Kicker runs with the kick signal unblocked and no mask of ours; the first "
    "Kicker blocks it") {
  // A thread of its own, whose mask the test sets.
  struct Seen {
    bool blocked_after_plain_run = true;
    bool blocked_after_kickable_run = false;
    std::string first, second;
  };
  Seen seen = std::async(std::launch::async, [] {
                // Blocked, as in a thread made by one that ran kickable vCPUs.
                set_kick_signal_blocked_here(true);
                Seen s;
                LongModeGuest g([](Assembler& a) {
                  a.out(Width::k8, 0x10);
                  a.hlt();
                });
                s.first = g.vcpu.run().name();
                s.blocked_after_plain_run = kick_signal_blocked_here();
                kvm::Kicker k = g.vcpu.kicker();
                s.second = g.vcpu.run().name();
                s.blocked_after_kickable_run = kick_signal_blocked_here();
                return s;
              }).get();
  CHECK(seen.first == "KVM_EXIT_IO");
  CHECK(seen.second == "KVM_EXIT_HLT");
  // No KVM_SET_SIGNAL_MASK, and the signal unblocked so that a Kicker made during the run
  // could still stop it: a VMM that never kicks pays nothing for kicks.
  CHECK_FALSE(seen.blocked_after_plain_run);
  // Kickable: blocked outside KVM_RUN, so a late kick cannot interrupt the thread's syscalls.
  CHECK(seen.blocked_after_kickable_run);
}

TEST_CASE("a Kicker made while its vCPU is already inside KVM_RUN stops that run") {
  // The vCPU thread has the kick signal unblocked and KVM has no mask of ours: the signal
  // interrupts KVM_RUN directly. (A thread that inherited it blocked gets the masks at once,
  // as the four-vCPU test below shows in its first round.)
  LongModeGuest g(spin_forever);
  auto running = std::async(std::launch::async, [&] {
    set_kick_signal_blocked_here(false);  // as in a VMM that has not used the runtime before
    return g.vcpu.run().run_errno();
  });
  std::this_thread::sleep_for(50ms);  // the guest is spinning, and has never been kickable
  g.vcpu.kicker().kick();
  REQUIRE(running.wait_for(10s) == std::future_status::ready);  // the watchdog
  CHECK(running.get() == EINTR);
}

TEST_CASE("a Kicker outlives its Vcpu safely") {
  std::optional<kvm::Kicker> k;
  {
    LongModeGuest g([](Assembler& a) { a.hlt(); });
    k = g.vcpu.kicker();
  }
  k->kick();  // the mapping is still held by the kicker: no crash, no effect
  SUCCEED();
}

TEST_CASE("four vCPUs on threads, kicked and joined repeatedly, with a watchdog") {
  kvm::System sys;
  kvm::Vm vm = sys.create_vm();
  kvm::GuestMemory mem;
  auto ram = mem.add(vm, 0, 4 << 20);
  kvm::x86::GuestLayout layout;
  kvm::x86::write_long_mode_tables(ram, 0, layout);
  // Each vCPU reports its id (in rbx) once on port 0x90, then spins.
  Assembler a;
  a.mov(Reg::Rax, Reg::Rbx);
  a.out(Width::k32, 0x90);
  auto top = a.new_label();
  a.bind(top);
  a.jmp(top);
  kvm::x86::write_bytes(ram, 0, layout.code, a.finish(), "code");

  constexpr int kVcpus = 4;
  std::vector<kvm::Vcpu> vcpus;
  for (int i = 0; i < kVcpus; ++i) {
    vcpus.push_back(vm.create_vcpu(static_cast<unsigned>(i)));
    auto s = vcpus.back().sregs();
    kvm::x86::setup_long_mode_sregs(s, layout);
    vcpus.back().set_sregs(s);
    kvm::abi::kvm_regs r{};
    kvm::x86::setup_regs(r, layout.code, layout.stack_top - 0x1000 * i);
    r.rbx = static_cast<std::uint64_t>(i);
    vcpus.back().set_regs(r);
  }
  for (int round = 0; round < 5; ++round) {
    // Workers only record what they saw; Catch2 assertions stay on this thread (Catch2 is not
    // thread-safe).
    struct Seen {
      int id = -1;
      int interrupted = 0;
      std::string unexpected;  // an exit that should not have happened
    };
    std::vector<std::future<Seen>> results;
    std::atomic<int> reported{0};
    for (int i = 0; i < kVcpus; ++i) {
      results.push_back(std::async(std::launch::async, [&, i] {
        Seen seen;
        for (;;) {
          kvm::Exit e = vcpus[i].run();
          if (e.interrupted()) {
            ++seen.interrupted;
            return seen;
          }
          if (e.reason() != ExitReason::Io) {
            seen.unexpected = e.name();
            return seen;
          }
          seen.id = static_cast<int>(e.io().value());
          ++reported;
        }
      }));
    }
    // Wait (bounded) until every vCPU has reported in the first round, then kick them all.
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (round == 0 && reported < kVcpus && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(1ms);
    }
    std::this_thread::sleep_for(20ms);
    for (auto& v : vcpus) v.kicker().kick();
    for (int i = 0; i < kVcpus; ++i) {
      // The watchdog: a vCPU that does not come back within 10 s fails the test.
      REQUIRE(results[i].wait_for(10s) == std::future_status::ready);
      Seen seen = results[i].get();
      CHECK(seen.unexpected.empty());
      CHECK(seen.interrupted == 1);
      if (round == 0) CHECK(seen.id == i);
    }
  }
}

// run_for(): a deadline on KVM_RUN, for fuzzers and sandboxes.
namespace {
// Spins while rax == 0, then reports on port 0x42 and halts.
void spin_until_rax(Assembler& a) {
  auto top = a.new_label();
  a.bind(top);
  a.test(Reg::Rax, Reg::Rax);
  a.je(top);
  a.out(Width::k8, 0x42);
  a.hlt();
}
}  // namespace

TEST_CASE("run_for: a spinning guest times out no earlier than its deadline, then runs on") {
  LongModeGuest g(spin_until_rax);
  for (auto timeout : {20ms, 5ms}) {
    auto t0 = std::chrono::steady_clock::now();
    kvm::Exit e = g.vcpu.run_for(timeout);
    auto took = std::chrono::steady_clock::now() - t0;
    CHECK(e.timed_out());
    CHECK(e.interrupted());
    CHECK(e.status() == kvm::RunStatus::TimedOut);
    CHECK(took >= timeout);
    CHECK_THROWS_WITH(e.io(), Catch::Contains("the run timed out (EINTR)"));
  }
  // Nothing of the timer is left behind: the next run goes on until the guest's exit.
  auto regs = g.vcpu.regs();
  regs.rax = 1;
  g.vcpu.set_regs(regs);
  kvm::Exit e = g.vcpu.run();
  REQUIRE_FALSE(e.interrupted());
  CHECK(e.reason() == ExitReason::Io);
  CHECK(e.io().port() == 0x42);
  CHECK(g.vcpu.run().reason() == ExitReason::Hlt);
}

TEST_CASE("run_for: an exit before the deadline is returned as from run()") {
  LongModeGuest g([](Assembler& a) {
    a.out(Width::k8, 0x10);
    a.hlt();
  });
  kvm::Exit e = g.vcpu.run_for(10s);
  REQUIRE_FALSE(e.interrupted());
  CHECK_FALSE(e.timed_out());
  CHECK(e.reason() == ExitReason::Io);
  e = g.vcpu.run_for(10s);
  CHECK(e.reason() == ExitReason::Hlt);
  CHECK_THROWS_WITH(g.vcpu.run_for(-1ms),
                    "kvm::Vcpu::run_for: Invalid argument (vcpu 0: "
                    "negative timeout -1000000 ns)");
}

TEST_CASE("run_for: a kick before the deadline is an interruption, not a timeout") {
  LongModeGuest g(spin_forever);
  kvm::Kicker kicker = g.vcpu.kicker();
  std::thread k([&] {
    std::this_thread::sleep_for(20ms);
    kicker.kick();
  });
  kvm::Exit e = g.vcpu.run_for(60s);
  k.join();
  CHECK(e.interrupted());
  CHECK_FALSE(e.timed_out());
}

// Deadlines of 0 to 50 µs land anywhere around the guest entry, including just before it;
// every call must come back (the repeating timer covers a signal that arrives too early).
// Runs on two threads in turn, so the timer is re-created for each; a watchdog bounds it all.
TEST_CASE("run_for: thousands of tiny deadlines all come back, from two threads") {
  LongModeGuest g(spin_forever);
  auto worker = [&](int first) {
    int timed_out = 0;
    for (int i = 0; i < 1000; ++i) {
      kvm::Exit e = g.vcpu.run_for(std::chrono::microseconds((first + i * 7) % 51));
      if (!e.interrupted()) return -1;  // the guest never exits
      timed_out += e.timed_out();
    }
    return timed_out;
  };
  for (int round = 0; round < 2; ++round) {
    auto result = std::async(std::launch::async, worker, round);
    REQUIRE(result.wait_for(60s) == std::future_status::ready);  // the watchdog
    int timed_out = result.get();
    CHECK(timed_out == 1000);  // nothing else interrupts this guest
  }
}
