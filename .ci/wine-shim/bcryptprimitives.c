/*
 * Test-only shim for running Rust Windows binaries under Wine 8.0 (Debian 12).
 *
 * Rust std (1.78+) imports ProcessPrng from bcryptprimitives.dll. Wine 8.0 ships no
 * bcryptprimitives.dll at all, so the loader fails with "c0000135" before main().
 * Placed next to the .exe this DLL provides ProcessPrng on top of RtlGenRandom
 * (advapi32!SystemFunction036), which Wine implements. NOT for production use.
 */
#include <windows.h>

/* advapi32!SystemFunction036 a.k.a. RtlGenRandom (declared here to avoid ntsecapi.h quirks). */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    /* RtlGenRandom takes a ULONG length; feed it in chunks so any SIZE_T works. */
    while (len > 0) {
        ULONG chunk = len > 0x40000000u ? 0x40000000u : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE; /* the real ProcessPrng never fails; std would panic on FALSE */
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE inst, DWORD reason, LPVOID reserved)
{
    (void)inst; (void)reason; (void)reserved;
    return TRUE;
}
