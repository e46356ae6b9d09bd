// The families of the checked-in bindings, every arch: within a family made by a prefix,
// suffix or name rule, no two members share a value. A shared value means a rule swallowed a
// constant of another kind (a field mask, another flag word, a neighbouring namespace), and
// to_string() of that value could only name one of them. Members of a header C enum are left
// alone: the header itself gives those values. A failure here after regenerating for new
// headers asks for a line in generator/families.rules.
#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace {

nlohmann::json load(const std::string& arch) {
  std::ifstream in("generated/" + arch + "/kvm_api.json");
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

}  // namespace

TEST_CASE("no family made by a rule has two members with one value") {
  for (const std::string arch : {"x86_64", "aarch64", "riscv64"}) {
    nlohmann::json model = load(arch);
    REQUIRE(model["families"].size() > 30);
    for (const auto& family : model["families"]) {
      std::string rule = family["rule"];
      if (rule.rfind("c-enum", 0) == 0) continue;
      std::map<std::uint64_t, std::vector<std::string>> by_value;
      for (const auto& m : family["members"])
        by_value[m["value"].get<std::uint64_t>()].push_back(m["name"]);
      for (const auto& [value, names] : by_value) {
        std::string list;
        for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
        INFO(arch << ": " << family["name"].get<std::string>() << " (" << rule << ") value "
                  << value << ": " << list);
        CHECK(names.size() == 1);
      }
    }
  }
}
