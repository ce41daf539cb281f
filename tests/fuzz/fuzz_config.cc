// Fuzz target: the TOML configuration file. An input is a file's text:
// config::parse() either takes it or throws ConfigError; what it takes is
// checked (config::check) and printed back (config::to_toml), and the
// printed text must parse again to the same settings.
#include "fuzz_common.h"
#include "netstack/config/config_file.h"

using namespace slipway;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  config::Loaded loaded;
  try {
    loaded = config::parse(text, "fuzz.toml");
  } catch (const config::ConfigError&) {
    return 0;
  }
  try {
    config::check(loaded.settings, "fuzz.toml");
  } catch (const config::ConfigError&) {
  }
  const std::string printed = config::to_toml(loaded.settings);
  config::Loaded again = config::parse(printed, "printed.toml");  // throws: a bug
  for (const auto& key : config::keys()) {
    if (config::differs(loaded.settings, again.settings, key.name)) {
      std::fprintf(stderr, "key %s differs after printing:\n%s\n", key.name.c_str(), printed.c_str());
      std::abort();
    }
  }
  return 0;
}
