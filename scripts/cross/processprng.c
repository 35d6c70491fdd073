/*
 * bcryptprimitives.dll stand-in for Wine prefixes that lack it (Wine 8 in Debian 12).
 *
 * Every Rust standard library built for Windows imports ProcessPrng from
 * bcryptprimitives.dll to seed its hash maps and to fill random buffers. Wine 8 has no such
 * DLL, so a Rust .exe fails to load (exit status 53, no output). This DLL exports that one
 * function and fills the buffer from BCryptGenRandom with the system-preferred RNG, which
 * Wine does implement.
 *
 * Only for running test binaries under Wine: it is never shipped or used on real Windows.
 * Built by scripts/cross/setup.sh with x86_64-w64-mingw32-gcc.
 */
#include <windows.h>
#include <bcrypt.h>

/* BCryptGenRandom takes a ULONG length; feed it at most 1 GiB at a time. */
#define CHUNK_MAX 0x40000000u

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > CHUNK_MAX ? CHUNK_MAX : (ULONG)len;
        NTSTATUS status = BCryptGenRandom(NULL, data, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG);
        if (!BCRYPT_SUCCESS(status)) {
            /* The real function never fails; a caller cannot do anything useful with FALSE
             * either, so make the failure loud instead of returning predictable bytes. */
            RaiseException(0xE0000001u, EXCEPTION_NONCONTINUABLE, 0, NULL);
        }
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, LPVOID reserved)
{
    (void)instance;
    (void)reason;
    (void)reserved;
    return TRUE;
}
