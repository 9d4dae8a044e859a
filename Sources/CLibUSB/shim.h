#ifndef SONO_CLIBUSB_SHIM_H
#define SONO_CLIBUSB_SHIM_H
#include <libusb.h>
#endif
