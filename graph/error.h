#pragma once
// fgq::Error is part of the public API; internal code includes it from here.
#include "fgq/error.h"
