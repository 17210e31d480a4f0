#include "run/input_file.h"

#include <filesystem>
#include <iostream>
#include <system_error>


namespace hcsim {

std::ifstream open_input_file(const std::string& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) throw ScenarioError(path, "", "cannot open the file: it does not exist");
  if (!std::filesystem::is_regular_file(status)) {
    throw ScenarioError(path, "", std::filesystem::is_directory(status) ? "is a directory; expected a file"
                                                                        : "not a regular file (a device, FIFO or socket); expected a file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ScenarioError(path, "", "cannot open the file (permissions?)");
  return in;
}

namespace {

// Standard input, read once: a command that reads its input twice (to run it, then to embed it in a
// trace) gets the same text both times.
const std::string& standard_input(std::int64_t bytes_max, const std::string& why) {
  static const std::string text = [&] {
    std::string all;
    char chunk[1 << 16];
    while (std::cin.read(chunk, sizeof chunk) || std::cin.gcount() > 0) {
      all.append(chunk, static_cast<std::size_t>(std::cin.gcount()));
      if (static_cast<std::int64_t>(all.size()) > bytes_max) {
        throw ScenarioError(kStandardInput, "", "more than " + std::to_string(bytes_max >> 20) + " MiB: " + why);
      }
    }
    if (std::cin.bad()) throw ScenarioError(kStandardInput, "", "could not read standard input");
    return all;
  }();
  return text;
}

}  // namespace

std::string read_bounded_file(const std::string& path, std::int64_t bytes_max, const std::string& why) {
  if (path == "-") return standard_input(bytes_max, why);
  std::ifstream in = open_input_file(path);
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::int64_t>(in.tellg());
  if (size > bytes_max) {
    throw ScenarioError(path, "", std::to_string(size >> 20) + " MiB, larger than " + std::to_string(bytes_max >> 20) + " MiB: " + why);
  }
  in.seekg(0);
  std::string text(static_cast<std::size_t>(std::max<std::int64_t>(size, 0)), '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.gcount() != static_cast<std::streamsize>(text.size())) throw ScenarioError(path, "", "could not read the whole file");
  return text;
}

}  // namespace hcsim
