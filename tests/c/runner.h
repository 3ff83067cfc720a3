/*
 * A tiny test runner for the C suite: one header, no dependencies.
 *
 * Each test is a void function run in its own forked process under alarm(), so a hang, a
 * crash or a sanitizer report fails that test alone. The last line printed is
 * "N passed, M failed", which CI reads. Include this header first in every test file.
 *
 *     static void test_something(void) { CHECK(1 + 1 == 2); CHECK_OK(tw_config_new(&c)); }
 *     int main(int argc, char **argv) {
 *         static const struct tr_case cases[] = { TR_CASE(test_something) };
 *         return tr_run(argc, argv, cases, sizeof cases / sizeof cases[0]);
 *     }
 *
 * `./test_x NAME` runs only the tests whose name contains NAME.
 */
#ifndef TIDEWIRE_TEST_RUNNER_H
#define TIDEWIRE_TEST_RUNNER_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tidewire.h"

/* Seconds a single test may take before it is killed and counted as failed. */
#ifndef TR_TIMEOUT_S
#define TR_TIMEOUT_S 20
#endif

typedef void (*tr_fn)(void);

struct tr_case {
    const char *name;
    tr_fn fn;
};

#define TR_CASE(f) { #f, f }

/* Set by a failing check inside the test's process. */
static int tr_failed;

#define TR_FAIL_(...)                                                \
    do {                                                             \
        fprintf(stderr, "    %s:%d: ", __FILE__, __LINE__);          \
        fprintf(stderr, __VA_ARGS__);                                \
        fputc('\n', stderr);                                         \
        tr_failed = 1;                                               \
    } while (0)

/* Checks a condition; on failure reports it and returns from the test function. */
#define CHECK(cond)                                                  \
    do {                                                             \
        if (!(cond)) {                                               \
            TR_FAIL_("CHECK(%s) failed", #cond);                     \
            return;                                                  \
        }                                                            \
    } while (0)

/* Checks that a tidewire call returned `want`. */
#define CHECK_STATUS(call, want)                                     \
    do {                                                             \
        tw_status tr_s_ = (call);                                    \
        if (tr_s_ != (tw_status)(want)) {                            \
            TR_FAIL_("%s -> %s (%u), wanted %s; last error: %s",     \
                     #call, tw_status_str(tr_s_), (unsigned)tr_s_,   \
                     tw_status_str(want), tw_last_error());          \
            return;                                                  \
        }                                                            \
    } while (0)

#define CHECK_OK(call) CHECK_STATUS(call, TW_STATUS_OK)

static void tr_on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "    timed out\n";
    if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) {
        /* nothing more to do in a signal handler */
    }
    _exit(124);
}

static int tr_run(int argc, char **argv, const struct tr_case *cases, size_t n) {
    const char *only = argc > 1 ? argv[1] : NULL;
    int passed = 0, failed = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (size_t i = 0; i < n; i++) {
        if (only != NULL && strstr(cases[i].name, only) == NULL) {
            continue;
        }
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 2;
        }
        if (pid == 0) {
            signal(SIGALRM, tr_on_alarm);
            alarm(TR_TIMEOUT_S);
            cases[i].fn();
            fflush(stdout);
            fflush(stderr);
            /* exit (not _exit) so that LeakSanitizer checks this test's memory. */
            exit(tr_failed ? 1 : 0);
        }
        int status = 0;
        while (waitpid(pid, &status, 0) < 0) {
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            passed++;
            printf("ok   %s\n", cases[i].name);
        } else {
            failed++;
            if (WIFSIGNALED(status)) {
                printf("FAIL %s (signal %d)\n", cases[i].name, WTERMSIG(status));
            } else {
                printf("FAIL %s (exit %d)\n", cases[i].name, WEXITSTATUS(status));
            }
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}

#endif /* TIDEWIRE_TEST_RUNNER_H */
