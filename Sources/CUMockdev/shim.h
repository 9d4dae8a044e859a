#ifndef SONO_CUMOCKDEV_SHIM_H
#define SONO_CUMOCKDEV_SHIM_H
// Test-bench only: umockdev emulates sysfs and /dev nodes so the real serial and USB
// drivers can be exercised without hardware. Never linked into sonod.
#include <umockdev.h>
#include <sys/ioctl.h>
#include <termios.h>

// glibc declares ptsname only under _XOPEN_SOURCE, which Swift's Glibc module does not set.
extern char *ptsname(int fd);
#endif
