/* What each user may take of the server: accounts, budgets of held bytes, oneway buckets, turns, and the threads' share of unprivileged clients. */

#include <stdlib.h>

#include "server-internal.h"
#include "time-util.h"

/* Oneway calls are answered into the void, so no output bound ever pauses their pipeline:
 * each connection (ONEWAY_BURST_CONN, in server-internal.h) and each user gets a bucket of
 * them (burst, then a rate per second). Calls past it are parsed, counted (oneway_skipped) and
 * not run: nobody waits for them. */
#define ONEWAY_RATE_CONN 1
#define ONEWAY_BURST_USER 4
#define ONEWAY_RATE_USER 1

/* ------------------------------------------------------------------ accounts and budgets */

/* Under lock. The account of owner, made (with no connection) when it has none. */
struct account *account_get(struct server *s, uid_t owner) {
        struct account *a;

        for (a = s->accounts; a; a = a->next)
                if (a->owner == owner)
                        return a;
        a = calloc(1, sizeof(*a));
        if (!a)
                return NULL;
        a->owner = owner;
        a->oneway_tokens = ONEWAY_BURST_USER;
        a->oneway_refill_usec = now_usec();
        a->next = s->accounts;
        s->accounts = a;
        return a;
}

/* Under lock. Frees an account that has no connection left. */
void account_put(struct server *s, struct account *a) {
        if (!a || a->n_conns > 0 || a->running > 0)
                return;
        for (struct account **p = &s->accounts; *p; p = &(*p)->next)
                if (*p == a) {
                        *p = a->next;
                        break;
                }
        free(a);
}

/* Takes one call from a bucket of burst calls refilled at rate a second: whether there was one. */
static bool bucket_take(double *tokens, uint64_t *refill_usec, unsigned burst, unsigned rate) {
        uint64_t now = now_usec();

        if (now > *refill_usec)
                *tokens = MIN((double) burst, *tokens + (double) (now - *refill_usec) * rate / 1e6);
        *refill_usec = now;
        if (*tokens < 1.0)
                return false;
        *tokens -= 1.0;
        return true;
}

/* Called by the connection's owner: whether this oneway call may run (the connection's and
 * its user's buckets both have one). */
bool conn_oneway_allowed(struct conn *c) {
        struct server *s = c->server;
        bool ok;

        if (!bucket_take(&c->oneway_tokens, &c->oneway_refill_usec, ONEWAY_BURST_CONN, ONEWAY_RATE_CONN))
                return false;
        pthread_mutex_lock(&s->lock);
        ok = bucket_take(&c->account->oneway_tokens, &c->account->oneway_refill_usec, ONEWAY_BURST_USER,
                         ONEWAY_RATE_USER);
        pthread_mutex_unlock(&s->lock);
        return ok;
}

/* Under lock. Sets what c is charged with to held bytes. */
void conn_charge_locked(struct conn *c, size_t held) {
        struct server *s = c->server;

        s->held_total = s->held_total - c->held + held;
        if (!c->client.privileged) {
                s->held_unprivileged = s->held_unprivileged - c->held + held;
                c->account->held = c->account->held - c->held + held;
        }
        c->held = held;
        atomic_store(&s->stats.output_held, s->held_total);
}

/* Called by the connection's owner after its output or input buffer changed: charges what
 * it holds now (queued output, buffered request bytes) to the daemon's and its user's
 * budgets. */
void conn_charge(struct conn *c) {
        size_t held = c->out.pending + c->in.allocated + c->watch_held;

        if (held == c->held)
                return;
        pthread_mutex_lock(&c->server->lock);
        conn_charge_locked(c, held);
        pthread_mutex_unlock(&c->server->lock);
}

/* How large a reply c's next call may make: max_output_queue, or less when what the daemon
 * (unprivileged clients: 3/4 of OutputBudget) or this user (OutputBudgetPerUser) holds leaves
 * less room (0 when spent); then *ret_limit names the budget and *ret_value is its size. */
