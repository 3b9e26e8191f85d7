// examples/chord/info.cpp: `chord info`: this CPU, what it supports, and which kernels `chord` runs on it.
//
// The CPU's name comes from cpuinfo when the program was built with it (native builds with Debian's
// libcpuinfo-dev), else from /proc/cpuinfo ("model name"; aarch64 kernels print none: "unknown"). The
// features are those the dispatcher itself tests (ops/dispatch.hpp detect_cpu), so the table below is
// exactly the dispatcher's view: every kernel table compiled into this program, whether this CPU runs it,
// and the one chosen (best_kernels(), or the one CHORD_ISA / CHORD_BACKEND force; a forced choice that
// cannot run is the same error every other command would give, exit code 1).
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#ifdef CHORD_HAVE_CPUINFO
#include <cpuinfo.h>
#endif

#include "command.hpp"

#include "chord/ops/dispatch.hpp"

namespace chord::cli {

namespace {

struct CpuName {
  std::string name = "unknown", source = "unknown";
};

// "model name" of /proc/cpuinfo ("" when the kernel prints none, as on aarch64).
std::string proc_model_name() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) {
      const std::size_t start = line.find_first_not_of(" \t", line.find(':') + 1);
      if (start != std::string::npos) return line.substr(start);
    }
  return "";
}

CpuName cpu_name() {
#ifdef CHORD_HAVE_CPUINFO
  if (cpuinfo_initialize()) {
    const cpuinfo_package* package = cpuinfo_get_package(0);
    if (package != nullptr && package->name[0] != '\0') return {package->name, "cpuinfo"};
  }
#endif
  const std::string model = proc_model_name();  // cpuinfo knows no marketing name for some (virtualized) CPUs
  if (!model.empty()) return {model, "/proc/cpuinfo"};
  return {};
}

std::string feature_list(const CpuFeatures& c) {
  std::string out;
  const auto add = [&](bool on, const char* name) {
    if (on) out += (out.empty() ? "" : " ") + std::string(name);
  };
  add(c.avx2, "avx2"), add(c.fma, "fma"), add(c.avx512f, "avx512f"), add(c.avx512bw, "avx512bw");
  add(c.avx512vl, "avx512vl"), add(c.avx512dq, "avx512dq"), add(c.avx512vnni, "avx512vnni");
  add(c.neon, "neon"), add(c.dotprod, "dotprod"), add(c.sve, "sve");
  return out.empty() ? "(none the kernels use)" : out;
}

// How many of a table's kernels are present (ops/*.hpp refuse to run an op a table lacks).
int present_ops(const KernelTable& t, int& total) {
  int n = 0;
  total = 0;
  const auto count = [&](const void* f) { ++total, n += f != nullptr; };
  for (auto f : t.gemm_s8) count(reinterpret_cast<const void*>(f));
  for (auto f : t.gemm_f32) count(reinterpret_cast<const void*>(f));
  for (const void* f : {reinterpret_cast<const void*>(t.quantize_rows), reinterpret_cast<const void*>(t.layernorm),
                        reinterpret_cast<const void*>(t.softmax), reinterpret_cast<const void*>(t.relu),
                        reinterpret_cast<const void*>(t.gelu), reinterpret_cast<const void*>(t.add),
                        reinterpret_cast<const void*>(t.attention), reinterpret_cast<const void*>(t.attention_row)})
    count(f);
  return n;
}

std::string compiler() {
#if defined(__clang__)
  return "clang " __clang_version__;
#elif defined(__GNUC__)
  return "gcc " __VERSION__;
#else
  return "unknown compiler";
#endif
}

const char* architecture() {
#if defined(__x86_64__)
  return "x86-64";
#elif defined(__aarch64__)
  return "aarch64";
#else
  return "other";
#endif
}

std::string setting(const char* name) {
  const std::string value = dispatch_detail::environment(name);
  return value.empty() ? "(unset)" : value;
}

int run_info() {
  const CpuName cpu = cpu_name();
  const CpuFeatures features = detect_cpu();
  std::printf("cpu:        %s (%s)\n", cpu.name.c_str(), cpu.source.c_str());
  const std::string model = proc_model_name();
  if (cpu.source != "/proc/cpuinfo" && !model.empty() && model != cpu.name)
    std::printf("model:      %s (/proc/cpuinfo)\n", model.c_str());
  std::printf("threads:    %u hardware threads\n", std::thread::hardware_concurrency());
  std::printf("features:   %s\n", feature_list(features).c_str());
  std::printf("build:      %s, %s\n", compiler().c_str(), architecture());
  std::printf("overrides:  CHORD_ISA=%s  CHORD_BACKEND=%s\n", setting("CHORD_ISA").c_str(),
              setting("CHORD_BACKEND").c_str());

  // Compiled tables: the usable ones in the dispatcher's order of preference, then the others.
  const std::vector<KernelTable> usable = usable_kernel_tables();
  std::vector<KernelTable> rows = usable;
  for (const KernelTable& t : compiled_kernel_tables())
    if (!cpu_supports(t.isa, features)) rows.push_back(t);
  std::printf("kernel tables compiled into this program (%zu; usable = this CPU runs it, best first):\n", rows.size());
  std::printf("  %-13s %-8s %-7s %s\n", "isa", "backend", "usable", "kernels");
  for (const KernelTable& t : rows) {
    int total = 0;
    const int present = present_ops(t, total);
    std::printf("  %-13s %-8s %-7s %d/%d\n", std::string(isa_name(t.isa)).c_str(), t.backend,
                cpu_supports(t.isa, features) ? "yes" : "no", present, total);
  }
  std::fflush(stdout);
  const KernelTable& chosen = best_kernels();  // throws (exit 1) when an override cannot be honoured
  const bool forced = !dispatch_detail::environment("CHORD_ISA").empty() ||
                      !dispatch_detail::environment("CHORD_BACKEND").empty();
  std::printf("chosen:     %s/%s%s\n", std::string(isa_name(chosen.isa)).c_str(), chosen.backend,
              forced ? " (forced by the environment)" : " (the best usable)");
  return 0;
}

}  // namespace

Action setup_info(CLI::App& app) {
  CLI::App* sub = app.add_subcommand("info", "This CPU, its features, and the kernel tables chord runs on it");
  sub->footer(
      "Examples:\n"
      "  chord info\n"
      "  CHORD_ISA=avx2 CHORD_BACKEND=highway chord info   # what a forced choice would run\n"
      "Every compiled table is listed with whether this CPU can run it and how many of its kernels it has\n"
      "(an op a table lacks is an error when used). 'chosen' is the table every other command uses.\n");
  return {sub, [] { return run_info(); }};
}

}  // namespace chord::cli
