#ifndef MASK_ART_H_
#define MASK_ART_H_

// Prints a model's defect mask as text art, one line per row of dies: '#' a die in the mask
// (its int8 output above `threshold`), '.' another die on the wafer, ' ' off the wafer.

#include <cstdint>
#include <cstdio>

inline void PrintMaskArt(const int8_t* mask, int8_t threshold, const uint8_t* die_map, int height, int width) {
  for (int row = 0; row < height; ++row) {
    for (int column = 0; column < width; ++column) {
      const int die = row * width + column;
      std::putchar(mask[die] > threshold ? '#' : die_map[die] == 0 ? ' ' : '.');
    }
    std::putchar('\n');
  }
}

#endif  // MASK_ART_H_
