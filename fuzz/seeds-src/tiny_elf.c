/* Two functions and an entry point, linked without libc: a small ELF with a
   .symtab for the elf_symbols fuzz target's seed corpus. */
int helper(int x) { return x * 31 + 7; }
int other(int x) { return helper(x) ^ 0x55; }
void _start(void) { for (;;) other(1); }
