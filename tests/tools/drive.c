// SPDX-License-Identifier: MIT
/*
 * drive: run a command, script its console, time it.  Used by the guest
 * tests (in the lab and directly) and by the benchmarks, so that keel and
 * QEMU are driven and measured by the same code.
 *
 *   drive [-t SECONDS] [-l LOGFILE] [-g GUEST_RAM_BYTES] STEP... -- COMMAND [ARG...]
 *
 * Steps run in order, each on the command's merged stdout+stderr:
 *   -x TEXT   wait until TEXT appears (after the previous match)
 *   -m TEXT   like -x, and print "drive: mark TEXT MS" (ms since exec)
 *   -r TEXT   like -x, and print "drive: rss KIB": the command's resident
 *             memory without mappings of at least GUEST_RAM_BYTES (guest RAM)
 *   -s TEXT   write TEXT to the command's stdin (\n, \r, \t, \\, \xHH escapes)
 *   -c        close the command's stdin
 *   -e SHELL  run SHELL with $DRIVE_PID set to the command's pid; its
 *             output is shown, and a non-zero status fails the run
 * Then it waits for the command to exit and prints "drive: exit STATUS MS"
 * (or "drive: signal N MS").  Exit status: the command's; 124 on timeout
 * (printing which step was waiting), 125 on drive's own errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { STEP_EXPECT, STEP_MARK, STEP_RSS, STEP_SEND, STEP_CLOSE, STEP_SHELL };
struct step {
	int kind;
	const char *text;
};

static uint64_t start_ns;
static char *out;
static size_t out_len, out_cap, matched;
static FILE *log_file;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double ms(void)
{
	return (double)(now_ns() - start_ns) / 1e6;
}

static size_t unescape(const char *s, char *d)
{
	size_t n = 0;
	for (; *s; s++) {
		if (*s != '\\' || !s[1]) {
			d[n++] = *s;
			continue;
		}
		s++;
		switch (*s) {
		case 'n': d[n++] = '\n'; break;
		case 'r': d[n++] = '\r'; break;
		case 't': d[n++] = '\t'; break;
		case 'x': {
			char hex[3] = { s[1], s[1] ? s[2] : 0, 0 };
			d[n++] = (char)strtoul(hex, NULL, 16);
			s += strlen(hex);
			break;
		}
		default: d[n++] = *s; break;
		}
	}
	return n;
}

/* Resident KiB of pid, leaving out mappings of at least skip bytes. */
static long rss_kib(pid_t pid, uint64_t skip)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long total = 0;
	bool counted = true;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long a, b;
		long kib;
		if (sscanf(line, "%llx-%llx ", &a, &b) == 2 && strchr(line, '-') < strchr(line, ' '))
			counted = !(skip && b - a >= skip);
		else if (sscanf(line, "Rss: %ld kB", &kib) == 1 && counted)
			total += kib;
	}
	fclose(f);
	return total;
}

static void append(const char *buf, size_t n)
{
	if (out_len + n + 1 > out_cap) {
		out_cap = (out_len + n + 1) * 2;
		out = realloc(out, out_cap);
		if (!out) {
			perror("drive");
			exit(125);
		}
	}
	memcpy(out + out_len, buf, n);
	out_len += n;
	out[out_len] = 0;
	if (log_file) {
		fwrite(buf, 1, n, log_file);
		fflush(log_file);
	}
}

/* Read output until text appears after `matched`, EOF, or the deadline. 1 found, 0 EOF, -1 timeout. */
static int wait_text(int fd, const char *text, uint64_t deadline, bool *eof)
{
	for (;;) {
		char *hit = out ? memmem(out + matched, out_len - matched, text, strlen(text)) : NULL;
		if (hit) {
			matched = (size_t)(hit - out) + strlen(text);
			return 1;
		}
		if (*eof)
			return 0;
		uint64_t now = now_ns();
		if (now >= deadline)
			return -1;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, (int)((deadline - now) / 1000000) + 1);
		if (r < 0 && errno != EINTR)
			return -1;
		if (r > 0) {
			char buf[4096];
			ssize_t n = read(fd, buf, sizeof(buf));
			if (n <= 0)
				*eof = true;
			else
				append(buf, (size_t)n);
		}
	}
}

/*
 * A command that ran out of time: SIGQUIT first (keel prints every vCPU's
 * registers on it: where the guest hung), collect what it prints for up to
 * two seconds, then SIGKILL the process group.
 */
static void quit_then_kill(pid_t pid, int out_fd)
{
	kill(pid, SIGQUIT);
	uint64_t until = now_ns() + 2000000000ull;
	while (now_ns() < until) {
		struct pollfd p = { .fd = out_fd, .events = POLLIN };
		if (poll(&p, 1, 100) > 0) {
			char buf[4096];
			ssize_t n = read(out_fd, buf, sizeof(buf));
			if (n <= 0)
				break;
			append(buf, (size_t)n);
		}
	}
	kill(-pid, SIGKILL);
}

/*
 * Reap a killed command, waiting at most ten seconds: a process that
 * SIGKILL cannot end is stuck inside the kernel (seen in the lab, whose
 * emulated SVM sometimes never returns from running a guest).  Say so
 * rather than hang the test run.
 */
static void reap_killed(pid_t pid)
{
	uint64_t until = now_ns() + 10000000000ull;
	while (now_ns() < until) {
		pid_t w = waitpid(pid, NULL, WNOHANG);
		if (w == pid || (w < 0 && errno != EINTR))
			return;
		usleep(10000);
	}
	printf("drive: process %d did not end 10 s after SIGKILL: stuck in the kernel\n", (int)pid);
}

