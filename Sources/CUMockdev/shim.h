#ifndef SONO_CUMOCKDEV_SHIM_H
#define SONO_CUMOCKDEV_SHIM_H
// Test-bench only: umockdev emulates sysfs and /dev nodes so the real serial and USB
// drivers can be exercised without hardware. Never linked into sonod.
#include <stddef.h>
#include <stdint.h>
#include <umockdev.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <linux/usbdevice_fs.h>

// glibc declares ptsname only under _XOPEN_SOURCE, which Swift's Glibc module does not set.
extern char *ptsname(int fd);

// usbfs request numbers for the emulated USB probe's ioctl handler. They are built with the
// _IOR/_IOWR macros, which Swift does not import; these constants carry their values.
static const unsigned long SONO_USBDEVFS_SUBMITURB = USBDEVFS_SUBMITURB;
static const unsigned long SONO_USBDEVFS_DISCARDURB = USBDEVFS_DISCARDURB;
static const unsigned long SONO_USBDEVFS_REAPURB = USBDEVFS_REAPURB;
static const unsigned long SONO_USBDEVFS_REAPURBNDELAY = USBDEVFS_REAPURBNDELAY;
static const unsigned long SONO_USBDEVFS_GET_CAPABILITIES = USBDEVFS_GET_CAPABILITIES;
static const unsigned long SONO_USBDEVFS_CLAIMINTERFACE = USBDEVFS_CLAIMINTERFACE;
static const unsigned long SONO_USBDEVFS_RELEASEINTERFACE = USBDEVFS_RELEASEINTERFACE;
static const unsigned long SONO_USBDEVFS_SETINTERFACE = USBDEVFS_SETINTERFACE;
static const unsigned long SONO_USBDEVFS_SETCONFIGURATION = USBDEVFS_SETCONFIGURATION;
static const unsigned long SONO_USBDEVFS_CLEAR_HALT = USBDEVFS_CLEAR_HALT;
static const unsigned long SONO_USBDEVFS_RESETEP = USBDEVFS_RESETEP;
static const unsigned long SONO_USBDEVFS_RESET = USBDEVFS_RESET;
static const unsigned long SONO_USBDEVFS_GETDRIVER = USBDEVFS_GETDRIVER;
static const unsigned long SONO_USBDEVFS_DISCONNECT_CLAIM = USBDEVFS_DISCONNECT_CLAIM;

// URB types (struct usbdevfs_urb.type, and the usbmon record's transfer_type).
static const uint8_t SONO_USBDEVFS_URB_TYPE_CONTROL = USBDEVFS_URB_TYPE_CONTROL;
static const uint8_t SONO_USBDEVFS_URB_TYPE_BULK = USBDEVFS_URB_TYPE_BULK;

// What the emulated probe reports to USBDEVFS_GET_CAPABILITIES: with BULK_SCATTER_GATHER
// libusb submits each bulk transfer as one URB of any length (as on an xHCI controller);
// never MMAP (the emulated node cannot map usbfs memory). The same set umockdev's own
// usbmon replayer reports.
static const uint32_t SONO_USBDEVFS_PROBE_CAPABILITIES =
    USBDEVFS_CAP_ZERO_PACKET | USBDEVFS_CAP_BULK_CONTINUATION | USBDEVFS_CAP_NO_PACKET_SIZE_LIM |
    USBDEVFS_CAP_BULK_SCATTER_GATHER | USBDEVFS_CAP_REAP_AFTER_DISCONNECT;

// struct usbdevfs_urb: its size and the fields the handler reads and writes, by offset (the
// handler works on umockdev's byte copy of the client's URB).
static const size_t SONO_USBDEVFS_URB_SIZE = sizeof(struct usbdevfs_urb);
static const size_t SONO_USBDEVFS_URB_TYPE_OFFSET = offsetof(struct usbdevfs_urb, type);
static const size_t SONO_USBDEVFS_URB_ENDPOINT_OFFSET = offsetof(struct usbdevfs_urb, endpoint);
static const size_t SONO_USBDEVFS_URB_STATUS_OFFSET = offsetof(struct usbdevfs_urb, status);
static const size_t SONO_USBDEVFS_URB_BUFFER_OFFSET = offsetof(struct usbdevfs_urb, buffer);
static const size_t SONO_USBDEVFS_URB_BUFFER_LENGTH_OFFSET = offsetof(struct usbdevfs_urb, buffer_length);
static const size_t SONO_USBDEVFS_URB_ACTUAL_LENGTH_OFFSET = offsetof(struct usbdevfs_urb, actual_length);
#endif
