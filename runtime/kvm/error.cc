#include "kvm/error.h"

#include <cstring>

namespace kvm {
namespace {

std::string format(std::string_view operation, int err, std::string_view context) {
  std::string msg(operation);
  msg += ": ";
  msg += std::generic_category().message(err);
  if (!context.empty()) {
    msg += " (";
    msg += context;
    msg += ")";
  }
  return msg;
}

}  // namespace

Error::Error(std::string_view operation, int err, std::string_view context)
    : std::system_error(err, std::generic_category()),
      message_(format(operation, err, context)),
      operation_(operation),
      context_(context) {}

void throw_error(std::string_view operation, int err, std::string_view context) {
  throw Error(operation, err, context);
}

}  // namespace kvm
