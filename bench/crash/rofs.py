#!/usr/bin/env python3
"""bench/crash/rofs.py: a pass-through FUSE filesystem whose writes can be turned off while a
broker has its journal open on it: the "read-only data directory mid-run" of the crash
campaign (bench/crash/disk.sh).

A real mount cannot be made read-only under a process that holds a file open for writing
(the kernel answers EBUSY), and this machine's kernel has no device-mapper to swap a disk
for a failing one. So the data directory is served through this process: while the file
FLAG exists, every call that would change the disk (write, truncate, fsync, create, unlink,
rename, mkdir, ...) fails with EROFS, as on a filesystem remounted read-only after an error;
once FLAG is removed they work again. Reads always work.

    rofs.py SOURCE MOUNTPOINT FLAG      (runs in the foreground until unmounted)

Needs fusepy and libfuse2 (bench/crash/disk.sh installs them).
"""

import errno
import os
import sys

from fuse import FUSE, FuseOSError, Operations


class Passthrough(Operations):
    def __init__(self, root, flag):
        self.root, self.flag = root, flag

    def _path(self, path):
        return os.path.join(self.root, path.lstrip("/"))

    def _writable(self):
        if os.path.exists(self.flag):
            raise FuseOSError(errno.EROFS)

    # ---- reads ----
    def getattr(self, path, fh=None):
        st = os.lstat(self._path(path))
        return {k: getattr(st, k) for k in ("st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime",
                                            "st_nlink", "st_size", "st_uid", "st_blocks")}

    def readdir(self, path, fh):
        return [".", ".."] + os.listdir(self._path(path))

    def statfs(self, path):
        st = os.statvfs(self._path(path))
        return {k: getattr(st, k) for k in ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail",
                                            "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax")}

    def open(self, path, flags):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_TRUNC | os.O_APPEND):
            self._writable()
        return os.open(self._path(path), flags)

    def read(self, path, size, offset, fh):
        return os.pread(fh, size, offset)

    def release(self, path, fh):
        return os.close(fh)

    def access(self, path, mode):
        if not os.access(self._path(path), mode):
            raise FuseOSError(errno.EACCES)

    # ---- writes ----
    def create(self, path, mode, fi=None):
        self._writable()
        return os.open(self._path(path), os.O_RDWR | os.O_CREAT, mode)

    def write(self, path, data, offset, fh):
        self._writable()
        return os.pwrite(fh, data, offset)

    def truncate(self, path, length, fh=None):
        self._writable()
        if fh is not None:
            os.ftruncate(fh, length)
        else:
            os.truncate(self._path(path), length)

    def fsync(self, path, datasync, fh):
        self._writable()
        return os.fdatasync(fh) if datasync else os.fsync(fh)

    def fsyncdir(self, path, datasync, fh):
        self._writable()
        return 0

    def flush(self, path, fh):
        return 0

    def unlink(self, path):
        self._writable()
        os.unlink(self._path(path))

    def rename(self, old, new):
        self._writable()
        os.rename(self._path(old), self._path(new))

    def mkdir(self, path, mode):
        self._writable()
        os.mkdir(self._path(path), mode)

    def rmdir(self, path):
        self._writable()
        os.rmdir(self._path(path))

    def chmod(self, path, mode):
        self._writable()
        os.chmod(self._path(path), mode)

    def utimens(self, path, times=None):
        self._writable()
        os.utime(self._path(path), times)


if __name__ == "__main__":
    source, mountpoint, flag = sys.argv[1:4]
    FUSE(Passthrough(source, flag), mountpoint, foreground=True, nothreads=False)
