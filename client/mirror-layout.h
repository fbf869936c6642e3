/* A mirrored process's layout while the mirror changes it: its executable file mappings sorted by start, none overlapping, edited as the daemon's events say. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mirror_file;                     /* the mirror's record of a file: not looked into here */

/* One mapping of a layout. */
struct mirror_slot {
        uint64_t start, end, offset;
        uint64_t page_size;
        const struct mirror_file *file;
        uint32_t flags;
        char perms[5];
};

struct mirror_layout {
        struct mirror_slot *slots;
        size_t n, allocated;
};

void mirror_layout_done(struct mirror_layout *l);

/* The index of the first slot of s[0..n) whose end lies above address. */
size_t mirror_slots_bound(const struct mirror_slot *s, size_t n, uint64_t address);

/* Removes every mapping overlapping [start, end), whole. Whether one was. */
bool mirror_layout_remove(struct mirror_layout *l, uint64_t start, uint64_t end);

/* Clears [start, end): a mapping reaching out of it keeps its parts outside (the kernel split
 * it), the one after with its offset moved on. 1 when something changed, 0 when not, -ENOMEM
 * (nothing changed). */
int mirror_layout_clear_range(struct mirror_layout *l, uint64_t start, uint64_t end);

/* Puts x in, replacing whatever it overlaps (the kernel's new mapping replaced theirs). 1 when
 * put, 0 for an empty range, -ENOMEM (nothing changed). */
int mirror_layout_put(struct mirror_layout *l, const struct mirror_slot *x);
