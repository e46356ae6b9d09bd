/* Fixture: the arch half. */
#ifndef FIXTURE_ASM_KVM_H
#define FIXTURE_ASM_KVM_H
#define KVM_GUESTDBG_USE_SW_BP 0x00010000
struct kvm_regs {
	__u64 rax, rbx;
};
#endif
