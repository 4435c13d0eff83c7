// Measures the RAM a run used beyond its static data: the peak stack and the heap.
//
// Before main() runs, a constructor paints the 64 KB below its stack frame with a pattern; when
// the program exits, a handler finds the lowest word the run overwrote and prints
//   stack used: N bytes; heap used: M bytes
// (the heap: newlib's malloc, which printf uses for its buffers). A real part's build can leave
// this file out.

#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define PAINTED_BYTES (64u * 1024u)
#define PAINT 0xC0FFEE42u

static uint32_t* painted_top;

static void ReportRamUse(void) {
  const uint32_t* word = painted_top - PAINTED_BYTES / 4;
  while (word < painted_top && *word == PAINT) ++word;
  printf("stack used: %u bytes; heap used: %u bytes\n", (unsigned)((painted_top - word) * 4),
         (unsigned)mallinfo().arena);
}

__attribute__((constructor)) static void PaintStack(void) {
  uint32_t here;
  painted_top = &here - 16;  // below this function's own frame
  for (uint32_t* word = painted_top - PAINTED_BYTES / 4; word < painted_top; ++word) *word = PAINT;
  atexit(ReportRamUse);
}
