// correct_stored()'s typed cases (stored_cases.hpp) for the 8- and 16-bit types; test_stored.cpp
// has the others.
#include "stored_cases.hpp"

namespace {
using NarrowTypes = ::testing::Types<std::int8_t, std::uint8_t, std::int16_t, std::uint16_t>;
}  // namespace
INSTANTIATE_TYPED_TEST_SUITE_P(Narrow, Stored, NarrowTypes, TypeNames);
