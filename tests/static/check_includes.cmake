# cmake -DINCLUDE_ROOT=<dir> -DOPTIONAL_HEADERS=<regex> -P check_includes.cmake
#
# The core (every header under INCLUDE_ROOT/edgescale except the optional ones matched by
# OPTIONAL_HEADERS) needs Eigen and the standard library alone (DESIGN §1). Fails, listing each
# offending line, when a core header includes anything else: a third-party header, a POSIX or C
# header, or one of edgescale's optional headers. Allowed beyond those:
#  - compiler-provided SIMD intrinsics headers (every compiler has them; the per-ISA kernels need
#    them);
#  - an operating system's header (POSIX, Windows) included inside an #if block: the OS is no
#    dependency, but the code must build where that header is absent
#    (`#if defined(__unix__)` ... `#include <unistd.h>` ... `#endif`).
# A third-party library's header is never allowed: that belongs in an optional header.
#
# Dependencies between areas point one way (DESIGN §1): data and nn build on core, prune, quant and
# fed on nn; core knows no other area, nn knows no data. The table below says which areas each
# area's headers (and its umbrella <area>.hpp) may include; an include against it fails the check.
if(NOT INCLUDE_ROOT OR NOT OPTIONAL_HEADERS)
  message(FATAL_ERROR "usage: cmake -DINCLUDE_ROOT=<dir> -DOPTIONAL_HEADERS=<regex> -P check_includes.cmake")
endif()
cmake_minimum_required(VERSION 3.20)

set(std_headers
  # C++20 library
  algorithm any array atomic barrier bit bitset charconv chrono codecvt compare complex concepts
  condition_variable coroutine deque exception execution filesystem format forward_list fstream
  functional future initializer_list iomanip ios iosfwd iostream istream iterator latch limits list
  locale map memory memory_resource mutex new numbers numeric optional ostream queue random ranges
  ratio regex scoped_allocator semaphore set shared_mutex source_location span sstream stack
  stdexcept stop_token streambuf string string_view strstream syncstream system_error thread tuple
  type_traits typeindex typeinfo unordered_map unordered_set utility valarray variant vector version
  # C++23, for code guarded by feature-test macros
  expected flat_map flat_set generator mdspan print spanstream stacktrace stdfloat
  # C library, C++ spelling
  cassert cctype cerrno cfenv cfloat cinttypes climits clocale cmath csetjmp csignal cstdarg cstddef
  cstdint cstdio cstdlib cstring ctime cuchar cwchar cwctype)
set(intrinsics_headers immintrin.h x86intrin.h arm_neon.h)
# Which areas an area may include (itself always).
set(allowed_core "")
set(allowed_data core)
set(allowed_nn core)
set(allowed_prune core nn)
set(allowed_quant core nn)
set(allowed_fed core data nn)  # clients hold datasets (data::Dataset, subsets)
set(allowed_mpi core data nn fed)
set(allowed_interop core)
# Operating-system headers: allowed only inside an #if block.
set(os_header_regex "^(unistd|fcntl|io|windows|dlfcn|pthread|sched|termios|poll|time)\\.h$|^(sys|arpa|netinet)/")

file(GLOB_RECURSE headers RELATIVE "${INCLUDE_ROOT}" "${INCLUDE_ROOT}/edgescale/*.hpp")
list(SORT headers)
set(checked 0)
set(violations "")
foreach(header IN LISTS headers)
  # The area of a header: edgescale/<area>/... or the umbrella edgescale/<area>.hpp; the umbrella
  # edgescale.hpp may include every area.
  if(header MATCHES "^edgescale/([a-z_]+)/")
    set(area "${CMAKE_MATCH_1}")
  elseif(header MATCHES "^edgescale/([a-z_]+)\\.hpp$" AND NOT header STREQUAL "edgescale/edgescale.hpp")
    set(area "${CMAKE_MATCH_1}")
  else()
    set(area "")
  endif()
  if(area AND NOT DEFINED allowed_${area})
    list(APPEND violations "${header}: area '${area}' is not in the dependency table of check_includes.cmake (add it with the areas it may include)")
  endif()
  set(area_ok "")
  foreach(dep IN ITEMS ${area} ${allowed_${area}})
    list(APPEND area_ok "^edgescale/${dep}(/|\\.hpp$)")
  endforeach()
  list(JOIN area_ok "|" area_regex)
  if(header MATCHES "${OPTIONAL_HEADERS}")
    continue()
  endif()
  math(EXPR checked "${checked} + 1")
  # Preprocessor lines in order, to know whether an include sits inside an #if block.
  file(STRINGS "${INCLUDE_ROOT}/${header}" lines REGEX "^[ \t]*#[ \t]*(if|ifdef|ifndef|endif|include)")
  # Headers use #pragma once; one without it is taken to have an #ifndef include guard.
  file(STRINGS "${INCLUDE_ROOT}/${header}" pragma_once REGEX "^[ \t]*#[ \t]*pragma[ \t]+once")
  if(pragma_once)
    set(top_level 0)
  else()
    set(top_level 1)
  endif()
  set(depth ${top_level})
  foreach(line IN LISTS lines)
    if(line MATCHES "^[ \t]*#[ \t]*if")
      math(EXPR depth "${depth} + 1")
      continue()
    elseif(line MATCHES "^[ \t]*#[ \t]*endif")
      math(EXPR depth "${depth} - 1")
      continue()
    endif()
    if(line MATCHES "^[ \t]*#[ \t]*include[ \t]*<([^>]+)>")
      set(name "${CMAKE_MATCH_1}")
    elseif(line MATCHES "^[ \t]*#[ \t]*include[ \t]*\"([^\"]+)\"")
      # A quoted include names a file relative to the header: check it as edgescale/<path>.
      get_filename_component(dir "${INCLUDE_ROOT}/${header}" DIRECTORY)
      get_filename_component(target "${dir}/${CMAKE_MATCH_1}" ABSOLUTE)
      file(RELATIVE_PATH name "${INCLUDE_ROOT}" "${target}")
    else()
      list(APPEND violations "${header}: cannot parse '${line}'")
      continue()
    endif()
    if(name IN_LIST std_headers OR name IN_LIST intrinsics_headers OR name MATCHES "^Eigen/")
      continue()
    endif()
    if(depth GREATER top_level AND name MATCHES "${os_header_regex}")
      continue()
    endif()
    if(name MATCHES "^edgescale/")
      if(name MATCHES "${OPTIONAL_HEADERS}")
        list(APPEND violations "${header}: includes the optional header <${name}>")
      elseif(area AND NOT name MATCHES "${area_regex}")
        list(APPEND violations "${header}: includes <${name}>, but area '${area}' may include only: ${area} ${allowed_${area}} (dependencies point one way, DESIGN §1)")
      endif()
      continue()
    endif()
    list(APPEND violations "${header}: includes <${name}>, which is neither the standard library, Eigen nor edgescale (move it to an optional header, or for an OS header, into an #if block that builds without it)")
  endforeach()
endforeach()

if(checked EQUAL 0)
  message(FATAL_ERROR "no core headers found under ${INCLUDE_ROOT}/edgescale")
endif()
if(violations)
  list(JOIN violations "\n  " text)
  message(FATAL_ERROR "the core must need Eigen and the standard library alone, and areas depend one way (DESIGN §1):\n  ${text}")
endif()
message(STATUS "${checked} core headers include only the standard library, Eigen and edgescale, and areas include only the areas below them")
