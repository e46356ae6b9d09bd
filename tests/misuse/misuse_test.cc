// The typed ioctl call's misuse, as a user meets it: a wrong-scope or wrong-argument call does
// not compile, and the compiler's error line says, in one sentence, which ioctl it is, what
// it needs and which handle to call it on. Each case is compiled by the host's C++ compiler
// (`c++`, GCC here, whose error line shows the sentence) against the runtime's headers.
// That such calls are detectable with a requires-expression is tests/runtime/api_test.cc's
// static_asserts.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>

#include "tests/run_command.h"

namespace {

// Where runtime/ and generated/ are: the runfiles tree under Bazel, the source tree (given by
// the build) under CMake.
std::string source_dir() {
  if (::access("runtime/kvm/kvm.h", R_OK) == 0) return ".";
#ifdef KVM_SOURCE_DIR
  return KVM_SOURCE_DIR;
#else
  FAIL("runtime/kvm/kvm.h not found from " << ::getcwd(nullptr, 0));
  return "";
#endif
}

// Compiles `body` inside `void f(kvm::System& sys, kvm::Vm& vm, kvm::Vcpu& vcpu)`.
testing::CommandResult compile(const std::string& body) {
  std::string dir = source_dir();
  char path[] = "/tmp/kvm-misuse-XXXXXX.cc";
  int fd = ::mkstemps(path, 3);
  REQUIRE(fd >= 0);
  ::close(fd);
  std::ofstream(path) << "#include \"kvm/kvm.h\"\n"
                      << "void f(kvm::System& sys, kvm::Vm& vm, kvm::Vcpu& vcpu) {\n"
                      << "  (void)sys; (void)vm; (void)vcpu;\n"
                      << body << "\n}\n";
  testing::CommandResult r = testing::run_command(
      "c++ -std=c++20 -fsyntax-only -I" + dir + "/runtime -I" + dir + "/generated/x86_64 " + path);
  ::unlink(path);
  return r;
}

// The error lines of a compiler's output.
std::string errors(const std::string& out) {
  std::string lines, line;
  for (char c : out) {
    if (c != '\n') {
      line += c;
      continue;
    }
    if (line.find("error:") != std::string::npos) lines += line + "\n";
    line.clear();
  }
  return lines;
}

}  // namespace

TEST_CASE("misuse: a correct typed call compiles (the harness works)") {
  auto r = compile("kvm::abi::kvm_regs regs{}; vcpu.ioctl<kvm::abi::ioctl::GetRegs>(regs);");
  INFO(r.output);
  CHECK(r.status == 0);
}

TEST_CASE("misuse: a vCPU ioctl on a Vm is one error line naming the ioctl and the handle") {
  auto r = compile("kvm::abi::kvm_regs regs{}; vm.ioctl<kvm::abi::ioctl::GetRegs>(regs);");
  INFO(r.output);
  CHECK(r.status != 0);
  std::string e = errors(r.output);
  CHECK(std::count(e.begin(), e.end(), '\n') == 1);
  CHECK_THAT(e, Catch::Contains("\"KVM_GET_REGS is a vCPU ioctl: call it on a kvm::Vcpu, not on "
                                "a kvm::Vm\""));
}

TEST_CASE("misuse: an ioctl of two scopes on a third names both handles") {
  auto r = compile("vcpu.ioctl<kvm::abi::ioctl::CheckExtension>(5ul);");
  INFO(r.output);
  CHECK_THAT(errors(r.output),
             Catch::Contains("\"KVM_CHECK_EXTENSION is a system and VM ioctl: call it on a "
                             "kvm::System or a kvm::Vm, not on a kvm::Vcpu\""));
}

TEST_CASE("misuse: a wrong or const argument names the type the ioctl takes") {
  auto r = compile("kvm::abi::kvm_sregs s{}; vcpu.ioctl<kvm::abi::ioctl::GetRegs>(s);");
  INFO(r.output);
  CHECK_THAT(errors(r.output),
             Catch::Contains("\"KVM_GET_REGS takes a non-const lvalue of exactly "
                             "kvm::abi::kvm_regs, then an optional context string; given "
                             "(kvm::abi::kvm_sregs&)\""));
  r = compile("const kvm::abi::kvm_regs c{}; vcpu.try_ioctl<kvm::abi::ioctl::SetRegs>(c);");
  INFO(r.output);
  CHECK_THAT(errors(r.output),
             Catch::Contains("\"KVM_SET_REGS takes a non-const lvalue of exactly "
                             "kvm::abi::kvm_regs; given (const kvm::abi::kvm_regs&)\""));
  r = compile("kvm::abi::kvm_regs regs{}; vcpu.ioctl<kvm::abi::ioctl::Run>(regs);");
  INFO(r.output);
  CHECK_THAT(errors(r.output), Catch::Contains("\"KVM_RUN takes no pointer: nothing or an "
                                               "integer, then an optional context string"));
}

TEST_CASE("misuse: supports<>() on the wrong handle and ioctls this arch lacks") {
  auto r = compile("(void)sys.supports<kvm::abi::ioctl::Run>();");
  INFO(r.output);
  CHECK_THAT(errors(r.output),
             Catch::Contains("\"KVM_RUN is a vCPU ioctl: call it on a kvm::Vcpu, not on a "
                             "kvm::System\""));
  r = compile("vcpu.ioctl<kvm::abi::ioctl::ArmVcpuInit>();");
  INFO(r.output);
  CHECK_THAT(errors(r.output), Catch::Contains("\"KVM_ARM_VCPU_INIT is not available on this "
                                               "arch: its argument type is not defined here\""));
}
