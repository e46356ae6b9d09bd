// /init of the QEMU guests that run the aarch64 and riscv64 tests (tools/qemu/run.sh).
//
// Mounts /proc, /sys and /dev (devtmpfs, which gives /dev/kvm), loads /kvm.ko when the
// initramfs has one (riscv64 builds KVM as a module) and runs /kvm_tests (the Catch2 tests,
// or an example VMM) between two marker lines on the console. XML_OUTPUT_FILE makes the
// Catch2 main (third_party/catch2/catch2_main.cc) write a JUnit report, which is printed
// between two more marker lines, where run.sh cuts it out. Then powers the guest off. Nothing here
// may fail silently: each failure is printed with a marker line run.sh turns into a failed result.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

namespace {

void fail(const std::string& what) {
  std::cout << "KVMCPP-INIT-FAILED: " << what << ": " << std::strerror(errno) << std::endl;
}

void mount_or_report(const char* fs, const char* dir) {
  mkdir(dir, 0755);
  if (mount(fs, dir, fs, 0, nullptr) != 0 && errno != EBUSY) fail(std::string("mount ") + dir);
}

// finit_module(2) has no libc wrapper in glibc 2.36.
void load_kvm_module() {
  int fd = open("/kvm.ko", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;  // built in (arm64)
  if (syscall(SYS_finit_module, fd, "", 0) != 0 && errno != EEXIST) fail("finit_module kvm.ko");
  close(fd);
}

int run_tests(const char* report) {
  pid_t pid = fork();
  if (pid == 0) {
    setenv("XML_OUTPUT_FILE", report, 1);
    execl("/kvm_tests", "/kvm_tests", nullptr);
    fail("exec /kvm_tests");
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) < 0) {
    fail("fork/wait /kvm_tests");
    return -1;
  }
  return status;
}

void print_report(const char* report) {
  std::ifstream in(report);
  if (!in) return;  // not a Catch2 program
  std::stringstream text;
  text << in.rdbuf();
  std::cout << "KVMCPP-REPORT-BEGIN\n" << text.str() << "\nKVMCPP-REPORT-END" << std::endl;
}

}  // namespace

int main() {
  mount_or_report("proc", "/proc");
  mount_or_report("sysfs", "/sys");
  mount_or_report("devtmpfs", "/dev");
  load_kvm_module();
  if (access("/dev/kvm", R_OK | W_OK) != 0) fail("/dev/kvm");

  const char* report = "/report.xml";
  std::cout << "KVMCPP-PROGRAM-BEGIN" << std::endl;
  int status = run_tests(report);
  std::cout << "KVMCPP-PROGRAM-END" << std::endl;
  print_report(report);
  std::cout << "KVMCPP-PROGRAM-STATUS: " << status << std::endl;
  sync();
  reboot(RB_POWER_OFF);
  return 0;
}
