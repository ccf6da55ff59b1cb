// InventoryService end to end in-process (being written).
#include "gtest/gtest.h"
