#ifndef DIHEDRAL_VIEWS_H_
#define DIHEDRAL_VIEWS_H_

// The 8 rotations/flips of a square die map, in the order of the toolkit's
// kd_keras.data.dihedral_views: view v is the map turned by 90 degrees (counterclockwise, as
// numpy's rot90) v / 2 times, then, when v is odd, mirrored (columns reversed). A model whose
// kNumViews is 8 is run on every view and its outputs summed.

#include <cstdint>

// Writes view `view` (0 to 7) of the size x size `die_map` into `input`, each die as its int8
// value `die_value_int8[die]`. View 0 is the map itself.
inline void QuantizeView(const uint8_t* die_map, int size, int view, const int8_t* die_value_int8,
                         int8_t* input) {
  for (int row = 0; row < size; ++row) {
    for (int col = 0; col < size; ++col) {
      // Follow the die at (row, col) of the view back to the map: undo the mirror, then
      // each quarter turn (a turned map's (r, c) is the map's (c, size - 1 - r)).
      int r = row;
      int c = view % 2 ? size - 1 - col : col;
      for (int turn = 0; turn < view / 2; ++turn) {
        const int turned_row = c;
        c = size - 1 - r;
        r = turned_row;
      }
      input[row * size + col] = die_value_int8[die_map[r * size + c]];
    }
  }
}

#endif  // DIHEDRAL_VIEWS_H_
