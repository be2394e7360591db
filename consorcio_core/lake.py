"""The lake's filesystem: an S3 bucket (s3://bucket/prefix) or a local directory laid out like it (file:///dir),
both reached through `pyarrow.fs`, so the same code reads and writes either."""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlparse

import pyarrow.fs as pafs


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, root path) of a lake or file URI; S3 endpoint and region from the usual AWS variables."""
    if uri.startswith("s3://"):
        parsed = urlparse(uri)
        fs = pafs.S3FileSystem(
            endpoint_override=os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"),
            region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        )
        return fs, f"{parsed.netloc}{parsed.path}".rstrip("/")
    if "://" not in uri:
        return pafs.LocalFileSystem(), os.path.abspath(uri).rstrip("/")
    fs, path = pafs.FileSystem.from_uri(uri)
    return fs, path.rstrip("/")


@dataclass
class LakeFiles:
    """An opened lake: its filesystem, root path and URI, with the listing and naming the job needs."""

    fs: pafs.FileSystem
    root: str
    uri: str

    @staticmethod
    def at(uri: str) -> LakeFiles:
        return LakeFiles(*filesystem(uri), uri.rstrip("/"))

    def uri_of(self, path: str) -> str:
        return f"{self.uri}/{self.relative(path)}"

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def relative(self, path: str) -> str:
        return path[len(self.root) + 1 :] if path.startswith(self.root + "/") else path

    def exists(self, path: str) -> bool:
        return self.fs.get_file_info(path).type != pafs.FileType.NotFound

    def files_under(self, base: str) -> list[pafs.FileInfo]:
        """Files below `base`, skipping hidden and temporary folders (names starting with . or _)."""
        infos = self.fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
        out = []
        for info in infos:
            rel = info.path[len(base) + 1 :]
            if info.type == pafs.FileType.File and not any(part[:1] in "._" for part in rel.split("/")):
                out.append(info)
        return sorted(out, key=lambda i: i.path)

    def delete_dir(self, path: str) -> None:
        if self.exists(path):
            self.fs.delete_dir(path)
