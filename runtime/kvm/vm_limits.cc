// The VM limits the runtime caches (VmLimits), for callers that size their own tables.
#include "kvm/vm.h"

namespace kvm {

int Vm::max_vcpus() const { return cached_cap(abi::Cap::MaxVcpus, limits_.max_vcpus); }

int Vm::max_vcpu_id() const {
  // KVM_CAP_MAX_VCPU_ID reads 0 on kernels that bound ids by KVM_CAP_MAX_VCPUS alone.
  int id = cached_cap(abi::Cap::MaxVcpuId, limits_.max_vcpu_id);
  return id > 0 ? id : max_vcpus();
}

int Vm::nr_memslots() const { return cached_cap(abi::Cap::NrMemslots, limits_.nr_memslots); }

}  // namespace kvm
