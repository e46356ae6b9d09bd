// Test helper for any arch: kicks a vCPU from another thread after a delay; joins the thread
// when it goes out of scope.
#pragma once

#include <chrono>
#include <thread>

#include "kvm/kvm.h"

namespace testing {

struct DelayedKick {
  std::thread t;
  DelayedKick(const kvm::Vcpu& v, std::chrono::milliseconds delay)
      : t([k = v.kicker(), delay] {
          std::this_thread::sleep_for(delay);
          k.kick();
        }) {}
  DelayedKick(const DelayedKick&) = delete;
  DelayedKick& operator=(const DelayedKick&) = delete;
  ~DelayedKick() { t.join(); }
};

}  // namespace testing
