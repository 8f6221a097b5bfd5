#!/usr/bin/env bash
# The one test command (README, .ci/run): sets everything up on a fresh machine,
# then runs the C++ tests (plain and under ASan/UBSan) with ctest and the Python
# tests with pytest. Exits non-zero if any runner fails; every runner's summary prints.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=$(nproc 2>/dev/null || echo 2)

step() { printf '\n=== %s\n' "$*"; }

# System packages: GoogleTest for ctest, dicom3tools (dciodvfy, dcentvfy) for the DICOM checks.
need=()
[ -f /usr/include/gtest/gtest.h ] || need+=(libgtest-dev)
command -v dciodvfy >/dev/null 2>&1 || need+=(dicom3tools)
if [ ${#need[@]} -gt 0 ]; then
  step "apt-get install ${need[*]}"
  sudo_=""; [ "$(id -u)" -eq 0 ] || sudo_=sudo
  $sudo_ apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq "${need[@]}" >/dev/null \
    || { echo "could not install ${need[*]}"; exit 1; }
fi

step "Python environment (.venv) and the package with its test extras"
python3 -m venv .venv || exit 1
py=$root/.venv/bin/python
export PATH=$root/.venv/bin:$PATH
pip_() { "$py" -m pip install -q "$@" >.venv/pip.log 2>&1 || { cat .venv/pip.log; exit 1; }; }
pip_ --upgrade pip
pip_ cmake ninja
pip_ ".[test,codecs]"

status=0
step "C++ tests (Release)"
cmake -S cpp -B build/cpp -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null &&
  cmake --build build/cpp -j "$jobs" >/dev/null &&
  ctest --test-dir build/cpp -j "$jobs" --output-on-failure | tail -n 4 || status=1

step "C++ tests under AddressSanitizer + UBSan"
cmake -S cpp -B build/cpp-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DNOISELAB_SANITIZE=ON >/dev/null &&
  cmake --build build/cpp-asan -j "$jobs" >/dev/null &&
  ctest --test-dir build/cpp-asan -j "$jobs" --output-on-failure | tail -n 4 || status=1

step "Python tests"
"$py" -m pytest -q -p no:cacheprovider tests || status=1

exit $status
