// libFuzzer target: the experiment-report reader (JSON).
#include "chord/personalize/experiment/report_json.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  return chord::fuzz::expect_decoded_or_named_error("input.json", [&] {
    (void)chord::personalize::parse_experiment_report(text, "input.json");
  });
}
