/* A stand-in for Windows' bcryptprimitives.dll, for running tests under Wine 8.
 *
 * Rust's std (1.78+) gets its random seeds from ProcessPrng in bcryptprimitives.dll.
 * Wine gained that function in Wine 9; Debian 12's Wine 8 lacks it, so every Rust
 * program dies at start-up there. This DLL provides ProcessPrng on top of
 * RtlGenRandom (SystemFunction036 in advapi32), which Wine 8 has. `cargo xtask cross`
 * builds it with mingw and copies it into its own Wine prefix only; it is never
 * shipped. Newer Wine does not need it.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
