#include "generator/output.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <stdexcept>

namespace kvmgen {
namespace {

namespace fs = std::filesystem;

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::set<std::string> existing_files(const fs::path& dir) {
  std::set<std::string> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out.insert(e.path().lexically_relative(dir).string());
  }
  return out;
}

// Prints a unified diff of `expected` (fresh output) against the file on disk.
void show_diff(const fs::path& on_disk, const std::string& expected) {
  fs::path tmp = fs::temp_directory_path() / ("kvmgen-fresh-" + std::to_string(::getpid()));
  {
    std::ofstream o(tmp, std::ios::binary);
    o << expected;
  }
  std::string cmd = "diff -u --label '" + on_disk.string() + " (checked in)' --label '" +
                    on_disk.string() + " (regenerated)' '" + on_disk.string() + "' '" +
                    tmp.string() + "' | head -n 80";
  std::fflush(stdout);
  if (std::system(cmd.c_str()) != 0) std::cout << "(diff unavailable)\n";
  fs::remove(tmp);
}

}  // namespace

int sync_output(const Rendered& files, const std::string& out_dir, OutputMode mode) {
  const fs::path dir = out_dir;
  int stale = 0;
  std::set<std::string> old = existing_files(dir);
  for (const auto& [rel, text] : files) {
    fs::path p = dir / rel;
    old.erase(rel);
    if (mode == OutputMode::Write) {
      fs::create_directories(p.parent_path());
      if (!fs::exists(p) || read(p) != text) {
        std::ofstream o(p, std::ios::binary);
        o << text;
        if (!o) throw std::runtime_error("cannot write " + p.string());
      }
    } else if (!fs::exists(p)) {
      std::cout << "missing: " << p.string() << "\n";
      ++stale;
    } else if (read(p) != text) {
      std::cout << "stale: " << p.string() << "\n";
      show_diff(p, text);
      ++stale;
    }
  }
  for (const std::string& rel : old) {
    if (mode == OutputMode::Write) {
      fs::remove(dir / rel);
    } else {
      std::cout << "not produced by kvmgen: " << (dir / rel).string() << "\n";
      ++stale;
    }
  }
  return stale;
}

}  // namespace kvmgen
