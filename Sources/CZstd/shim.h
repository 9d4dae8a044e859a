// zstd for MCAP chunk compression (SonoRecord): ZSTD_compressCCtx, ZSTD_decompressDCtx.
#include <zstd.h>