size_t conn_reply_room(struct conn *c, const char **ret_limit, uint64_t *ret_value) {
        struct server *s = c->server;
        const struct limits *l = &s->cfg->limits;
        size_t room = l->max_output_queue, cap, used;

        *ret_limit = NULL;
        *ret_value = 0;
        pthread_mutex_lock(&s->lock);
        cap = c->client.privileged ? l->output_budget : l->output_budget / 4 * 3;
        used = c->client.privileged ? s->held_total : s->held_unprivileged;
        if (cap - MIN(cap, used) < room) {
                room = cap - MIN(cap, used);
                *ret_limit = "output_budget";
                *ret_value = l->output_budget;
        }
        if (!c->client.privileged) {
                cap = l->output_budget_per_uid;
                used = c->account->held;
                if (cap - MIN(cap, used) < room) {
                        room = cap - MIN(cap, used);
                        *ret_limit = "output_budget_per_uid";
                        *ret_value = l->output_budget_per_uid;
                }
        }
        pthread_mutex_unlock(&s->lock);
        return room;
}

/* ------------------------------------------------------------------ turns */

/* Under lock. Hands c (owned by the caller, not armed) to the next thread that looks. */
void ready_push_locked(struct server *s, struct conn *c, uint32_t events) {
        uint64_t one = 1;

        c->resume_events = events;
        c->queue_next = NULL;
        if (s->ready_tail)
                s->ready_tail->queue_next = c;
        else
                s->ready_head = c;
        s->ready_tail = c;
        (void) !write(s->ready_src.fd, &one, sizeof(one));
}

/* Under lock. Puts a user with parked connections at the back of the round. */
static void round_append_locked(struct server *s, struct account *a) {
        a->turn_next = NULL;
        if (s->round_tail)
                s->round_tail->turn_next = a;
        else
                s->round_head = a;
        s->round_tail = a;
        a->in_round = true;
}

/* Under lock. Puts c (owned by the caller, not armed) behind its user's parked connections;
 * it is served when a thread of the unprivileged share comes free and its user's turn comes. */
void park_locked(struct server *s, struct conn *c, uint32_t events) {
        struct account *a = c->account;

        c->resume_events = events;
        c->queue_next = NULL;
        if (a->parked_tail)
                a->parked_tail->queue_next = c;
        else
                a->parked_head = c;
        a->parked_tail = c;
        if (!a->in_round) {
                round_append_locked(s, a);
        }
        s->n_parked++;
        atomic_store(&s->stats.parked, s->n_parked);
}

/* Under lock. The next parked connection that may run: the first of the first user in the
 * round below its share of threads; that user goes to the back of the round. NULL when there
 * is none. */
static struct conn *unpark_locked(struct server *s) {
        struct account *a, *prev = NULL;
        struct conn *c;

        for (a = s->round_head; a && a->running >= s->user_slots; a = a->turn_next)
                prev = a;
        if (!a)
                return NULL;
        c = a->parked_head;
        a->parked_head = c->queue_next;
        if (!a->parked_head)
                a->parked_tail = NULL;
        if (prev)
                prev->turn_next = a->turn_next;
        else
                s->round_head = a->turn_next;
        if (s->round_tail == a)
                s->round_tail = prev;
        a->in_round = false;
        if (a->parked_head)
                round_append_locked(s, a);
        s->n_parked--;
        atomic_store(&s->stats.parked, s->n_parked);
        return c;
}

/* An unprivileged client of account a ended its turn: the threads of the unprivileged share
 * go to the next parked connections that may run (each thread's slot passes on with its
 * connection). */
void slot_release(struct server *s, struct account *a) {
        struct conn *next;

        pthread_mutex_lock(&s->lock);
        a->running--;
        s->unprivileged_running--;
        while (s->unprivileged_running < s->unprivileged_slots && (next = unpark_locked(s))) {
                next->account->running++;
                s->unprivileged_running++;
                ready_push_locked(s, next, next->resume_events);
        }
        account_put(s, a);
        pthread_mutex_unlock(&s->lock);
}

/* Whether an unprivileged client may be served now: takes a slot of the unprivileged share
 * (and of its user's), or parks c (owned by the caller) with the events it was woken for. */
bool slot_take(struct conn *c, uint32_t events) {
        struct server *s = c->server;
        bool ok;

        pthread_mutex_lock(&s->lock);
        ok = s->unprivileged_running < s->unprivileged_slots && c->account->running < s->user_slots;
        if (ok) {
                s->unprivileged_running++;
                c->account->running++;
        } else
                park_locked(s, c, events);
        pthread_mutex_unlock(&s->lock);
        return ok;
}
