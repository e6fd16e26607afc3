// An LD_PRELOAD library that counts the heap allocations of a process (malloc, calloc,
// realloc, the aligned ones; operator new comes through malloc) and, at exit, writes the count
// in decimal to the file named by SAGAFLOW_ALLOC_COUNT_OUT. kafka_bench loads it into the
// worker it measures to print allocations per saga start. glibc only: it forwards to the
// __libc_* entry points, so it needs no dlsym (which itself allocates).
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void* __libc_malloc(size_t size);
extern void* __libc_calloc(size_t n, size_t size);
extern void* __libc_realloc(void* p, size_t size);
extern void* __libc_memalign(size_t alignment, size_t size);

static atomic_ulong allocations;

static void count(void) {
  atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
}

void* malloc(size_t size) {
  count();
  return __libc_malloc(size);
}

void* calloc(size_t n, size_t size) {
  count();
  return __libc_calloc(n, size);
}

void* realloc(void* p, size_t size) {
  count();
  return __libc_realloc(p, size);
}

void* memalign(size_t alignment, size_t size) {
  count();
  return __libc_memalign(alignment, size);
}

void* aligned_alloc(size_t alignment, size_t size) {
  count();
  return __libc_memalign(alignment, size);
}

int posix_memalign(void** out, size_t alignment, size_t size) {
  count();
  void* p = __libc_memalign(alignment, size);
  if (p == NULL) return 12;  // ENOMEM
  *out = p;
  return 0;
}

__attribute__((destructor)) static void report(void) {
  const char* path = getenv("SAGAFLOW_ALLOC_COUNT_OUT");
  if (path == NULL || *path == '\0') return;
  char line[32];
  const int len = snprintf(line, sizeof line, "%lu\n",
                           atomic_load_explicit(&allocations, memory_order_relaxed));
  const int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  if (len > 0 && write(fd, line, (size_t)len) < 0) {
    // nothing to do: the benchmark reports a missing count
  }
  close(fd);
}
