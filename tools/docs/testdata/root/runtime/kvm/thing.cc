#include "kvm/thing.h"

namespace kvm {

namespace detail {
template <class T>
int get_thing(const T&) {
  return sizeof(abi::ioctl::GetThing);
}
}  // namespace detail

namespace {
int set_helper() { return sizeof(abi::ioctl::SetThing); }
}  // namespace

int Thing::thing() const { return private_get(); }
void Thing::set_thing(int) { set_helper(); }
int Thing::thing_via_helper() const { return detail::get_thing(*this); }
int Thing::run() { return static_cast<int>(abi::ioctl::Run::request); }
int Thing::twice() const { return thing() + thing(); }
void Thing::round_trip() {
  set_thing(thing());
  (void)sizeof(abi::ioctl::SetThing);
  (void)sizeof(abi::ioctl::GetThing);
}
int Thing::wrong_comment() const { return detail::get_thing(*this); }
#if defined(__x86_64__)
void Thing::x86_only() { (void)sizeof(abi::ioctl::X86Only); }
#endif
int Thing::undocumented() const { return sizeof(abi::ioctl::GetThing); }
int Thing::private_get() const { return sizeof(abi::ioctl::GetThing); }

void set_thing_on(Thing& t) { t.set_thing(1); (void)sizeof(abi::ioctl::SetThing); }

}  // namespace kvm
