// A fixed-size array of trivially copyable T in zero-filled anonymous memory: pages become
// resident only when first written, so a large client table costs nothing until clients
// arrive, and the bound is still fixed at start.
//
// Pages::kHuge asks the kernel for transparent huge pages (2 MiB, MADV_HUGEPAGE; the mapping
// is aligned to 2 MiB so that every part of it can have them): a table read at random
// addresses then misses the TLB once per 2 MiB instead of once per 4 KiB. That is most of the
// cost of a random lookup in a table larger than the TLB's reach, more so in a virtual machine,
// where a TLB miss walks two page tables. Where the kernel has no huge pages to give (THP
// "never", or no free 2 MiB frames) the memory is ordinary pages: the same array, slower.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

namespace strata::clients {

enum class Pages : uint8_t { kSmall, kHuge };

template <class T>
class ZeroedArray {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  static constexpr size_t kPage = 4096;
  static constexpr size_t kHugePage = size_t{2} << 20;

  ZeroedArray() = default;
  explicit ZeroedArray(size_t n, Pages pages = Pages::kSmall) : pages_(pages) {
    if (n == 0) return;
    mapped_bytes_ = round_up(n * sizeof(T));
    data_ = static_cast<T*>(map(mapped_bytes_));
    size_ = n;
  }
  ~ZeroedArray() { release(); }
  ZeroedArray(const ZeroedArray&) = delete;
  ZeroedArray& operator=(const ZeroedArray&) = delete;
  ZeroedArray(ZeroedArray&& o) noexcept { swap(o); }
  ZeroedArray& operator=(ZeroedArray&& o) noexcept {
    if (this != &o) {
      release();
      swap(o);
    }
    return *this;
  }
  // Grows to `n` elements (never shrinks), keeping the contents without copying them: the
  // pages move into a new, larger mapping (mremap), and the new part is zero and not yet
  // resident. Pointers into the array are invalid afterwards.
  void grow(size_t n) {
    if (n <= size_) return;
    const size_t length = round_up(n * sizeof(T));
    if (length > mapped_bytes_) {
      void* to = map(length);
      if (data_ != nullptr) {
        // Onto the start of the new mapping, which is aligned as the old one was, so that huge
        // pages move whole.
        if (::mremap(data_, mapped_bytes_, mapped_bytes_, MREMAP_MAYMOVE | MREMAP_FIXED, to) == MAP_FAILED) {
          std::memcpy(to, data_, mapped_bytes_);
          ::munmap(data_, mapped_bytes_);
        }
      }
      data_ = static_cast<T*>(to);
      mapped_bytes_ = length;
    }
    size_ = n;
  }

  void swap(ZeroedArray& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(mapped_bytes_, o.mapped_bytes_);
    std::swap(pages_, o.pages_);
  }

  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return size_; }
  size_t bytes() const { return size_ * sizeof(T); }
  size_t mapped_bytes() const { return mapped_bytes_; }

 private:
  size_t round_up(size_t b) const {
    const size_t unit = pages_ == Pages::kHuge ? kHugePage : kPage;
    return (b + unit - 1) / unit * unit;
  }
  // `length` octets of zero memory, 2 MiB aligned with MADV_HUGEPAGE for huge pages.
  void* map(size_t length) const {
    if (pages_ == Pages::kSmall) {
      void* p = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) throw std::bad_alloc();
      return p;
    }
    // Map 2 MiB more than needed, then give back what lies outside the aligned part.
    void* p = ::mmap(nullptr, length + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    const auto start = reinterpret_cast<uintptr_t>(p);
    const uintptr_t aligned = (start + kHugePage - 1) / kHugePage * kHugePage;
    if (aligned > start) ::munmap(p, aligned - start);
    const uintptr_t tail = start + length + kHugePage - (aligned + length);
    if (tail > 0) ::munmap(reinterpret_cast<void*>(aligned + length), tail);
    ::madvise(reinterpret_cast<void*>(aligned), length, MADV_HUGEPAGE);  // a hint: ignored where THP is off
    return reinterpret_cast<void*>(aligned);
  }

  void release() {
    if (data_ != nullptr) ::munmap(data_, mapped_bytes_);
    data_ = nullptr;
    size_ = mapped_bytes_ = 0;
  }

  T* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_bytes_ = 0;  // bytes(), rounded up to the page size
  Pages pages_ = Pages::kSmall;
};

}  // namespace strata::clients
