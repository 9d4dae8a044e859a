#ifndef SONO_CLIBSERIALPORT_SHIM_H
#define SONO_CLIBSERIALPORT_SHIM_H
#include <libserialport.h>
#endif
