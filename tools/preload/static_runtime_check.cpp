#include "tools/preload/static_runtime_check.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string_view>

namespace tiercache::preload {
namespace {

// A name format the runtime uses for its shared-memory segments: in its
// code, in no header (enumerator names such as cudaErrorCudartUnloading sit
// in the debug information of any program built against the headers).
// Kept reversed and turned round at run time, so that a program holding this
// check (its unit test) does not itself look like the runtime.
constexpr std::string_view kRuntimeMarkerReversed = ".mhs.traduc/";

// True when the ELF's dynamic section names a libcudart as needed.
bool NeedsSharedRuntime(const char* data, size_t size) {
  if (size < sizeof(Elf64_Ehdr) || std::memcmp(data, ELFMAG, SELFMAG) != 0 ||
      data[EI_CLASS] != ELFCLASS64) {
    return false;
  }
  const auto* header = reinterpret_cast<const Elf64_Ehdr*>(data);
  if (header->e_phoff > size || header->e_phnum > (size - header->e_phoff) / sizeof(Elf64_Phdr)) {
    return false;
  }
  const auto* phdrs = reinterpret_cast<const Elf64_Phdr*>(data + header->e_phoff);
  const Elf64_Phdr* dynamic = nullptr;
  for (int i = 0; i < header->e_phnum; ++i) {
    if (phdrs[i].p_type == PT_DYNAMIC) dynamic = &phdrs[i];
  }
  if (dynamic == nullptr || dynamic->p_offset > size || dynamic->p_filesz > size - dynamic->p_offset) {
    return false;
  }
  // String table: DT_STRTAB is a virtual address; map it back to a file
  // offset through the PT_LOAD that holds it.
  const auto* entries = reinterpret_cast<const Elf64_Dyn*>(data + dynamic->p_offset);
  size_t count = dynamic->p_filesz / sizeof(Elf64_Dyn);
  uint64_t strtab = 0;
  for (size_t i = 0; i < count && entries[i].d_tag != DT_NULL; ++i) {
    if (entries[i].d_tag == DT_STRTAB) strtab = entries[i].d_un.d_ptr;
  }
  uint64_t strtab_offset = 0;
  bool mapped = false;
  for (int i = 0; i < header->e_phnum && !mapped; ++i) {
    const Elf64_Phdr& p = phdrs[i];
    if (p.p_type == PT_LOAD && strtab >= p.p_vaddr && strtab < p.p_vaddr + p.p_filesz) {
      strtab_offset = strtab - p.p_vaddr + p.p_offset;
      mapped = true;
    }
  }
  if (!mapped || strtab_offset >= size) return false;
  for (size_t i = 0; i < count && entries[i].d_tag != DT_NULL; ++i) {
    if (entries[i].d_tag != DT_NEEDED) continue;
    uint64_t at = strtab_offset + entries[i].d_un.d_val;
    if (at >= size) continue;
    std::string_view name(data + at, strnlen(data + at, size - at));
    if (name.rfind("libcudart.so", 0) == 0) return true;
  }
  return false;
}

}  // namespace

bool LinksStaticCudaRuntime(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size <= 0) {
    close(fd);
    return false;
  }
  size_t size = static_cast<size_t>(st.st_size);
  void* map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map == MAP_FAILED) return false;
  const char* data = static_cast<const char*>(map);
  bool is_elf = size >= SELFMAG && std::memcmp(data, ELFMAG, SELFMAG) == 0;
  std::string marker(kRuntimeMarkerReversed.rbegin(), kRuntimeMarkerReversed.rend());
  bool has_runtime = is_elf && memmem(data, size, marker.data(), marker.size()) != nullptr;
  bool result = has_runtime && !NeedsSharedRuntime(data, size);
  munmap(map, size);
  return result;
}

}  // namespace tiercache::preload
