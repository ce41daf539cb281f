/* lwIP platform definitions for slipway (Linux, gcc/clang). */
#ifndef SLIPWAY_LWIP_ARCH_CC_H
#define SLIPWAY_LWIP_ARCH_CC_H
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <sys/time.h>
#include <errno.h>

#define LWIP_NO_STDINT_H 0
#define LWIP_NO_INTTYPES_H 0
#define LWIP_ERRNO_STDINCLUDE 1
#define LWIP_TIMEVAL_PRIVATE 0
#define BYTE_ORDER LITTLE_ENDIAN

#ifdef __cplusplus
extern "C" {
#endif
uint32_t slipway_lwip_rand(void);
void slipway_lwip_assert(const char *msg, const char *file, int line);
#ifdef __cplusplus
}
#endif

#define LWIP_PLATFORM_DIAG(x) do { printf x; } while (0)
#define LWIP_PLATFORM_ASSERT(x) slipway_lwip_assert((x), __FILE__, __LINE__)

#define PACK_STRUCT_FIELD(x) x
#define PACK_STRUCT_STRUCT __attribute__((packed))
#define PACK_STRUCT_BEGIN
#define PACK_STRUCT_END
#endif
