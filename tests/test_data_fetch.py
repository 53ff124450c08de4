"""steik fetch against a local HTTP server: downloads, lock files, failures, manual archives."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import socket
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from steik.data import fetch as fetch_module
from steik.data.fetch import FetchConfig, fetch, manual_path
from steik.data.registry import Dataset, Source, list_shapes, read_lock
from steik.errors import SteikError

FAST = FetchConfig(retries=0, timeout=5.0, progress=False)
SCAN = b"0 0 0\n1 0 0\n0 1 0\n0 0 1\n"


def make_archive(kind: str, files: dict[str, bytes]) -> bytes:
    """Bytes of a zip / tar.gz / tar.xz archive holding `files`."""
    buffer = io.BytesIO()
    if kind == "zip":
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, data in files.items():
                archive.writestr(name, data)
    else:
        mode = {"tar.gz": "w:gz", "tar.xz": "w:xz"}[kind]
        with tarfile.open(fileobj=buffer, mode=mode) as archive:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class Server:
    """A threaded HTTP server on 127.0.0.1: `files` maps paths to bytes; `/drop/...` sends half
    of the file with the full Content-Length and closes; anything else is a 404."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                path = self.path.split("?")[0]
                drop = path.startswith("/drop/")
                data = server.files.get(path.removeprefix("/drop") if drop else path)
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2] if drop else data)
                if drop:
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.close()


@pytest.fixture(autouse=True)
def no_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(fetch_module.MIRROR_ENV, raising=False)


def refused_url() -> str:
    """A URL on a local port where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/toy.zip"


def toy(kind: str = "zip", url: str | None = None, gdrive_id: str | None = None) -> Dataset:
    """A one-shape download dataset whose archive holds `toy/bunny.xyz`."""
    source = Source(f"toy.{kind}", kind, url=url, gdrive_id=gdrive_id)
    return Dataset(
        name="toy",
        kind="download",
        ground_truth="none",
        shapes=("bunny",),
        sources=(source,),
        layout={"scan": "toy/{shape}.xyz"},
    )


def leftovers(root: Path) -> list[str]:
    """Every path under root (relative), to prove that a failure left nothing behind."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("kind", ["zip", "tar.gz", "tar.xz"])
def test_first_fetch_downloads_extracts_locks_and_second_makes_no_request(
    server: Server, tmp_path: Path, kind: str
) -> None:
    data = make_archive(kind, {"toy/bunny.xyz": SCAN})
    server.files[f"/toy.{kind}"] = data
    dataset = toy(kind, url=f"{server.url}/toy.{kind}")
    lock = fetch(dataset, tmp_path, FAST)
    assert lock == tmp_path / "toy.lock.json"
    content = json.loads(lock.read_text())
    assert content["files"][0]["sha256"] == hashlib.sha256(data).hexdigest()
    assert content["shapes"] == ["bunny"]
    assert (tmp_path / "toy" / "toy" / "bunny.xyz").read_bytes() == SCAN
    assert manual_path(dataset.sources[0], tmp_path).read_bytes() == data
    assert len(server.requests) == 1
    stamp = lock.stat().st_mtime_ns
    fetch(dataset, tmp_path, FAST)
    assert len(server.requests) == 1
    assert lock.stat().st_mtime_ns == stamp


def test_changed_archive_fails_and_keeps_previous_extraction(
    server: Server, tmp_path: Path
) -> None:
    server.files["/toy.zip"] = make_archive("zip", {"toy/bunny.xyz": SCAN})
    dataset = toy(url=f"{server.url}/toy.zip")
    fetch(dataset, tmp_path, FAST)
    changed = make_archive("zip", {"toy/bunny.xyz": SCAN + b"2 2 2\n"})
    archive = manual_path(dataset.sources[0], tmp_path)
    archive.write_bytes(changed)
    with pytest.raises(SteikError, match="sha256"):
        fetch(dataset, tmp_path, FAST)
    assert (tmp_path / "toy" / "toy" / "bunny.xyz").read_bytes() == SCAN
    # A re-download that differs from the lock is refused too, and leaves no archive behind.
    archive.unlink()
    shutil.rmtree(tmp_path / "toy")
    server.files["/toy.zip"] = changed
    before = len(server.requests)
    with pytest.raises(SteikError, match="sha256"):
        fetch(dataset, tmp_path, FAST)
    assert len(server.requests) == before + 1
    assert leftovers(tmp_path) == ["toy.lock.json"]


