/* A mirrored process's layout while the mirror changes it. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mirror-layout.h"

void mirror_layout_done(struct mirror_layout *l) {
        if (!l)
                return;
        free(l->slots);
        *l = (struct mirror_layout) {};
}

size_t mirror_slots_bound(const struct mirror_slot *s, size_t n, uint64_t address) {
        size_t lo = 0, hi = n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (s[mid].end <= address)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

/* The slots overlapping [start, end): [*ret_i, *ret_j). */
static void overlapping(const struct mirror_layout *l, uint64_t start, uint64_t end, size_t *ret_i, size_t *ret_j) {
        size_t i = mirror_slots_bound(l->slots, l->n, start), j = i;

        while (j < l->n && l->slots[j].start < end)
                j++;
        *ret_i = i;
        *ret_j = j;
}

static int reserve(struct mirror_layout *l, size_t more) {
        size_t k = l->allocated ? l->allocated : 16;
        struct mirror_slot *s;

        if (l->allocated - l->n >= more)
                return 0;
        while (k - l->n < more) {
                if (k > SIZE_MAX / 2 / sizeof(*s))
                        return -ENOMEM;
                k *= 2;
        }
        s = reallocarray(l->slots, k, sizeof(*s));
        if (!s)
                return -ENOMEM;
        l->slots = s;
        l->allocated = k;
        return 0;
}

/* Replaces slots [i, j) with the keep slots of with. Room for them is there. */
static void splice(struct mirror_layout *l, size_t i, size_t j, const struct mirror_slot *with, size_t keep) {
        /* (No pointer given to memmove/memcpy for nothing: they may be NULL then.) */
        if (l->n > j && i + keep != j)
                memmove(l->slots + i + keep, l->slots + j, (l->n - j) * sizeof(*l->slots));
        if (keep > 0)
                memcpy(l->slots + i, with, keep * sizeof(*with));
        l->n = l->n - (j - i) + keep;
}

bool mirror_layout_remove(struct mirror_layout *l, uint64_t start, uint64_t end) {
        size_t i, j;

        overlapping(l, start, end, &i, &j);
        splice(l, i, j, NULL, 0);
        return j > i;
}

int mirror_layout_clear_range(struct mirror_layout *l, uint64_t start, uint64_t end) {
        struct mirror_slot parts[2];
        size_t i, j, keep = 0;
        int r;

        if (end <= start)
                return 0;
        overlapping(l, start, end, &i, &j);
        if (j == i)
                return 0;
        if (l->slots[i].start < start) {
                parts[keep] = l->slots[i];
                parts[keep++].end = start;
        }
        if (l->slots[j - 1].end > end) {
                parts[keep] = l->slots[j - 1];
                parts[keep].offset += end - parts[keep].start;
                parts[keep++].start = end;
        }
        /* Reserved first: nothing is changed when it fails (one slot split in two needs one). */
        r = reserve(l, keep);
        if (r < 0)
                return r;
        splice(l, i, j, parts, keep);
        return 1;
}

int mirror_layout_put(struct mirror_layout *l, const struct mirror_slot *x) {
        size_t i, j;
        int r;

        if (x->end <= x->start)
                return 0;
        r = reserve(l, 1);
        if (r < 0)
                return r;
        overlapping(l, x->start, x->end, &i, &j);
        splice(l, i, j, x, 1);
        return 1;
}
