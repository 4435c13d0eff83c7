#ifndef RESIZE_MAP_H_
#define RESIZE_MAP_H_

// Bringing a die map of any grid to the model's size x size input, as the toolkit's
// kd_keras.data.resize does (tests/test_firmware.py compares the two): output row i covers
// source rows floor(i * rows / size) up to (not including) floor((i + 1) * rows / size), at
// least the first of them; columns alike.
//   kResizeNearest: the first die of the cell.
//   kResizeMax: the largest die value in the cell (failed if any die failed, else good if any
//     die is on the wafer), so a shrunk map loses no failure. Enlarging, it equals nearest.
// A model's settings header names its method (WAFER_RESIZE_METHOD), from its model card.

#include <cstdint>

enum ResizeMethod { kResizeNearest, kResizeMax };

inline int SourceStart(int index, int source, int size) {
  return static_cast<int>(static_cast<int64_t>(index) * source / size);
}

// The end of the cell that starts at source index `start`: the next cell's start (the
// source's end after the last cell), or start + 1 when that is no further (enlarging), or
// always start + 1 for nearest.
inline int CellEnd(int index, int start, int source, int size, ResizeMethod method) {
  const int next = SourceStart(index + 1, source, size);
  return method == kResizeMax && next > start + 1 ? next : start + 1;
}

// Writes the size x size map of the rows x cols `die_map` into `resized` (row-major).
inline void ResizeMap(const uint8_t* die_map, int rows, int cols, int size, ResizeMethod method,
                      uint8_t* resized) {
  for (int i = 0; i < size; ++i) {
    const int row_start = SourceStart(i, rows, size);
    const int row_end = CellEnd(i, row_start, rows, size, method);
    for (int j = 0; j < size; ++j) {
      const int col_start = SourceStart(j, cols, size);
      const int col_end = CellEnd(j, col_start, cols, size, method);
      uint8_t value = 0;
      for (int r = row_start; r < row_end; ++r) {
        for (int c = col_start; c < col_end; ++c) {
          if (die_map[r * cols + c] > value) value = die_map[r * cols + c];
        }
      }
      resized[i * size + j] = value;
    }
  }
}

#endif  // RESIZE_MAP_H_
