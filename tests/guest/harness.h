/* SPDX-License-Identifier: MIT */
/*
 * A small test harness for guest programs: each test runs in its own
 * child process (a crash fails one test, not the run), results are TAP
 * lines, and a CHECK that fails prints where and why.
 *
 *   TEST(name) { CHECK(cond); CHECK_EQ(a, b); }
 *   TEST(other) { if (!supported) SKIP("why"); ... }
 *   int main(int argc, char **argv) { return run_tests(argc, argv); }
 */
#ifndef VGRU_HARNESS_H
#define VGRU_HARNESS_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct test {
	const char *name;
	void (*fn)(void);
};

#define MAX_TESTS 256
static struct test tests[MAX_TESTS];
static int nr_tests;

/* A case past MAX_TESTS must not vanish from the plan unnoticed. */
#define TEST(n)								\
	static void test_##n(void);					\
	__attribute__((constructor)) static void register_##n(void)	\
	{								\
		if (nr_tests == MAX_TESTS) {				\
			fprintf(stderr, "harness: MAX_TESTS too small\n"); \
			_exit(1);					\
		}							\
		tests[nr_tests++] = (struct test){ #n, test_##n };	\
	}								\
	static void test_##n(void)

/* Exit status of a test that could not run here (TAP "# SKIP"). */
#define TEST_SKIPPED 77

#define SKIP(why)							\
	do {								\
		printf("# SKIP %s\n", why);				\
		fflush(stdout);						\
		_exit(TEST_SKIPPED);					\
	} while (0)

#define CHECK(cond)							\
	do {								\
		if (!(cond)) {						\
			printf("# %s:%d: CHECK(%s) failed\n",		\
			       __FILE__, __LINE__, #cond);		\
			fflush(stdout);					\
			_exit(1);					\
		}							\
	} while (0)

#define CHECK_EQ(a, b)							\
	do {								\
		long long _a = (long long)(a), _b = (long long)(b);	\
		if (_a != _b) {						\
			printf("# %s:%d: %s == %lld, expected %s == %lld\n", \
			       __FILE__, __LINE__, #a, _a, #b, _b);	\
			fflush(stdout);					\
			_exit(1);					\
		}							\
	} while (0)

/* A test that runs longer than this is killed and fails. */
#define TEST_TIMEOUT_SECONDS 120

static int test_selected(int argc, char **argv, const char *name)
{
	if (argc < 2)
		return 1;
	for (int a = 1; a < argc; a++)
		if (!strcmp(argv[a], name))
			return 1;
	return 0;
}

/* Run every test, or those named on the command line; 0 if all passed. */
static int run_tests(int argc, char **argv)
{
	int failed = 0, run = 0, planned = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	/* a misspelt case name must fail, not shrink the plan */
	for (int a = 1; a < argc; a++) {
		int known = 0;

		for (int i = 0; i < nr_tests; i++)
			known |= !strcmp(argv[a], tests[i].name);
		if (!known) {
			fprintf(stderr, "no test case named %s\n", argv[a]);
			return 2;
		}
	}
	for (int i = 0; i < nr_tests; i++)
		planned += test_selected(argc, argv, tests[i].name);
	printf("1..%d\n", planned);
	for (int i = 0; i < nr_tests; i++) {
		int status;
		pid_t pid;

		if (!test_selected(argc, argv, tests[i].name))
			continue;
		run++;
		pid = fork();
		if (pid == 0) {
			alarm(TEST_TIMEOUT_SECONDS);
			tests[i].fn();
			_exit(0);
		}
		if (pid < 0 || waitpid(pid, &status, 0) != pid)
			status = -1;
		if (status == 0) {
			printf("ok %d %s\n", run, tests[i].name);
		} else if (WIFEXITED(status) &&
			   WEXITSTATUS(status) == TEST_SKIPPED) {
			printf("ok %d %s # SKIP\n", run, tests[i].name);
		} else {
			if (WIFSIGNALED(status))
				printf("# killed by signal %d%s\n",
				       WTERMSIG(status),
				       WTERMSIG(status) == SIGALRM ?
				       " (time-out)" : "");
			printf("not ok %d %s\n", run, tests[i].name);
			failed++;
		}
	}
	return failed ? 1 : 0;
}

#endif /* VGRU_HARNESS_H */
