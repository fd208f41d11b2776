/* A tiny PE executable for pe.rs's tests: three functions, no C runtime. */
static int helper(int x) { return x * 31 + 7; }
int crash_here(volatile int *p) { *p = helper(*p); return *p; }
void start(void) { volatile int x = 1; crash_here(&x); for (;;) {} }
