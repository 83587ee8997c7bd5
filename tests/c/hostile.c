/* A hostile submission: the correct echo server of echo_server.c (in the same folder),
 * which first probes its surroundings, once, before it listens. Each probe prints one
 * line "probe NAME: RESULT" on stdout; what it tries against the host is named in
 * targets.txt beside it (written by the test, as a student who read the grader's command
 * line would have found them):
 *
 *   write PATH    append "HACKED" to this file (a classmate's source, results.json ...)
 *   port N        a listener on the host's 127.0.0.1:N to connect to
 *   name NAME     the daemon's process name (default "hostiled")
 *
 * Probes: its ids and capabilities; /etc/shadow; a file in /tmp; the parent's command
 * line; every target; setns() into every namespace /proc shows; the host listener; a
 * double-fork + setsid daemon (named "hostiled") that keeps trying the targets for 60 s;
 * 500 forks; 4 x 512 MB of memory; 100 MB of output (on stderr).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>

#define main echo_main
#include "echo_server.c"
#undef main

static char targets[16][512];
static int n_targets;
static int host_port;
static char daemon_name[16] = "hostiled";

static void read_targets(void) {
    FILE *f = fopen("targets.txt", "r");
    char line[600];
    if (!f) return;
    while (fgets(line, sizeof line, f) && n_targets < 16) {
        line[strcspn(line, "\n")] = 0;
        if (strncmp(line, "write ", 6) == 0) snprintf(targets[n_targets++], 512, "%s", line + 6);
        if (strncmp(line, "port ", 5) == 0) host_port = atoi(line + 5);
        if (strncmp(line, "name ", 5) == 0) snprintf(daemon_name, sizeof daemon_name, "%s", line + 5);
    }
    fclose(f);
}

static int try_targets(void) {  /* how many targets could be written */
    int done = 0;
    for (int i = 0; i < n_targets; i++) {
        int fd = open(targets[i], O_WRONLY | O_APPEND);
        if (fd >= 0 && write(fd, "HACKED\n", 7) == 7) done++;
        if (fd >= 0) close(fd);
    }
    return done;
}

static void probe_ids(void) {
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    printf("probe ids: uid=%d euid=%d gid=%d", (int)getuid(), (int)geteuid(), (int)getgid());
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "CapEff:", 7) == 0 || strncmp(line, "NoNewPrivs:", 11) == 0) {
            line[strcspn(line, "\n")] = 0;
            printf(" %s", line);
        }
    if (f) fclose(f);
    printf("\n");
}

static void probe_files(void) {
    char buf[64];
    int fd = open("/etc/shadow", O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf) : -1;
    printf("probe shadow: %s\n", n > 0 ? "READ" : "denied");
    if (fd >= 0) close(fd);
    fd = open("/tmp/sockcap-hostile-proof", O_WRONLY | O_CREAT, 0644);
    printf("probe tmp: %s\n", fd >= 0 ? "written (in its own /tmp)" : "denied");
    if (fd >= 0) close(fd);
    snprintf(buf, sizeof buf, "/proc/%d/cmdline", (int)getppid());
    fd = open(buf, O_RDONLY);
    char cmd[256] = {0};
    n = fd >= 0 ? read(fd, cmd, sizeof cmd - 1) : -1;
    for (ssize_t i = 0; i < n; i++) if (cmd[i] == 0) cmd[i] = ' ';
    printf("probe ppid %d cmdline: %s\n", (int)getppid(), n > 0 ? cmd : "(none)");
    if (fd >= 0) close(fd);
    printf("probe targets: %d of %d written\n", try_targets(), n_targets);
}

