/* The header's name before libmemctl 0.3: kept so that programs written against it still build. */
#include <libmemctl.h>
