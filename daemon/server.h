/* The memmapd server: listening sockets, client connections answered by a pool of threads sharing one epoll loop, signals and systemd notification. */
#pragma once

#include "daemon-config.h"
#include "engine.h"

struct server;

/* Takes the sockets systemd passed (socket activation), else binds cfg->socket_path (or the
 * default path) itself. The engine stays owned by the caller and must outlive the server. */
struct file_pool;

/* file_pool (NULL: none) is only asked for its counters, for GetStatus. */
int server_new(const struct config *cfg, struct engine *engine, struct file_pool *file_pool, struct server **ret);

struct tracking;
struct layout_store;

/* Answers from store while tracking says a layout is unchanged, and drains tracking's events on
 * the loop (its fd, when it has one). Both stay the caller's and must outlive the server. Before
 * server_run(). 0 or -errno. */
int server_set_tracking(struct server *s, struct tracking *tracking, struct layout_store *store);
/* The process events Watch calls stream (NULL: none); stays the caller's. Before server_run(). */
struct proc_events;
/* Answers for exited processes and as of a time from retention (NULL: none), whose capture it
 * drains on the loop; stays the caller's. Before server_run(). */
struct retention;
int server_set_retention(struct server *s, struct retention *retention);
void server_set_events(struct server *s, struct proc_events *events);

/* FindMappings' BPF pass (find-scan.h), kept by the caller; NULL: a scan of /proc. */
struct find_scan;
void server_set_find_scan(struct server *s, struct find_scan *find);

/* Serves until SIGTERM or SIGINT, then stops accepting, finishes the replies in flight and
 * returns 0; -errno on a fatal error. */
int server_run(struct server *s);

/* Accepts NULL; returns NULL. Removes a socket file the server created. */
struct server *server_free(struct server *s);
