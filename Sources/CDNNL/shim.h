// oneDNN's C API (Debian libdnnl-dev, v2.x) and the OpenMP call that sets its thread count.
#include <oneapi/dnnl/dnnl.h>

// libgomp: oneDNN in Debian runs on OpenMP; Sono pins inference to the threads it is given.
void omp_set_num_threads(int num_threads);
int omp_get_max_threads(void);
