/* libtiercache_probe_scope.so: preload_probe loads it RTLD_LOCAL, so its
 * symbols lie outside the global scope and a lookup with RTLD_DEFAULT finds
 * them only when made from here (glibc reads the caller from the return
 * address). Under the preload library such lookups pass through its dlsym
 * and dlvsym, which must leave them to glibc as a tail call. The marker's
 * name begins with "cu", like the names the library serves, so that no
 * shortcut on the name lets a lookup of it through. Test code. */
#define _GNU_SOURCE
#include <dlfcn.h>

int cuProbeScopeMarker = 1;  /* version PROBE_SCOPE_1 (preload_probe_scope.map) */

/* Bit 0: dlsym found the marker; bit 1: dlvsym did. */
int probe_scope_default_lookups(void) {
  int found = 0;
  if (dlsym(RTLD_DEFAULT, "cuProbeScopeMarker") == &cuProbeScopeMarker) found |= 1;
  if (dlvsym(RTLD_DEFAULT, "cuProbeScopeMarker", "PROBE_SCOPE_1") == &cuProbeScopeMarker) found |= 2;
  return found;
}