def assert_clean_failure(error: SteikError, url: str, root: Path) -> None:
    """The one message names the URL, the manual path and the retry command; nothing is left."""
    message = str(error)
    assert url in message
    assert str(root / "downloads" / "toy.zip") in message
    assert f"steik fetch toy --root {root}" in message
    assert leftovers(root) == []
    assert not (root / "toy").exists()


@pytest.mark.parametrize("failure", ["404", "refused", "dropped"])
def test_network_failures_give_one_clear_message_and_leave_nothing(
    server: Server, tmp_path: Path, failure: str
) -> None:
    server.files["/toy.zip"] = make_archive("zip", {"toy/bunny.xyz": SCAN * 2000})
    url = {
        "404": f"{server.url}/missing.zip",
        "refused": refused_url(),
        "dropped": f"{server.url}/drop/toy.zip",
    }[failure]
    with pytest.raises(SteikError) as caught:
        fetch(toy(url=url), tmp_path, FAST)
    assert_clean_failure(caught.value, url, tmp_path)


def test_google_drive_path_through_local_server(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_archive("zip", {"toy/bunny.xyz": SCAN})
    server.files["/gdrive/FILEID"] = data
    monkeypatch.setattr(
        fetch_module, "gdrive_url", lambda file_id: f"{server.url}/gdrive/{file_id}"
    )
    dataset = toy(gdrive_id="FILEID")
    lock = fetch(dataset, tmp_path, FAST)
    assert read_lock("toy", tmp_path)["files"][0]["sha256"] == hashlib.sha256(data).hexdigest()
    assert lock.is_file() and server.requests == ["/gdrive/FILEID"]
    assert (tmp_path / "toy" / "toy" / "bunny.xyz").read_bytes() == SCAN


@pytest.mark.parametrize("failure", ["404", "dropped"])
def test_google_drive_failures_are_clear(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    server.files["/gdrive/FILEID"] = make_archive("zip", {"toy/bunny.xyz": SCAN * 2000})
    prefix = "/drop" if failure == "dropped" else ""
    file_id = "FILEID" if failure == "dropped" else "NOSUCHID"
    monkeypatch.setattr(fetch_module, "gdrive_url", lambda i: f"{server.url}{prefix}/gdrive/{i}")
    with pytest.raises(SteikError) as caught:
        fetch(toy(gdrive_id=file_id), tmp_path, FAST)
    assert_clean_failure(caught.value, f"{server.url}{prefix}/gdrive/{file_id}", tmp_path)


def test_manual_archive_is_used_offline(tmp_path: Path) -> None:
    dataset = toy(url=refused_url())
    data = make_archive("zip", {"toy/bunny.xyz": SCAN})
    target = manual_path(dataset.sources[0], tmp_path)
    target.parent.mkdir(parents=True)
    target.write_bytes(data)
    fetch(dataset, tmp_path, FAST)
    assert read_lock("toy", tmp_path)["files"][0]["sha256"] == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "toy" / "toy" / "bunny.xyz").read_bytes() == SCAN


def test_mirror_variable_redirects_downloads(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.files["/mirror/toy.zip"] = make_archive("zip", {"toy/bunny.xyz": SCAN})
    monkeypatch.setenv(fetch_module.MIRROR_ENV, f"{server.url}/mirror/")
    fetch(toy(gdrive_id="UNUSED"), tmp_path, FAST)
    assert server.requests == ["/mirror/toy.zip"]


def test_corrupt_or_incomplete_archive_is_refused(server: Server, tmp_path: Path) -> None:
    server.files["/toy.zip"] = b"this is not a zip archive"
    with pytest.raises(SteikError, match="could not be extracted as a zip"):
        fetch(toy(url=f"{server.url}/toy.zip"), tmp_path, FAST)
    assert not (tmp_path / "toy").exists() and not (tmp_path / "toy.lock.json").exists()
    (tmp_path / "downloads" / "toy.zip").unlink()
    server.files["/toy.zip"] = make_archive("zip", {"toy/other.xyz": SCAN})
    with pytest.raises(SteikError, match="bunny"):
        fetch(toy(url=f"{server.url}/toy.zip"), tmp_path, FAST)
    assert not (tmp_path / "toy").exists() and not (tmp_path / "toy.lock.json").exists()


def test_generated_datasets_write_files_and_lock_once(tmp_path: Path) -> None:
    lock = fetch("demo2d", tmp_path)
    content = json.loads(lock.read_text())
    for record in content["files"]:
        data = (tmp_path / "demo2d" / record["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == record["sha256"]
    assert content["shapes"] == list_shapes("demo2d")
    stamp = lock.stat().st_mtime_ns
    fetch("demo2d", tmp_path)
    assert lock.stat().st_mtime_ns == stamp
    (tmp_path / "demo2d" / "circle.npy").write_bytes(b"tampered")
    fetch("demo2d", tmp_path)
    assert (
        hashlib.sha256((tmp_path / "demo2d" / "circle.npy").read_bytes()).hexdigest()
        == (content["files"][0]["sha256"])
    )


def test_folder_dataset_lock_records_each_file(tmp_path: Path) -> None:
    data = tmp_path / "scans"
    data.mkdir()
    (data / "a.xyz").write_bytes(SCAN)
    (data / "b.xyz").write_bytes(SCAN + b"1 1 1\n")
    (data / "notes.txt").write_text("ignored by the pattern")
    entry = {"name": "mine", "kind": "folder", "path": str(data), "pattern": "*.xyz"}
    assert list_shapes(entry) == ["a", "b"]
    lock = json.loads(fetch(entry, tmp_path / "res").read_text())
    assert {f["name"]: f["sha256"] for f in lock["files"]} == {
        "a": hashlib.sha256(SCAN).hexdigest(),
        "b": hashlib.sha256(SCAN + b"1 1 1\n").hexdigest(),
    }
    (data / "a.ply").write_bytes(b"ply\n")
    with pytest.raises(SteikError, match="both give the shape name 'a'"):
        list_shapes({**entry, "pattern": "*"})


def test_shapenet_shapes_need_a_fetch_first(tmp_path: Path) -> None:
    with pytest.raises(SteikError, match="steik fetch shapenet"):
        list_shapes("shapenet", tmp_path)
    assert list_shapes("srb", tmp_path) == ["anchor", "daratech", "dc", "gargoyle", "lord_quas"]


def test_tar_members_escaping_the_folder_are_refused(tmp_path: Path) -> None:
    dataset = toy("tar.gz", url=refused_url())
    target = manual_path(dataset.sources[0], tmp_path / "res")
    target.parent.mkdir(parents=True)
    target.write_bytes(make_archive("tar.gz", {"toy/bunny.xyz": SCAN, "../../evil.xyz": SCAN}))
    with pytest.raises(SteikError, match=r"could not be extracted as a tar\.gz archive .*outside"):
        fetch(dataset, tmp_path / "res", FAST)
    assert not (tmp_path / "evil.xyz").exists() and not (tmp_path / "res" / "toy").exists()


def test_local_scans_and_the_archive_take_turns(tmp_path: Path) -> None:
    """A scans-only fetch records the folder; a later fetch without --scans goes back to the
    archive (a kept extraction included) exactly as if the scans had never been used."""
    from steik.data.sample import build_sample

    dataset = toy(url=refused_url())
    target = manual_path(dataset.sources[0], tmp_path / "res")
    target.parent.mkdir(parents=True)
    target.write_bytes(make_archive("zip", {"toy/bunny.xyz": SCAN}))
    archive_lock = json.loads(fetch(dataset, tmp_path / "res", FAST).read_text())
    copy = tmp_path / "copy" / "scans"
    copy.mkdir(parents=True)
    (copy / "bunny.xyz").write_bytes(SCAN + b"0 0 1\n")
    scans_lock = json.loads(fetch(dataset, tmp_path / "res", scans=copy.parent).read_text())
    assert scans_lock["scans"] == str(copy.resolve()) and scans_lock["ground_truth"] == "none"
    assert build_sample(dataset, "bunny", tmp_path / "res").source == str(copy / "bunny.xyz")
    again = json.loads(fetch(dataset, tmp_path / "res", FAST).read_text())
    assert "scans" not in again and again["files"] == archive_lock["files"]
    sample = build_sample(dataset, "bunny", tmp_path / "res")
    assert sample.source == str(tmp_path / "res" / "toy" / "toy" / "bunny.xyz")
