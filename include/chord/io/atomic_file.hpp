// chord/io/atomic_file.hpp: whole-file reads, and writes that never leave a half-written file.
//
// write_file_atomic writes the bytes to a fresh temporary file next to the target (same directory, so
// same file system, so rename(2) is atomic), flushes it to disk with fsync, then renames it over the
// target. A reader therefore sees either the old file or the complete new one, never a torn mix, even if
// the process or the machine dies half-way. On any failure the temporary file is removed, the old file is
// left untouched, and chord::Error names the path and the system's reason.
//
// POSIX only (open/write/fsync/rename): the library targets Linux on x86-64 and AArch64.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string>
#include <system_error>
#include <vector>

#include "chord/core/error.hpp"

namespace chord {

namespace detail {

// The system's text for an errno value; std::system_category is thread-safe, unlike strerror.
inline std::string errno_text(int error) { return std::system_category().message(error); }

// Closes a file descriptor when it goes out of scope (error paths); release() hands it back.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

// A temporary name next to `path` that no other writer uses: the pid separates processes, the counter
// separates threads and calls of this process. O_EXCL below refuses to reuse a stale leftover.
inline std::string temporary_path_for(const std::string& path) {
  static std::atomic<std::uint64_t> counter{0};
  return path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1));
}

// The directory holding `path` ("." for a bare file name), to fsync the rename into place.
inline std::string parent_directory_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace detail

// Replaces the file at `path` with `size` bytes from `data`, atomically (see the header comment).
inline void write_file_atomic(const std::string& path, const void* data, std::size_t size) {
  CHORD_CHECK(!path.empty(), "write_file_atomic: empty path");
  CHORD_CHECK(data != nullptr || size == 0, "write_file_atomic '", path, "': null data");
  const std::string temp = detail::temporary_path_for(path);

  // Everything that can fail after the temporary exists goes through here: remove it, keep the old file.
  auto fail = [&](const char* step, int error) {
    ::unlink(temp.c_str());
    throw Error(detail::error_message("cannot write '", path, "': ", step, " '", temp, "': ",
                                      detail::errno_text(error)));
  };

  detail::FileDescriptor fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (fd.get() < 0) {
    const int error = errno;  // nothing was created: nothing to remove
    throw Error(detail::error_message("cannot write '", path, "': cannot create temporary file '", temp,
                                      "': ", detail::errno_text(error)));
  }

  const auto* bytes = static_cast<const std::uint8_t*>(data);
  std::size_t written = 0;
  while (written < size) {
    const ::ssize_t n = ::write(fd.get(), bytes + written, size - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("write to", errno);
    }
    if (n == 0) fail("write to", EIO);  // no progress and no errno: treat as an I/O error
    written += static_cast<std::size_t>(n);
  }
  // fsync before rename: otherwise a crash could leave the new name pointing at an empty file.
  if (::fsync(fd.get()) != 0) fail("fsync of", errno);
  // close can report a delayed write error (NFS): it must be checked before the file replaces the old one.
  if (::close(fd.release()) != 0) fail("close of", errno);
  if (::rename(temp.c_str(), path.c_str()) != 0) fail("rename over the target of", errno);

  // Make the rename itself durable. Best effort: the new file is already complete and in place, and some
  // file systems refuse fsync on a directory, so a failure here is not reported as a failed write.
  const int dir = ::open(detail::parent_directory_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    (void)::fsync(dir);
    ::close(dir);
  }
}

inline void write_file_atomic(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  write_file_atomic(path, bytes.data(), bytes.size());
}

// All bytes of the file at `path`. Errors name the path and the system's reason.
inline std::vector<std::uint8_t> read_file(const std::string& path) {
  CHORD_CHECK(!path.empty(), "read_file: empty path");
  detail::FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    const int error = errno;
    throw Error(detail::error_message("cannot open '", path, "': ", detail::errno_text(error)));
  }
  std::vector<std::uint8_t> bytes;
  struct stat info {};
  if (::fstat(fd.get(), &info) == 0 && S_ISREG(info.st_mode) && info.st_size > 0)
    bytes.reserve(static_cast<std::size_t>(info.st_size));  // a hint only: the loop reads to EOF

  std::vector<std::uint8_t> chunk(std::size_t(1) << 16);  // on the heap: device threads have small stacks
  for (;;) {
    const ::ssize_t n = ::read(fd.get(), chunk.data(), chunk.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      throw Error(detail::error_message("cannot read '", path, "': ", detail::errno_text(error)));
    }
    if (n == 0) break;
    bytes.insert(bytes.end(), chunk.begin(), chunk.begin() + n);
  }
  return bytes;
}

}  // namespace chord
