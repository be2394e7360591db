"""A local filesystem whose disk fills up: every write past a byte budget fails with ENOSPC, as a full volume
(or an S3 upload refused for quota) fails a writer half-way through a file.

It is a real `pyarrow.fs` filesystem (a `PyFileSystem` over the local one), so the DMS engine and the Glue job
write through it unchanged. It is not "local" to them: like an object store, it needs no folder created before
a file is written, and the code under test takes its object-store path.
"""

from __future__ import annotations

import errno
import os

import pyarrow as pa
import pyarrow.fs as pafs


class Budget:
    """Bytes left on the simulated volume, shared by every file written through one filesystem."""

    def __init__(self, size: int):
        self.left = size
        self.refused = 0

    def take(self, n: int) -> None:
        if n > self.left:
            self.refused += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.left -= n


class _FillingStream:
    """A file object that writes to a real stream until the budget runs out."""

    def __init__(self, stream: pa.NativeFile, budget: Budget):
        self._stream, self._budget = stream, budget
        self.closed = False

    def write(self, data) -> int:
        size = memoryview(data).nbytes
        self._budget.take(size)
        return self._stream.write(data)

    def tell(self) -> int:
        return self._stream.tell()

    def flush(self) -> None:
        self._stream.flush()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._stream.close()


class DiskFullHandler(pafs.FileSystemHandler):
    def __init__(self, budget: Budget):
        self.fs, self.budget = pafs.LocalFileSystem(), budget

    def get_type_name(self):
        return "diskfull"

    def get_file_info(self, paths):
        return self.fs.get_file_info(paths)

    def get_file_info_selector(self, selector):
        return self.fs.get_file_info(selector)

    def create_dir(self, path, recursive):
        self.fs.create_dir(path, recursive=recursive)

    def delete_dir(self, path):
        self.fs.delete_dir(path)

    def delete_dir_contents(self, path, missing_dir_ok=False):
        self.fs.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self):
        raise OSError(errno.EPERM, "refusing to empty the root directory")

    def delete_file(self, path):
        self.fs.delete_file(path)

    def move(self, src, dest):
        self.fs.move(src, dest)

    def copy_file(self, src, dest):
        self.budget.take(self.fs.get_file_info(src).size or 0)
        self.fs.copy_file(src, dest)

    def open_input_stream(self, path):
        return self.fs.open_input_stream(path)

    def open_input_file(self, path):
        return self.fs.open_input_file(path)

    def open_output_stream(self, path, metadata):
        self.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        return pa.PythonFile(_FillingStream(self.fs.open_output_stream(path), self.budget), mode="w")

    def open_append_stream(self, path, metadata):
        return pa.PythonFile(_FillingStream(self.fs.open_append_stream(path), self.budget), mode="w")

    def normalize_path(self, path):
        return self.fs.normalize_path(path)


def filling_filesystem(budget_bytes: int) -> tuple[pafs.FileSystem, Budget]:
    """A local filesystem with `budget_bytes` of free space, and its budget (to see how much was refused)."""
    budget = Budget(budget_bytes)
    return pafs.PyFileSystem(DiskFullHandler(budget)), budget
