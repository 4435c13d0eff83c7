// Prints the 8 views of a die map read from stdin (52x52 die values 0/1/2), one line of 52x52
// digits per view, so a test can compare QuantizeView() with kd_keras.data.dihedral_views.

#include <cstdio>

#include "dihedral_views.h"

int main() {
  constexpr int kSize = 52;
  constexpr int8_t kIdentity[3] = {0, 1, 2};  // print the die values themselves
  uint8_t die_map[kSize * kSize];
  int value;
  for (int i = 0; i < kSize * kSize; ++i) {
    if (std::scanf("%d", &value) != 1 || value < 0 || value > 2) return 1;
    die_map[i] = static_cast<uint8_t>(value);
  }
  int8_t view_dies[kSize * kSize];
  for (int view = 0; view < 8; ++view) {
    QuantizeView(die_map, kSize, view, kIdentity, view_dies);
    for (int i = 0; i < kSize * kSize; ++i) std::putchar('0' + view_dies[i]);
    std::putchar('\n');
  }
  return 0;
}
