// zlib for the PNG writer (SonoSim/Imaging): compress2, crc32, inflate.
#include <zlib.h>
