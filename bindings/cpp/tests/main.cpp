// The doctest runner of the C++ suite; the tests live in one file per class.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "doctest/doctest.h"
