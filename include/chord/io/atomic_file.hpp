// chord/io/atomic_file.hpp: whole-file reads of bounded size, and writes that never leave a half-written file.
//
// write_file_atomic writes the bytes to a fresh temporary file next to the target (same directory, so
// same file system, so rename(2) is atomic), flushes it to disk with fsync, then renames it over the
// target. A reader therefore sees either the old file or the complete new one, never a torn mix, even if
// the process or the machine dies half-way. Around that:
//   - the temporary is named "<target>.chord-tmp.<pid>.<n>", so it is recognizable; on any failure it
//     is removed, and on SIGINT / SIGTERM / SIGHUP (where the program left those at their default) the
//     handler removes it before the process dies. A SIGKILL cannot be caught: the next save to the same
//     target removes the temporaries whose process no longer runs (stale_temporaries_of).
//   - only a regular file is replaced, never a symlink, FIFO, device or directory, nor a file with other
//     hard links (the rename would silently split them); the new file keeps the old one's mode.
//   - check_output_path lets a program check a target before hours of work, not only at the first save.
// read_file reads regular files only (a FIFO would hang, /dev/zero never end) of at most
// InputLimits::max_input_bytes. Errors are chord::Error naming the path and the system's reason.
//
// POSIX only (open/write/fsync/rename): the library targets Linux on x86-64 and AArch64.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/core/limits.hpp"

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
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(other.release()) {}
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

inline constexpr const char* kTemporaryMarker = ".chord-tmp.";

// A temporary name next to `path` that no other writer uses: the pid separates processes, the counter
// separates threads and calls of this process. O_EXCL below refuses to reuse a stale leftover.
inline std::string temporary_path_for(const std::string& path) {
  static std::atomic<std::uint64_t> counter{0};
  return path + kTemporaryMarker + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1));
}

// The directory holding `path` ("." for a bare file name), to fsync the rename into place.
inline std::string parent_directory_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// The temporaries being written right now, for the signal handler: fixed slots of plain chars, since a
// handler may only call async-signal-safe functions (unlink, signal, raise) and touch lock-free atomics.
struct TemporarySlot {
  std::atomic<bool> used{false};
  char path[4096] = {};
};
inline std::array<TemporarySlot, 16>& temporary_slots() {
  static std::array<TemporarySlot, 16> slots;
  return slots;
}

extern "C" inline void remove_temporaries_and_die(int signal_number) {
  for (TemporarySlot& slot : temporary_slots())
    if (slot.used.load()) ::unlink(slot.path);
  ::signal(signal_number, SIG_DFL);
  ::raise(signal_number);
}

// Installs the handler for the signals the program left at their default action (once per process).
inline void install_temporary_cleanup() {
  static const bool installed = [] {
    for (int signal_number : {SIGINT, SIGTERM, SIGHUP}) {
      struct sigaction current {};
      if (::sigaction(signal_number, nullptr, &current) != 0 || current.sa_handler != SIG_DFL) continue;
      struct sigaction action {};
      action.sa_handler = remove_temporaries_and_die;
      sigemptyset(&action.sa_mask);
      ::sigaction(signal_number, &action, nullptr);
    }
    return true;
  }();
  (void)installed;
}

// Registers a temporary for the handler while it exists (no slot free, or a path too long: not registered).
class RegisteredTemporary {
 public:
  explicit RegisteredTemporary(const std::string& path) {
    if (path.size() >= sizeof(TemporarySlot::path)) return;
    for (TemporarySlot& slot : temporary_slots()) {
      bool expected = false;
      if (slot.used.load() || !slot.used.compare_exchange_strong(expected, true)) continue;
      slot.used.store(false);  // not visible to the handler until the path is complete
      std::memcpy(slot.path, path.c_str(), path.size() + 1);
      slot.used.store(true);
      slot_ = &slot;
      return;
    }
  }
  RegisteredTemporary(const RegisteredTemporary&) = delete;
  RegisteredTemporary& operator=(const RegisteredTemporary&) = delete;
  ~RegisteredTemporary() {
    if (slot_ != nullptr) slot_->used.store(false);
  }

