// SPDX-License-Identifier: MIT
/*
 * The runtime socket of a keel process.  Created before the sandbox; once
 * sandboxed keel only accepts on it (accept4), sends each reader the hello
 * and the trace memfd (sendmsg) and closes the connection, and at exit
 * removes it (unlinkat on the directory descriptor kept open).
 */
#include "runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ring.h"
#include "trace.h"
#include "base/util.h"

static struct {
	int listen_fd;
	int dir_fd;
	int memfd;
	char file[TRACE_NAME_MAX + 32]; /* NAME.sock */
	char name[TRACE_NAME_MAX + 16];
} srv = { .listen_fd = -1, .dir_fd = -1, .memfd = -1 };

int trace_runtime_dir(char *path, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n = xdg && xdg[0] == '/' ? snprintf(path, len, "%s/keel", xdg)
				      : snprintf(path, len, "/tmp/keel-%u", (unsigned)geteuid());
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int trace_runtime_dir_open(bool create, const char **why)
{
	char path[PATH_MAX];
	*why = "path too long";
	if (trace_runtime_dir(path, sizeof(path)))
		return -ENAMETOOLONG;
	if (create && mkdir(path, 0700) < 0 && errno != EEXIST) {
		*why = "mkdir";
		return -errno;
	}
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		*why = "open";
		return -errno;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 022)) {
		*why = "not owned by this user, or writable by others";
		close(fd);
		return -EPERM;
	}
	return fd;
}

bool trace_valid_name(const char *name, size_t len)
{
	if (len == 0 || len > TRACE_NAME_MAX || name[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '_' || c == '.'))
			return false;
	}
	return true;
}

/* A sockaddr for dir/file, short enough for sun_path whatever the directory's length. */
static int sock_addr(int dir_fd, const char *file, struct sockaddr_un *a)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	int n = snprintf(a->sun_path, sizeof(a->sun_path), "/proc/self/fd/%d/%s", dir_fd, file);
	return n < 0 || (size_t)n >= sizeof(a->sun_path) ? -ENAMETOOLONG : 0;
}

/* A non-blocking unix stream socket and the address of dir/file.  The fd or -errno. */
static int sock_open(int dir_fd, const char *file, struct sockaddr_un *a)
{
	int r = sock_addr(dir_fd, file, a);
	if (r)
		return r;
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	return s < 0 ? -errno : s;
}

/* Whether a keel is listening on dir/file: 1 yes, 0 no (stale or absent), -errno. */
static int listener_alive(int dir_fd, const char *file)
{
	struct sockaddr_un a;
	int s = sock_open(dir_fd, file, &a);
	if (s < 0)
		return s;
	int r = connect(s, (struct sockaddr *)&a, sizeof(a));
	int e = errno;
	close(s);
	if (r == 0 || e == EAGAIN || e == EINPROGRESS)
		return 1;
	return 0;
}

void trace_runtime_remove_stale(int dir_fd, const char *file)
{
	struct stat st;
	(void)flock(dir_fd, LOCK_EX); /* as keel's own stale check at start */
	if (fstatat(dir_fd, file, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISSOCK(st.st_mode) &&
	    listener_alive(dir_fd, file) == 0)
		(void)unlinkat(dir_fd, file, 0);
	(void)flock(dir_fd, LOCK_UN);
}

void trace_server_unlink_now(void)
{
	if (srv.listen_fd >= 0)
		(void)unlinkat(srv.dir_fd, srv.file, 0);
}

/* Bind and listen on dir/file (absent or stale), with the directory locked. 0, -EEXIST (live), -errno. */
static int try_bind(int dir_fd, const char *file)
{
	struct stat st;
	if (fstatat(dir_fd, file, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (!S_ISSOCK(st.st_mode) || listener_alive(dir_fd, file) != 0)
			return -EEXIST;
		/* A socket nobody listens on: left by a keel that was killed. */
		if (unlinkat(dir_fd, file, 0) < 0 && errno != ENOENT)
			return -errno;
	}
	struct sockaddr_un a;
	int s = sock_open(dir_fd, file, &a);
	if (s < 0)
		return s;
	int r;
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 16) < 0) {
		r = errno == EADDRINUSE ? -EEXIST : -errno;
		close(s);
		return r;
	}
	return s;
}

