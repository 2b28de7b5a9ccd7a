"""All-or-nothing publication on S3 (moto server), GCS (gcp-storage-emulator) and Azure
(Azurite): the server goes away between two files of a run. The servers keep their data
in memory, so the outage is a loopback TCP proxy in front of the real server, cut (its
listener closed, its connections dropped) right after the run's first file and restored
after the failure. The old window is then intact, beside only the one file the run put
before the cut (at a name no manifest ever listed), and the re-run publishes exactly
the new window."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

import pytest

from exporter_pipeline.destinations import Destination, ObjectInfo
from exporter_pipeline.errors import RetryableDestinationError
from exporter_pipeline.exports.execution import ExportFailed, export_window
from exporter_pipeline.exports.naming import data_key_time
from exporter_pipeline_tests.cloud import CloudServer
from exporter_pipeline_tests.exports.conftest import Lake, definition
from exporter_pipeline_tests.exports.publish_checks import (
    END,
    MANIFEST,
    START,
    assert_window,
    contents,
    listed,
)
from exporter_pipeline_tests.servers import free_port

RUN_A = {"format": "parquet", "max_file_bytes": 100_000}
RUN_B = {"format": "parquet", "compression": "uncompressed", "max_file_bytes": 100_000}


class CuttableProxy:
    """A TCP proxy on 127.0.0.1 to `upstream`: `cut` closes its listener and drops every
    connection (the server is unreachable), `restore` listens again on the same port."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        self.listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))
        listener.settimeout(0.1)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while self.listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            upstream = socket.create_connection(("127.0.0.1", self.upstream))
            with self.lock:
                self.sockets += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(source, target), daemon=True).start()

    def cut(self) -> None:
        listener, self.listener = self.listener, None
        if listener is not None:
            listener.close()
        with self.lock:
            for connection in self.sockets:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()
            self.sockets.clear()


def _pipe(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(1 << 16):
            target.sendall(data)
    for end in (source, target):  # either side gone: the connection is over
        with contextlib.suppress(OSError):
            end.shutdown(socket.SHUT_RDWR)


class CutAfterFirstFile(Destination):
    """The real destination, with the proxy cut once the run's first file is up."""

    def __init__(self, inner: Destination, proxy: CuttableProxy) -> None:
        self.inner, self.proxy = inner, proxy
        self.files: list[str] = []
        self.prefix = inner.prefix

    def move_file(self, local_path: Path, key: str) -> None:
        self.inner.move_file(local_path, key)
        self.files.append(key)
        if len(self.files) == 1:
            self.proxy.cut()

    def uri(self, key: str = "") -> str:
        return self.inner.uri(key)

    def put_stream(self, stream: BinaryIO, size: int, key: str) -> None:
        self.inner.put_stream(stream, size, key)

    def signed_url(self, key: str, expires: timedelta = timedelta(days=7)) -> str:
        return self.inner.signed_url(key, expires)

    def download(self, key: str, local_path: Path) -> None:
        self.inner.download(key, local_path)

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self.inner.delete(key)


@pytest.fixture
def proxies() -> Iterator[list[CuttableProxy]]:
    started: list[CuttableProxy] = []
    yield started
    for proxy in started:
        proxy.cut()


@pytest.mark.parametrize("kind", ["s3", "gcs", "azure"])
def test_server_gone_between_two_files_leaves_the_old_window(
    kind: str, lake: Lake, cloud_servers: dict[str, CloudServer], proxies: list[CuttableProxy]
) -> None:
    server = cloud_servers[kind]
    proxy = CuttableProxy(server.port)
    proxies.append(proxy)
    via = f"http://127.0.0.1:{proxy.port}"
    address = {
        "s3": {"TEST_S3_ENDPOINT": via},
        "gcs": {"STORAGE_EMULATOR_HOST": via},
        "azure": {"TEST_AZ_URL": server.url.replace(f":{server.port}", f":{proxy.port}")},
    }[kind]
    with server.destination(server.new_bucket(), prefix="tenant", **address) as output:
        export_window(definition(**RUN_A), START, END, lake.store, output, "run-a")
        old = output.get_bytes(MANIFEST)
        old_files = contents(output, old)
        assert len(old_files) == 4

        cutting = CutAfterFirstFile(output, proxy)
        with pytest.raises(ExportFailed) as failed:
            export_window(definition(**RUN_B), START, END, lake.store, cutting, "run-b")
        assert isinstance(failed.value.__cause__, RetryableDestinationError)
        assert len(cutting.files) == 1  # the second file never arrived
        proxy.restore()

        # The old window is intact. The one file put before the cut could not be removed
        # (the server was gone): it sits at a versioned name no manifest lists.
        put = cutting.files[0]
        assert put not in old_files and data_key_time("exp", put) == START
        assert_window(output, old, old_files, also=(put,))

        result = export_window(definition(**RUN_B), START, END, lake.store, output, "run-b2")
        new = output.get_bytes(MANIFEST)
        assert [f.key for f in result.files] == list(listed(new)) and put in listed(new)
        assert_window(output, new, contents(output, new))
        assert sorted(result.removed) == sorted(old_files)
