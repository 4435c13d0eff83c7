// A free-running timer for counting what an inference costs.
//
// On QEMU's mps2-an386 board: the CMSDK timer 0 (at 0x40000000), a 32-bit down counter at the
// board's 25 MHz. Under `qemu-system-arm -icount shift=0` the emulated clock advances 1 ns per
// instruction, so one tick is 40 instructions (tflite/firmware.py: INSTRUCTIONS_PER_TICK).
// Elsewhere (the host build) there is no timer and the ticks are 0.
// Porting: read the part's own cycle counter (DWT->CYCCNT on a Cortex-M4) instead.

#ifndef BOARD_TIMER_H_
#define BOARD_TIMER_H_

#include <cstdint>

#if defined(__arm__)
struct CmsdkTimer {
  volatile uint32_t control, value, reload;
};
inline CmsdkTimer& Timer0() { return *reinterpret_cast<CmsdkTimer*>(0x40000000u); }

inline void StartTimer() {
  Timer0().reload = 0xFFFFFFFFu;
  Timer0().value = 0xFFFFFFFFu;
  Timer0().control = 1;  // enable, no interrupt
}
inline uint32_t TimerTicks() { return 0xFFFFFFFFu - Timer0().value; }
#else
inline void StartTimer() {}
inline uint32_t TimerTicks() { return 0; }
#endif

#endif  // BOARD_TIMER_H_
