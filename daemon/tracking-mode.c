/* Tracking=auto|bpf|none: the names of the modes, apart from tracking.c so the settings link without the tracker. */

#include <errno.h>
#include <string.h>

#include "tracking.h"

static const char *const mode_names[_TRACKING_MODE_MAX] = {
        [TRACKING_AUTO] = "auto",
        [TRACKING_BPF] = "bpf",
        [TRACKING_NONE] = "none",
};

const char *tracking_mode_to_string(enum tracking_mode m) {
        return (unsigned) m < _TRACKING_MODE_MAX ? mode_names[m] : NULL;
}

int tracking_mode_from_string(const char *s, enum tracking_mode *ret) {
        if (!s || !ret)
                return -EINVAL;
        for (unsigned i = 0; i < _TRACKING_MODE_MAX; i++)
                if (strcmp(s, mode_names[i]) == 0) {
                        *ret = (enum tracking_mode) i;
                        return 0;
                }
        return -EINVAL;
}
