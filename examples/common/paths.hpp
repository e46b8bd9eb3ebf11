// examples/common/paths.hpp — checks of an example's paths before the work starts: a run that
// trains for an hour must not then fail to save its results, or find its input missing.
//
//     examples::check_output_file(o.out, "--out");   // r.json; creates its directory if needed
//     examples::check_output_dir(o.save, "--save");   // a directory of files; created if needed
//     examples::check_input_dir(o.load, "--load");    // must exist
//
// Missing parent directories are created (as `mkdir -p` would, and as save_parameters does for
// its directory), so `--out runs/exp1/r.json` needs no separate mkdir in a sweep. Then the check
// writes: an existing file is opened for appending (its content is kept), a new file is created
// and removed again, and a directory gets a probe file created and removed; so missing
// permissions and read-only file systems show at once. Each failure throws
// edgescale::error with a message naming the option, the path and the reason. An empty path (the
// option not given) is accepted without a check. Compiled once in common/common.cpp.
#pragma once

#include <filesystem>
#include <string_view>

namespace edgescale::examples {

/// Checks that `file` can be written (creating its directory if needed); see the top of this file.
void check_output_file(const std::filesystem::path& file, std::string_view option);

/// Checks that files can be written into `dir` (creating it and its parents if needed).
void check_output_dir(const std::filesystem::path& dir, std::string_view option);

/// Checks that `dir` exists and is a directory.
void check_input_dir(const std::filesystem::path& dir, std::string_view option);

}  // namespace edgescale::examples
