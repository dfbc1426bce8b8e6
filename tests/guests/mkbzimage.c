// SPDX-License-Identifier: MIT
/*
 * Build the test guest's bzImage: setup sectors (setup.bin) followed by the
 * protected-mode image (flat binary loaded at 1 MiB).  Patches setup_sects,
 * syssize and init_size into the setup header.
 * usage: mkbzimage SETUP.bin KERNEL.bin MEMSIZE OUT
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		exit(1);
	}
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *buf = calloc(1, (size_t)n + 4096);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "%s: read failed\n", path);
		exit(1);
	}
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void put32(unsigned char *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: mkbzimage SETUP.bin KERNEL.bin MEMSIZE OUT\n");
		return 2;
	}
	size_t slen, klen;
	unsigned char *setup = slurp(argv[1], &slen);
	unsigned char *kernel = slurp(argv[2], &klen);
	uint32_t memsz = (uint32_t)strtoul(argv[3], NULL, 0);
	if (slen < 0x264 || memcmp(setup + 0x202, "HdrS", 4)) {
		fprintf(stderr, "%s: no setup header\n", argv[1]);
		return 1;
	}
	size_t sects = (slen + 511) / 512; /* boot sector + setup sectors */
	if (sects < 2)
		sects = 2;
	setup[0x1f1] = (unsigned char)(sects - 1);
	put32(setup + 0x1f4, (uint32_t)((klen + 15) / 16));
	uint32_t init = memsz > klen ? memsz : (uint32_t)klen;
	put32(setup + 0x260, (init + 4095) & ~4095u);

	FILE *out = fopen(argv[4], "wb");
	if (!out) {
		perror(argv[4]);
		return 1;
	}
	static const unsigned char zero[512];
	fwrite(setup, 1, slen, out);
	fwrite(zero, 1, sects * 512 - slen, out);
	fwrite(kernel, 1, klen, out);
	fwrite(zero, 1, ((klen + 15) & ~(size_t)15) - klen, out); /* syssize counts 16-byte units */
	if (fclose(out)) {
		perror(argv[4]);
		return 1;
	}
	return 0;
}
