// Prints ResizeMap() (resize_map.h) of maps read from stdin, one per line as
// "ROWS COLS METHOD DIES" (METHOD 0 nearest, 1 max; DIES: ROWS x COLS digits 0/1/2), each as
// one line of 52x52 digits, so a test can compare it with kd_keras.data.resize.

#include <cstdio>

#include "resize_map.h"

int main() {
  constexpr int kSize = 52;
  static uint8_t die_map[4096 * 4096];
  uint8_t resized[kSize * kSize];
  int rows, cols, method;
  while (std::scanf("%d %d %d ", &rows, &cols, &method) == 3) {
    if (rows < 1 || cols < 1 || rows > 4096 || cols > 4096 || method < 0 || method > 1) return 1;
    for (int i = 0; i < rows * cols; ++i) {
      const int c = std::getchar();
      if (c < '0' || c > '2') return 1;
      die_map[i] = static_cast<uint8_t>(c - '0');
    }
    ResizeMap(die_map, rows, cols, kSize, static_cast<ResizeMethod>(method), resized);
    for (int i = 0; i < kSize * kSize; ++i) std::putchar('0' + resized[i]);
    std::putchar('\n');
  }
  return 0;
}
