#ifndef SONO_PROBE_CAPTURE_H
#define SONO_PROBE_CAPTURE_H

#include <stdint.h>

// Writes `directory`/probe.umockdev and `directory`/probe.pcap (see capture.c). 0 on success,
// else -1 with `*error` set (free with g_free).
int probe_write_capture(const char *directory, uint32_t transfer_length, char **error);

#endif
