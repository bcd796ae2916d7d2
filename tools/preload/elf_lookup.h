// ELF lookup: one versioned definition, read straight from the dynamic
// symbol tables of the objects already loaded.
//
// Why: the preload library defines dlsym and dlvsym itself, so a call to
// either from its own code reaches its own definition (the loader binds
// every reference, a versioned one such as dlvsym@GLIBC_2.34 included, to
// the first definition in the global scope, which an LD_PRELOAD library
// is). glibc's dlvsym is therefore found here, without the loader's lookup
// functions, once; glibc's own functions do every other lookup.
//
// Contract
// - LookUpLoadedDefinition(name, version) is the address of the first
//   loaded object's definition of `name` at exactly `version` (a version the
//   object defines, default or not), in load order, or nullptr when none
//   defines it. Unversioned definitions never match, nor do indirect
//   functions (STT_GNU_IFUNC: their address is the resolver's answer).
// - It reads the tables in place (DT_GNU_HASH, else DT_HASH; DT_VERSYM,
//   DT_VERDEF), allocates nothing, and calls no dl* function but
//   dl_iterate_phdr.
//
// Thread safety: may be called from any thread; objects loaded or unloaded
// meanwhile are seen or not, as dl_iterate_phdr sees them.
#ifndef TIERCACHE_TOOLS_PRELOAD_ELF_LOOKUP_H_
#define TIERCACHE_TOOLS_PRELOAD_ELF_LOOKUP_H_

namespace tiercache::preload {

void* LookUpLoadedDefinition(const char* name, const char* version);

}  // namespace tiercache::preload

#endif  // TIERCACHE_TOOLS_PRELOAD_ELF_LOOKUP_H_
