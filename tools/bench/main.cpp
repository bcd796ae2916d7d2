// tiercache-bench: see tools/bench/options.cpp (--help) and docs/bench.md.
#include "tools/bench/commands.h"

int main(int argc, char** argv) { return tiercache::bench::BenchMain(argc, argv); }