static void probe_namespaces(void) {
    const char *kinds[] = {"net", "mnt", "pid", "user", "uts", "ipc", "cgroup"};
    int tried = 0, joined = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        for (int k = 0; k < 7; k++) {
            char path[300];
            snprintf(path, sizeof path, "/proc/%s/ns/%s", e->d_name, kinds[k]);
            int fd = open(path, O_RDONLY);
            if (fd < 0) continue;
            tried++;
            if (setns(fd, 0) == 0) joined++;
            close(fd);
        }
    }
    if (d) closedir(d);
    printf("probe setns: %d of %d namespaces joined\n", joined, tried);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)host_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int c = host_port ? connect(s, (struct sockaddr *)&a, sizeof a) : -1;
    printf("probe host listener: %s\n", c == 0 ? "CONNECTED" : "unreachable");
    close(s);
}

static void probe_daemon(void) {
    pid_t p = fork();
    if (p == 0) {
        setsid();
        if (fork() == 0) {
            prctl(PR_SET_NAME, daemon_name, 0, 0, 0);
            for (int i = 0; i < 300; i++) {  /* 60 s */
                try_targets();
                usleep(200000);
            }
            _exit(0);
        }
        _exit(0);
    }
    waitpid(p, NULL, 0);
    printf("probe daemon: started\n");
}

static void probe_forks(void) {
    pid_t kids[500];
    int n = 0;
    for (int i = 0; i < 500; i++) {
        pid_t p = fork();
        if (p == 0) { sleep(30); _exit(0); }
        if (p < 0) break;
        kids[n++] = p;
    }
    for (int i = 0; i < n; i++) kill(kids[i], SIGKILL);
    for (int i = 0; i < n; i++) waitpid(kids[i], NULL, 0);
    printf("probe forks: %d of 500\n", n);
}

static void probe_memory(void) {  /* what the 4 children hold at once at the end */
    int fds[4][2];
    pid_t kids[4];
    int steps[4] = {0, 0, 0, 0};
    for (int i = 0; i < 4; i++) {
        if (pipe(fds[i]) != 0) return;
        kids[i] = fork();
        if (kids[i] == 0) {
            close(fds[i][0]);
            for (int mb = 0; mb < 512; mb += 16) {
                char *p = malloc(16 << 20);
                if (!p) break;
                memset(p, 1, 16 << 20);
                if (write(fds[i][1], "x", 1) != 1) break;
            }
            sleep(30);
            _exit(0);
        }
        close(fds[i][1]);
        fcntl(fds[i][0], F_SETFL, O_NONBLOCK);
    }
    time_t end = time(NULL) + 4;
    char c;
    while (time(NULL) < end) {
        int busy = 0;
        for (int i = 0; i < 4; i++) {
            ssize_t r = read(fds[i][0], &c, 1);
            if (r == 1) { steps[i]++; busy = 1; }
        }
        if (!busy) usleep(10000);
    }
    int held = 0;
    for (int i = 0; i < 4; i++) {
        if (kids[i] > 0 && waitpid(kids[i], NULL, WNOHANG) == 0) held += steps[i];
        if (kids[i] > 0) { kill(kids[i], SIGKILL); waitpid(kids[i], NULL, 0); }
        close(fds[i][0]);
    }
    printf("probe memory: %d MB of 2048 held at once\n", held * 16);
}

static void probe_output(void) {
    static char chunk[1 << 20];
    long written = 0;
    signal(SIGXFSZ, SIG_IGN);
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 100; i++) {
        ssize_t w = write(2, chunk, sizeof chunk);
        if (w <= 0) break;
        written += w;
        if (w < (ssize_t)sizeof chunk) break;
    }
    signal(SIGXFSZ, SIG_DFL);
    printf("probe output: %ld MB of 100 written\n", written >> 20);
}

int main(int argc, char **argv) {
    struct stat st;
    if (stat(".probed", &st) != 0) {  /* once: the server is started again per scenario */
        int fd = open(".probed", O_WRONLY | O_CREAT, 0644);
        if (fd >= 0) close(fd);
        read_targets();
        probe_ids();
        probe_files();
        probe_namespaces();
        probe_daemon();
        probe_forks();
        probe_memory();
        probe_output();
        fflush(stdout);
    }
    return echo_main(argc, argv);
}