int main(int argc, char **argv)
{
	double timeout = 60;
	uint64_t guest_ram = 0;
	struct step steps[64];
	int nsteps = 0, i = 1;
	for (; i < argc && strcmp(argv[i], "--"); i++) {
		const char *o = argv[i];
		if (i + 1 >= argc && strcmp(o, "-c")) {
			fprintf(stderr, "drive: %s needs a value\n", o);
			return 125;
		}
		if (!strcmp(o, "-t")) {
			timeout = atof(argv[++i]);
		} else if (!strcmp(o, "-l")) {
			log_file = fopen(argv[++i], "w");
		} else if (!strcmp(o, "-g")) {
			guest_ram = strtoull(argv[++i], NULL, 0);
		} else if (nsteps < 64 && (!strcmp(o, "-x") || !strcmp(o, "-m") || !strcmp(o, "-r") || !strcmp(o, "-s"))) {
			int k = o[1] == 'x' ? STEP_EXPECT : o[1] == 'm' ? STEP_MARK : o[1] == 'r' ? STEP_RSS : STEP_SEND;
			steps[nsteps++] = (struct step){ k, argv[++i] };
		} else if (nsteps < 64 && !strcmp(o, "-e")) {
			steps[nsteps++] = (struct step){ STEP_SHELL, argv[++i] };
		} else if (nsteps < 64 && !strcmp(o, "-c")) {
			steps[nsteps++] = (struct step){ STEP_CLOSE, NULL };
		} else {
			fprintf(stderr, "drive: unknown option %s\n", o);
			return 125;
		}
	}
	if (i + 1 >= argc) {
		fprintf(stderr, "usage: drive [-t S] [-l LOG] [-g BYTES] [-x|-m|-r|-s TEXT | -c]... -- COMMAND...\n");
		return 125;
	}
	char **cmd = argv + i + 1;

	int in[2], outp[2];
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(outp, O_CLOEXEC) < 0) {
		perror("drive: pipe");
		return 125;
	}
	signal(SIGPIPE, SIG_IGN);
	start_ns = now_ns();
	pid_t pid = fork();
	if (pid < 0) {
		perror("drive: fork");
		return 125;
	}
	if (pid == 0) {
		setpgid(0, 0);
		dup2(in[0], 0);
		dup2(outp[1], 1);
		dup2(outp[1], 2);
		execvp(cmd[0], cmd);
		fprintf(stderr, "drive: cannot run %s: %s\n", cmd[0], strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid);
	close(in[0]);
	close(outp[1]);
	int in_fd = in[1];
	uint64_t deadline = start_ns + (uint64_t)(timeout * 1e9);
	bool eof = false;
	int status = 0;
	for (int s = 0; s < nsteps; s++) {
		const struct step *st = &steps[s];
		if (st->kind == STEP_SEND) {
			char buf[4096];
			size_t n = unescape(st->text, buf);
			if (in_fd >= 0 && write(in_fd, buf, n) != (ssize_t)n)
				fprintf(stderr, "drive: write to stdin failed\n");
			continue;
		}
		if (st->kind == STEP_SHELL) {
			char env[32];
			snprintf(env, sizeof(env), "%d", (int)pid);
			setenv("DRIVE_PID", env, 1);
			fflush(stdout);
			int rc = system(st->text);
			if (rc != 0) {
				printf("drive: step %d (%s) failed\n", s + 1, st->text);
				status = 1;
			}
			continue;
		}
		if (st->kind == STEP_CLOSE) {
			if (in_fd >= 0)
				close(in_fd);
			in_fd = -1;
			continue;
		}
		int r = wait_text(outp[0], st->text, deadline, &eof);
		if (r <= 0) {
			printf("drive: %s waiting for \"%s\" (step %d) after %.0f ms\n", r < 0 ? "timeout" : "eof", st->text,
			       s + 1, ms());
			if (r < 0) {
				quit_then_kill(pid, outp[0]);
				reap_killed(pid);
				return 124;
			}
			status = 1;
			break;
		}
		if (st->kind == STEP_MARK)
			printf("drive: mark %s %.3f\n", st->text, ms());
		if (st->kind == STEP_RSS)
			printf("drive: rss %ld\n", rss_kib(pid, guest_ram));
		fflush(stdout);
	}
	/* Drain output until the command exits. */
	while (!eof && now_ns() < deadline) {
		struct pollfd p = { .fd = outp[0], .events = POLLIN };
		if (poll(&p, 1, 100) > 0) {
			char buf[4096];
			ssize_t n = read(outp[0], buf, sizeof(buf));
			if (n <= 0)
				eof = true;
			else
				append(buf, (size_t)n);
		}
	}
	int ws;
	pid_t w = 0;
	while (now_ns() < deadline && (w = waitpid(pid, &ws, WNOHANG)) == 0)
		usleep(1000);
	if (w != pid) {
		printf("drive: timeout waiting for exit after %.0f ms\n", ms());
		quit_then_kill(pid, outp[0]);
		reap_killed(pid);
		return 124;
	}
	double t = ms();
	if (WIFEXITED(ws)) {
		printf("drive: exit %d %.3f\n", WEXITSTATUS(ws), t);
		return status ? 125 : WEXITSTATUS(ws);
	}
	printf("drive: signal %d %.3f\n", WTERMSIG(ws), t);
	return 128 + WTERMSIG(ws);
}
