// Runs NearestPattern() on int8 output vectors read from stdin, so a test can compare it with
// the toolkit's Python decoding. Input: "scale zero_point", then rows of 8 int8 outputs.
// Output: one pattern index per row.

#include <cstdio>

#include "patterns.h"

int main() {
  int zero_point;
  if (std::scanf("%d", &zero_point) != 1) return 1;
  int8_t outputs[8];
  int value;
  for (int read = 0; std::scanf("%d", &value) == 1;) {
    outputs[read++] = static_cast<int8_t>(value);
    if (read == 8) {
      std::printf("%d\n", NearestPattern(outputs, zero_point));
      read = 0;
    }
  }
  return 0;
}
