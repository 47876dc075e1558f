"""data.download against a local HTTP server on 127.0.0.1 (never the internet)."""

import hashlib
import http.server
import io
import socket
import tarfile
import threading

import numpy as np
import pytest
from PIL import Image

from data import PreparedDataset, download_imagenette, fetch, resolve
from data.download import DownloadError


def make_tgz():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for split, n in (("train", 3), ("val", 1)):
            for w in ("n00000001", "n00000002"):
                img = io.BytesIO()
                Image.fromarray(np.full((10, 14, 3), 40 * n, np.uint8)).save(img, format="JPEG")
                for i in range(n):
                    info = tarfile.TarInfo(f"imagenette2-test/{split}/{w}/{w}_{i}.JPEG")
                    info.size = len(img.getvalue())
                    tar.addfile(info, io.BytesIO(img.getvalue()))
    return buf.getvalue()


@pytest.fixture(scope="module")
def server():
    payload = make_tgz()
    hits = {"count": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits["count"] += 1
            if self.path == "/truncated.tgz":  # announces more bytes than it sends
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload) + 1000))
                self.end_headers()
                self.wfile.write(payload[:100])
                self.close_connection = True
                return
            if self.path != "/imagenette2-test.tgz":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield base, payload, hits
    httpd.shutdown()
    httpd.server_close()


def test_fetch_downloads_once_and_checks(server, tmp_path):
    base, payload, hits = server
    sha = hashlib.sha256(payload).hexdigest()
    dest = tmp_path / "a.tgz"
    start = hits["count"]
    assert fetch(f"{base}/imagenette2-test.tgz", dest, sha256=sha, size=len(payload), quiet=True) == dest
    assert dest.read_bytes() == payload and not (tmp_path / "a.tgz.part").exists()
    fetch(f"{base}/imagenette2-test.tgz", dest, sha256=sha, quiet=True)
    assert hits["count"] == start + 1  # second call uses the cached file


def test_checksum_failure_leaves_nothing(server, tmp_path):
    base, _, _ = server
    dest = tmp_path / "b.tgz"
    with pytest.raises(DownloadError, match="checksum"):
        fetch(f"{base}/imagenette2-test.tgz", dest, sha256="0" * 64, quiet=True)
    assert not dest.exists() and not (tmp_path / "b.tgz.part").exists()


def test_interrupted_download_is_not_complete(server, tmp_path):
    base, payload, _ = server
    dest = tmp_path / "c.tgz"
    with pytest.raises(DownloadError):
        fetch(f"{base}/truncated.tgz", dest, quiet=True, timeout=5)
    assert not dest.exists()
    # a leftover .part (e.g. a killed process) is discarded, never taken for the download
    part = tmp_path / "d.tgz.part"
    part.write_bytes(payload[:50])
    dest = fetch(f"{base}/imagenette2-test.tgz", tmp_path / "d.tgz", size=len(payload), quiet=True)
    assert dest.read_bytes() == payload and not part.exists()


def test_http_error_and_offline_fail_fast(server, tmp_path):
    base, _, _ = server
    with pytest.raises(DownloadError, match="--data"):
        fetch(f"{base}/missing.tgz", tmp_path / "e.tgz", quiet=True)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with pytest.raises(DownloadError, match="offline"):
        fetch(f"http://127.0.0.1:{port}/x.tgz", tmp_path / "f.tgz", timeout=2, quiet=True)


def test_download_extract_and_resolve(server, tmp_path, monkeypatch):
    base, payload, hits = server
    root = download_imagenette(url=f"{base}/imagenette2-test.tgz", cache=tmp_path / "cache", quiet=True)
    assert root.name == "imagenette2-test" and (root / "train" / "n00000001").is_dir()
    assert not [p for p in (tmp_path / "cache" / "extracted").iterdir() if ".tmp-" in p.name]
    start = hits["count"]
    assert (
        download_imagenette(url=f"{base}/imagenette2-test.tgz", cache=tmp_path / "cache", quiet=True) == root
    )
    assert hits["count"] == start
    prepared = resolve(root, cache=tmp_path / "cache", size=8, workers=0, quiet=True)
    assert len(PreparedDataset(prepared)) == 6 and len(PreparedDataset(prepared, "val")) == 2
    assert resolve(prepared) == prepared
    assert resolve(root, cache=tmp_path / "cache", size=8, workers=0, quiet=True) == prepared
    with pytest.raises(FileNotFoundError):
        resolve(tmp_path / "nothing-here")
