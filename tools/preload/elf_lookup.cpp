#include "tools/preload/elf_lookup.h"

#include <elf.h>
#include <link.h>

#include <cstdint>
#include <cstring>

namespace tiercache::preload {
namespace {

// The parts of one loaded object's dynamic section a lookup reads.
struct DynamicTables {
  uintptr_t base = 0;  // where the object is loaded (what its symbol values are relative to)
  const ElfW(Sym)* symbols = nullptr;
  const char* strings = nullptr;
  const ElfW(Half)* symbol_versions = nullptr;  // DT_VERSYM: one index per symbol
  const ElfW(Verdef)* version_definitions = nullptr;
  const uint32_t* gnu_hash = nullptr;
  const ElfW(Word)* sysv_hash = nullptr;
};

// The loader rewrites most pointers of a writable dynamic section in place
// (an address), but not all of them (DT_VERDEF) and none of a read-only one
// such as the vDSO's (an offset from the load address).
uintptr_t Pointer(uintptr_t base, ElfW(Addr) value) { return value < base ? base + value : value; }

bool ReadTables(const dl_phdr_info& info, DynamicTables* tables) {
  const ElfW(Dyn)* dynamic = nullptr;
  for (int i = 0; i < info.dlpi_phnum; ++i) {
    if (info.dlpi_phdr[i].p_type == PT_DYNAMIC) {
      dynamic = reinterpret_cast<const ElfW(Dyn)*>(info.dlpi_addr + info.dlpi_phdr[i].p_vaddr);
    }
  }
  if (dynamic == nullptr) return false;
  tables->base = info.dlpi_addr;
  for (const ElfW(Dyn)* entry = dynamic; entry->d_tag != DT_NULL; ++entry) {
    uintptr_t p = Pointer(info.dlpi_addr, entry->d_un.d_ptr);
    switch (entry->d_tag) {
      case DT_SYMTAB: tables->symbols = reinterpret_cast<const ElfW(Sym)*>(p); break;
      case DT_STRTAB: tables->strings = reinterpret_cast<const char*>(p); break;
      case DT_VERSYM: tables->symbol_versions = reinterpret_cast<const ElfW(Half)*>(p); break;
      case DT_VERDEF: tables->version_definitions = reinterpret_cast<const ElfW(Verdef)*>(p); break;
      case DT_GNU_HASH: tables->gnu_hash = reinterpret_cast<const uint32_t*>(p); break;
      case DT_HASH: tables->sysv_hash = reinterpret_cast<const ElfW(Word)*>(p); break;
      default: break;
    }
  }
  return tables->symbols != nullptr && tables->strings != nullptr &&
         tables->symbol_versions != nullptr && tables->version_definitions != nullptr;
}

// The name of version definition `index`, or nullptr.
const char* VersionName(const DynamicTables& tables, ElfW(Half) index) {
  const ElfW(Verdef)* definition = tables.version_definitions;
  while (true) {
    if (definition->vd_ndx == index && (definition->vd_flags & VER_FLG_BASE) == 0) {
      const auto* name = reinterpret_cast<const ElfW(Verdaux)*>(
          reinterpret_cast<const char*>(definition) + definition->vd_aux);
      return tables.strings + name->vda_name;
    }
    if (definition->vd_next == 0) return nullptr;
    definition = reinterpret_cast<const ElfW(Verdef)*>(reinterpret_cast<const char*>(definition) +
                                                       definition->vd_next);
  }
}

// The address symbol `index` defines when it is `name` at `version`, else 0.
uintptr_t Match(const DynamicTables& tables, uint32_t index, const char* name, const char* version) {
  const ElfW(Sym)& symbol = tables.symbols[index];
  int type = ELF64_ST_TYPE(symbol.st_info);  // the same bits in ELF32
  if (symbol.st_shndx == SHN_UNDEF || (type != STT_FUNC && type != STT_OBJECT) ||
      std::strcmp(tables.strings + symbol.st_name, name) != 0) {
    return 0;
  }
  const char* defined = VersionName(tables, tables.symbol_versions[index] & 0x7fff);
  if (defined == nullptr || std::strcmp(defined, version) != 0) return 0;
  return tables.base + symbol.st_value;
}

uint32_t GnuHash(const char* name) {
  uint32_t h = 5381;
  for (; *name != '\0'; ++name) h = h * 33 + static_cast<unsigned char>(*name);
  return h;
}

uint32_t SysvHash(const char* name) {
  uint32_t h = 0;
  for (; *name != '\0'; ++name) {
    h = (h << 4) + static_cast<unsigned char>(*name);
    uint32_t high = h & 0xf0000000u;
    h ^= high >> 24;
    h &= ~high;
  }
  return h;
}

// Every symbol of `name`'s hash chain is tried: an object that defines
// several versions of a name (dlvsym@GLIBC_2.2.5 and dlvsym@@GLIBC_2.34)
// holds one symbol for each.
uintptr_t Find(const DynamicTables& tables, const char* name, const char* version) {
  if (tables.gnu_hash != nullptr) {
    const uint32_t* header = tables.gnu_hash;  // buckets, first hashed symbol, bloom words, shift
    uint32_t buckets = header[0], first = header[1];
    if (buckets == 0) return 0;
    const uint32_t* bucket = header + 4 + header[2] * (sizeof(ElfW(Addr)) / sizeof(uint32_t));
    const uint32_t* chain = bucket + buckets;
    uint32_t hash = GnuHash(name);
    uint32_t index = bucket[hash % buckets];
    if (index == 0 || index < first) return 0;
    for (;; ++index) {
      uint32_t entry = chain[index - first];  // the symbol's hash, the low bit marking the chain's end
      if ((entry | 1) == (hash | 1)) {
        if (uintptr_t found = Match(tables, index, name, version)) return found;
      }
      if ((entry & 1) != 0) return 0;
    }
  }
  if (tables.sysv_hash != nullptr) {
    ElfW(Word) buckets = tables.sysv_hash[0];
    if (buckets == 0) return 0;
    const ElfW(Word)* bucket = tables.sysv_hash + 2;
    const ElfW(Word)* chain = bucket + buckets;
    for (ElfW(Word) index = bucket[SysvHash(name) % buckets]; index != STN_UNDEF; index = chain[index]) {
      if (uintptr_t found = Match(tables, index, name, version)) return found;
    }
  }
  return 0;
}

struct Search {
  const char* name;
  const char* version;
  uintptr_t found = 0;
};

int SearchObject(struct dl_phdr_info* info, size_t, void* data) {
  auto* search = static_cast<Search*>(data);
  DynamicTables tables;
  if (!ReadTables(*info, &tables)) return 0;
  search->found = Find(tables, search->name, search->version);
  return search->found != 0 ? 1 : 0;
}

}  // namespace

void* LookUpLoadedDefinition(const char* name, const char* version) {
  if (name == nullptr || version == nullptr) return nullptr;
  Search search{name, version};
  dl_iterate_phdr(SearchObject, &search);
  return reinterpret_cast<void*>(search.found);
}

}  // namespace tiercache::preload
