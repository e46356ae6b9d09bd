#include "kvm/system.h"

#include <fcntl.h>

#include <cerrno>

#include "kvm/vm.h"

namespace kvm {

System::System() : System("/dev/kvm") {}

System::System(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) throw_error("open", errno, path);
  fd_.reset(fd);
  int version = api_version();
  if (version != kStableApiVersion) {
    throw Error("KVM_GET_API_VERSION", ENOTSUP,
                path + " reports API version " + std::to_string(version) + ", expected " +
                    std::to_string(kStableApiVersion));
  }
}

int System::api_version() const { return ioctl<abi::ioctl::GetApiVersion>(); }

int System::check_extension(abi::Cap cap) const {
  return ioctl<abi::ioctl::CheckExtension>(static_cast<unsigned long>(abi::to_underlying(cap)));
}

std::size_t System::vcpu_mmap_size() const {
  if (mmap_size_ == 0) mmap_size_ = static_cast<std::size_t>(ioctl<abi::ioctl::GetVcpuMmapSize>());
  return mmap_size_;
}

Vm System::create_vm(VmType type) const {
  detail::check_vm_type(fd(), type);
  std::size_t size = vcpu_mmap_size();
  if (!have_limits_ && type.is_default()) {
    // Asked once per System; for the default machine type the system-wide answers are the
    // VM's. Other types keep asking their VM.
    limits_.nr_memslots = check_extension(abi::Cap::NrMemslots);
    limits_.max_vcpu_id = check_extension(abi::Cap::MaxVcpuId);
    limits_.max_vcpus = check_extension(abi::Cap::MaxVcpus);
    have_limits_ = true;
  }
  int fd = ioctl<abi::ioctl::CreateVm>(type.value(), type.name());
  return Vm(Fd(fd), size, type.is_default() ? limits_ : VmLimits{}, type);
}

#if defined(__aarch64__)
unsigned System::max_ipa_bits() const {
  int bits = check_extension(abi::Cap::ArmVmIpaSize);
  return bits > 0 ? static_cast<unsigned>(bits) : 0;
}
#endif

#if defined(__x86_64__)
namespace {

// Both index-list ioctls answer E2BIG with the needed count when the buffer is short.
template <class Io>
std::vector<std::uint32_t> read_msr_list(const System& sys) {
  MsrList list;
  list.resize(0);
  int r = sys.try_ioctl<Io>(*list.get());
  if (r == -E2BIG) {
    std::size_t n = list.header().nmsrs;
    list.reserve(n);
    list.header().nmsrs = static_cast<std::uint32_t>(n);
    r = sys.try_ioctl<Io>(*list.get());
  }
  if (r < 0) throw_error(Io::name, -r);
  return {list.begin(), list.end()};
}

// KVM_GET_SUPPORTED_CPUID and friends fail with E2BIG while nent is too small.
template <class Io>
Cpuid read_cpuid(const System& sys) {
  Cpuid cpuid;
  for (std::size_t n = 64;; n *= 2) {
    cpuid.resize(n);
    int r = sys.try_ioctl<Io>(*cpuid.get());
    if (r >= 0) return cpuid;
    if (r != -E2BIG || n >= Cpuid::kernel_max) {
      throw_error(Io::name, -r, "with room for " + std::to_string(n) + " entries");
    }
  }
}

}  // namespace

std::vector<std::uint32_t> System::msr_index_list() const {
  return read_msr_list<abi::ioctl::GetMsrIndexList>(*this);
}

std::vector<std::uint32_t> System::msr_feature_index_list() const {
  return read_msr_list<abi::ioctl::GetMsrFeatureIndexList>(*this);
}

int System::get_msrs(Msrs& msrs) const {
  return ioctl<abi::ioctl::GetMsrs>(*msrs.get(), std::to_string(msrs.size()) + " MSRs");
}

Cpuid System::supported_cpuid() const { return read_cpuid<abi::ioctl::GetSupportedCpuid>(*this); }

Cpuid System::emulated_cpuid() const { return read_cpuid<abi::ioctl::GetEmulatedCpuid>(*this); }

Msrs msrs_for(std::initializer_list<std::uint32_t> indices) {
  Msrs m(indices.size());
  for (std::uint32_t i : indices) {
    abi::kvm_msr_entry e{};
    e.index = i;
    m.push_back(e);
  }
  return m;
}
#endif

}  // namespace kvm
