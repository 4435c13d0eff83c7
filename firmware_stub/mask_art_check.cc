// Runs PrintMaskArt() on a mask read from stdin, so a test can compare it with the model's
// outputs. Input: the threshold, then 52x52 die values (0/1/2), then 52x52 int8 mask outputs.

#include <cstdio>

#include "mask_art.h"

int main() {
  constexpr int kDies = 52 * 52;
  int threshold;
  if (std::scanf("%d", &threshold) != 1) return 1;
  uint8_t die_map[kDies];
  int8_t mask[kDies];
  int value;
  for (int i = 0; i < 2 * kDies; ++i) {
    if (std::scanf("%d", &value) != 1) return 1;
    if (i < kDies) {
      die_map[i] = static_cast<uint8_t>(value);
    } else {
      mask[i - kDies] = static_cast<int8_t>(value);
    }
  }
  PrintMaskArt(mask, static_cast<int8_t>(threshold), die_map, 52, 52);
  return 0;
}
