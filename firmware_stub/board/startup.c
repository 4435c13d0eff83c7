// Start-up code for QEMU's mps2-an386 board (Cortex-M4): the vector table and the reset handler.
//
// The reset handler turns on the FPU (the code is built for hard float) and hands over to newlib's
// semihosting start-up, `_start` (rdimon-crt0), which zeroes .bss, runs the C++ constructors,
// calls main() and passes its return value to the host as the emulator's exit status.
// Every other exception stops in a loop of its own, where a debugger shows which one it was.
// Porting: see mps2_an386.ld; a real part also needs its clock set up before _start.

#include <stdint.h>

extern uint32_t __stack;  // mps2_an386.ld: the top of the stack
extern void _start(void);

#define CPACR (*(volatile uint32_t*)0xE000ED88u)

void Reset_Handler(void) {
  CPACR |= 0xFu << 20;  // full access to coprocessors 10 and 11: the FPU
  __asm volatile("dsb\n isb");
  _start();
  for (;;) {
  }
}

static void NMI_Handler(void) { for (;;) {} }
static void HardFault_Handler(void) { for (;;) {} }
static void MemManage_Handler(void) { for (;;) {} }
static void BusFault_Handler(void) { for (;;) {} }
static void UsageFault_Handler(void) { for (;;) {} }
static void Other_Handler(void) { for (;;) {} }

__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))&__stack, Reset_Handler,     NMI_Handler,   HardFault_Handler,
    MemManage_Handler,        BusFault_Handler,  UsageFault_Handler, 0, 0, 0, 0,
    Other_Handler /* SVCall */, Other_Handler /* DebugMonitor */, 0,
    Other_Handler /* PendSV */, Other_Handler /* SysTick */,
};
