// The whole public runtime: #include "kvm/kvm.h".
#pragma once

#include "kvm/abi/kvm_abi.h"
#include "kvm/abi/names.h"
#include "kvm/device.h"
#include "kvm/error.h"
#include "kvm/exit.h"
#include "kvm/fd.h"
#include "kvm/guest_memfd.h"
#include "kvm/ioctl.h"
#include "kvm/kick.h"
#include "kvm/memory.h"
#include "kvm/rings.h"
#include "kvm/stats.h"
#include "kvm/system.h"
#include "kvm/vcpu.h"
#include "kvm/vm.h"
#include "kvm/x86_types.h"