int trace_server_open(const char *name, int memfd)
{
	const char *why;
	char dir[PATH_MAX];
	(void)trace_runtime_dir(dir, sizeof(dir));
	int dir_fd = trace_runtime_dir_open(true, &why);
	if (dir_fd < 0) {
		log_info("tracing: %s: %s (%s); keel tracefs will not see this VM", dir, strerror(-dir_fd), why);
		return dir_fd;
	}
	/* Serialise with other keels starting in this directory: the stale check and bind are one step. */
	(void)flock(dir_fd, LOCK_EX);
	int s = -EEXIST;
	char try_name[sizeof(srv.name)];
	snprintf(try_name, sizeof(try_name), "%s", name);
	for (unsigned attempt = 0; attempt < 2 && s == -EEXIST; attempt++) {
		if (attempt)
			/* A live keel has this name: this one is NAME-PID for readers. */
			snprintf(try_name, sizeof(try_name), "%.50s-%d", name, (int)getpid());
		snprintf(srv.file, sizeof(srv.file), "%s%s", try_name, TRACE_SOCK_SUFFIX);
		s = try_bind(dir_fd, srv.file);
	}
	(void)flock(dir_fd, LOCK_UN);
	if (s < 0) {
		log_info("tracing: cannot create %s/%s: %s; keel tracefs will not see this VM", dir, srv.file,
			 strerror(-s));
		close(dir_fd);
		return s;
	}
	if (strcmp(try_name, name))
		log_info("tracing: a running VM is already named %s; keel tracefs shows this one as %s", name,
			 try_name);
	srv.listen_fd = s;
	srv.dir_fd = dir_fd;
	srv.memfd = memfd;
	snprintf(srv.name, sizeof(srv.name), "%s", try_name);
	log_debug("tracing: listening on %s/%s", dir, srv.file);
	return 0;
}

int trace_server_fd(void)
{
	return srv.listen_fd;
}

void trace_server_fds(int *listen_fd, int *dir_fd)
{
	*listen_fd = srv.listen_fd;
	*dir_fd = srv.dir_fd;
}

const char *trace_server_name(void)
{
	return srv.listen_fd >= 0 ? srv.name : NULL;
}

static void send_memfd(int c)
{
	struct trace_hello h = { .version = TRACE_VERSION, .pid = (int32_t)getpid() };
	memcpy(h.magic, TRACE_HELLO_MAGIC, 8);
	struct stat st;
	if (fstat(srv.memfd, &st) == 0)
		h.size = (uint64_t)st.st_size;
	struct iovec iov = { .iov_base = &h, .iov_len = sizeof(h) };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof(u));
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &srv.memfd, sizeof(int));
	if (sendmsg(c, &m, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof(h))
		log_debug("tracing: could not hand a reader the trace memory: %s", strerror(errno));
}

void trace_server_service(void)
{
	/* A bounded batch: the main loop has other work; the rest wait in the backlog. */
	for (int i = 0; i < 16 && srv.listen_fd >= 0; i++) {
		int c = accept4(srv.listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (c < 0)
			return;
		send_memfd(c);
		close(c);
	}
}

void trace_server_close(void)
{
	if (srv.listen_fd >= 0) {
		close(srv.listen_fd);
		if (unlinkat(srv.dir_fd, srv.file, 0) < 0 && errno != ENOENT)
			log_debug("tracing: removing %s: %s", srv.file, strerror(errno));
	}
	if (srv.dir_fd >= 0)
		close(srv.dir_fd);
	srv.listen_fd = srv.dir_fd = -1;
}
