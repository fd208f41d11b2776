__attribute__((noinline)) int helper(int x) { return x * 3 + 1; }
__attribute__((noinline)) int crash_here(int *p) { return *p + helper(*p); }
int start(void) { return crash_here(0); }