 private:
  TemporarySlot* slot_ = nullptr;
};

// Why `path` cannot be replaced ("" if it can): it must be absent or a regular file with one link.
inline std::string replace_refusal(const std::string& path, struct stat* existing, bool* exists) {
  struct stat info {};
  *exists = false;
  if (::lstat(path.c_str(), &info) != 0) {
    if (errno == ENOENT) return "";
    return "cannot inspect it: " + errno_text(errno);
  }
  *exists = true;
  if (existing != nullptr) *existing = info;
  if (S_ISLNK(info.st_mode)) return "it is a symbolic link (write to its target's path instead)";
  if (S_ISDIR(info.st_mode)) return "it is a directory";
  if (!S_ISREG(info.st_mode)) return "it is not a regular file (a FIFO, socket or device)";
  if (info.st_nlink > 1) return "it has " + std::to_string(info.st_nlink) + " hard links, which a rename would split";
  return "";
}

}  // namespace detail

// The temporaries "<path>.chord-tmp.<pid>.<n>" left by processes that no longer run (a SIGKILL during
// a save): their full paths.
inline std::vector<std::string> stale_temporaries_of(const std::string& path) {
  std::vector<std::string> stale;
  const std::string directory = detail::parent_directory_of(path);
  const auto slash = path.find_last_of('/');
  const std::string prefix = (slash == std::string::npos ? path : path.substr(slash + 1)) + detail::kTemporaryMarker;
  DIR* dir = ::opendir(directory.c_str());
  if (dir == nullptr) return stale;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string rest = name.substr(prefix.size());
    char* end = nullptr;
    const long pid = std::strtol(rest.c_str(), &end, 10);
    if (pid <= 0 || end == rest.c_str() || *end != '.') continue;
    // This process's own temporaries may be another thread's save in progress: never stale.
    if (pid != ::getpid() && ::kill(pid_t(pid), 0) != 0 && errno == ESRCH) stale.push_back(directory + "/" + name);
  }
  ::closedir(dir);
  return stale;
}

// Throws unless `path` can be written by write_file_atomic: a regular file (or nothing) in an existing,
// writable directory. Call it before long work whose result goes there.
inline void check_output_path(const std::string& path) {
  CHORD_CHECK(!path.empty(), "output path is empty");
  struct stat existing {};
  bool exists = false;
  const std::string refusal = detail::replace_refusal(path, &existing, &exists);
  CHORD_CHECK(refusal.empty(), "cannot write '", path, "': ", refusal);
  const std::string directory = detail::parent_directory_of(path);
  struct stat info {};
  CHORD_CHECK(::stat(directory.c_str(), &info) == 0 && S_ISDIR(info.st_mode), "cannot write '", path,
              "': directory '", directory, "' does not exist");
  CHORD_CHECK(::access(directory.c_str(), W_OK | X_OK) == 0, "cannot write '", path, "': directory '", directory,
              "' is not writable: ", detail::errno_text(errno));
}


// Replaces the file at `path` with `size` bytes from `data`, atomically (see the header comment).
inline void write_file_atomic(const std::string& path, const void* data, std::size_t size) {
  CHORD_CHECK(!path.empty(), "write_file_atomic: empty path");
  CHORD_CHECK(data != nullptr || size == 0, "write_file_atomic '", path, "': null data");
  struct stat existing {};
  bool exists = false;
  const std::string refusal = detail::replace_refusal(path, &existing, &exists);
  CHORD_CHECK(refusal.empty(), "cannot write '", path, "': ", refusal);
  for (const std::string& stale : stale_temporaries_of(path)) ::unlink(stale.c_str());
  detail::install_temporary_cleanup();
  const std::string temp = detail::temporary_path_for(path);
  const detail::RegisteredTemporary registered(temp);

  // Everything that can fail after the temporary exists goes through here: remove it, keep the old file.
  auto fail = [&](const char* step, int error) {
    ::unlink(temp.c_str());
    throw Error(detail::error_message("cannot write '", path, "': ", step, " '", temp, "': ",
                                      detail::errno_text(error)));
  };

  detail::FileDescriptor fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666));  // umask applies
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
  if (exists && ::fchmod(fd.get(), existing.st_mode & 07777) != 0) fail("keeping the mode of the target on", errno);
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

