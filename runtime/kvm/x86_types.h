// The variable-length x86 arguments as safe containers (see flex_buffer.h), and the IRQ
// routing table, which every arch with an irqchip uses.
#pragma once

#include <cstdint>

#include "kvm/abi/kvm_abi.h"
#include "kvm/flex_buffer.h"

namespace kvm {

// KVM_MAX_IRQ_ROUTES in the kernel.
using IrqRouting =
    FlexBuffer<abi::kvm_irq_routing, abi::kvm_irq_routing_entry, &abi::kvm_irq_routing::nr, 4096>;

#if defined(__x86_64__)
// KVM_MAX_CPUID_ENTRIES in the kernel.
using Cpuid = FlexBuffer<abi::kvm_cpuid2, abi::kvm_cpuid_entry2, &abi::kvm_cpuid2::nent, 256>;
// KVM_GET_MSRS / KVM_SET_MSRS refuse nmsrs >= MAX_IO_MSRS (256) with E2BIG: 255 at most.
using Msrs = FlexBuffer<abi::kvm_msrs, abi::kvm_msr_entry, &abi::kvm_msrs::nmsrs, 255>;
// The kernel's MSR lists are far shorter; 16384 bounds what we accept back.
using MsrList = FlexBuffer<abi::kvm_msr_list, std::uint32_t, &abi::kvm_msr_list::nmsrs, 16384>;

// A Msrs table asking for the given indices (data zero).
Msrs msrs_for(std::initializer_list<std::uint32_t> indices);
#endif

}  // namespace kvm
