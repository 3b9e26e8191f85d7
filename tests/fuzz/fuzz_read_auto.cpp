// libFuzzer target: the dataset reader, format automatic (see fuzz_reader.hpp for what is checked).
#include "fuzz_reader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return chord::fuzz::read_one(data, size, chord::data::Format::automatic, "input.txt");
}