namespace detail {

// Opens `path` for reading if it is a regular file (its stat in `info`); anything else is refused
// before a byte is read.
inline FileDescriptor open_regular_file(const std::string& path, struct stat& info) {
  CHORD_CHECK(!path.empty(), "read_file: empty path");
  // O_NONBLOCK: opening a FIFO must not wait for a writer; the type is refused right after.
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) {
    const int error = errno;
    throw Error(error_message("cannot open '", path, "': ", errno_text(error)));
  }
  if (::fstat(fd.get(), &info) != 0) {
    const int error = errno;
    throw Error(error_message("cannot read '", path, "': ", errno_text(error)));
  }
  CHORD_CHECK(S_ISREG(info.st_mode), "cannot read '", path, "': ",
              S_ISDIR(info.st_mode) ? "it is a directory" : "it is not a regular file (a FIFO, socket or device)");
  return fd;
}

// Appends the bytes of the regular file at `path` to `out` (a byte container), at most `limit` bytes.
template <typename Container>
void read_regular_file(const std::string& path, std::uint64_t limit, Container& out) {
  struct stat info {};
  const FileDescriptor fd = open_regular_file(path, info);
  CHORD_CHECK(std::uint64_t(info.st_size) <= limit, "cannot read '", path, "': ", info.st_size,
              " bytes exceed the limit of ", limit, " (InputLimits::max_input_bytes)");
  out.reserve(std::size_t(info.st_size));
  std::vector<char> chunk(std::size_t(1) << 16);  // on the heap: device threads have small stacks
  std::uint64_t total = 0;
  for (;;) {
    const ::ssize_t n = ::read(fd.get(), chunk.data(), chunk.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      throw Error(error_message("cannot read '", path, "': ", errno_text(error)));
    }
    if (n == 0) break;
    total += std::uint64_t(n);
    CHORD_CHECK(total <= limit, "cannot read '", path, "': it grows past the limit of ", limit,
                " bytes (InputLimits::max_input_bytes)");
    out.insert(out.end(), chunk.begin(), chunk.begin() + n);
  }
}

}  // namespace detail

// The first (at most) `max_bytes` bytes of the regular file at `path`, and its size: what file-type
// sniffing reads (io/file_kind.hpp). FIFOs, devices and directories are refused as read_file does.
inline std::vector<std::uint8_t> read_file_head(const std::string& path, std::size_t max_bytes,
                                               std::uint64_t& file_size) {
  struct stat info {};
  const detail::FileDescriptor fd = detail::open_regular_file(path, info);
  file_size = std::uint64_t(info.st_size);
  std::vector<std::uint8_t> head(std::min<std::uint64_t>(max_bytes, file_size));
  std::size_t got = 0;
  while (got < head.size()) {
    const ::ssize_t n = ::read(fd.get(), head.data() + got, head.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int error = errno;
      throw Error(detail::error_message("cannot read '", path, "': ", detail::errno_text(error)));
    }
    if (n == 0) break;
    got += std::size_t(n);
  }
  head.resize(got);
  return head;
}

// All bytes of the regular file at `path` (see the header comment). Errors name the path.
inline std::vector<std::uint8_t> read_file(const std::string& path, const InputLimits& limits = default_limits()) {
  std::vector<std::uint8_t> bytes;
  detail::read_regular_file(path, limits.max_input_bytes, bytes);
  return bytes;
}

}  // namespace chord
