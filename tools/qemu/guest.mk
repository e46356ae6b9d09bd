# Cross-builds the guest side of the QEMU harness for one arch (used by build_guest.sh):
#   make -f tools/qemu/guest.mk ARCH=aarch64 OUT=.cache/qemu/build/aarch64 CATCH2_INCLUDE=DIR
# $(OUT)/kvm_tests: the runtime, the arch's instruction encoder and the Catch2 tests of
# tests/$(ARCH)/ and tests/portable/, static; $(OUT)/init: tools/qemu/guest_init.cc, static.
# Objects keep -MMD dependency files, so a rebuild compiles only what changed.

TRIPLE_aarch64 := aarch64-linux-gnu
TRIPLE_riscv64 := riscv64-linux-gnu
TRIPLE := $(TRIPLE_$(ARCH))
ifeq ($(TRIPLE),)
$(error ARCH must be aarch64 or riscv64, not "$(ARCH)")
endif

CXX := $(TRIPLE)-g++
CXXFLAGS := -std=c++20 -O1 -g0 -Wall -Wextra -Werror -Wno-missing-field-initializers
CPPFLAGS := -Iruntime -Igenerated/$(ARCH) -I$(CATCH2_INCLUDE) -Itests/portable -Itests/$(ARCH)
LDFLAGS := -static -pthread

LIB_SRCS := $(wildcard runtime/kvm/*.cc) $(wildcard runtime/kvm/$(ARCH)/*.cc)
TEST_SRCS := $(wildcard tests/$(ARCH)/*.cc) $(wildcard tests/portable/*.cc) \
  third_party/catch2/catch2_main.cc
EXAMPLE_SRCS := $(wildcard examples/hello_$(ARCH)/*.cc)

obj = $(patsubst %.cc,$(OUT)/obj/%.o,$(1))

all: $(OUT)/kvm_tests $(OUT)/init $(if $(EXAMPLE_SRCS),$(OUT)/hello_vmm)

$(OUT)/kvm_tests: $(call obj,$(LIB_SRCS) $(TEST_SRCS))
	$(CXX) $(LDFLAGS) -o $@ $^

$(OUT)/init: $(call obj,tools/qemu/guest_init.cc)
	$(CXX) $(LDFLAGS) -o $@ $^

$(OUT)/hello_vmm: $(call obj,$(LIB_SRCS) $(EXAMPLE_SRCS))
	$(CXX) $(LDFLAGS) -o $@ $^

# Tests include their own directory's helpers ("arm_guest.h"), the portable ones and the
# arch's (tests/portable/ is shared by both arches).
$(OUT)/obj/%.o: %.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) -I$(dir $<) $(CXXFLAGS) -MMD -MP -c -o $@ $<

-include $(shell find $(OUT)/obj -name '*.d' 2>/dev/null)

.PHONY: all
