"""`tipsv2 weights download`: official names from the official URLs, and a clear error without network.

The machine running the tests has no internet, so the network is a local HTTP server (a real one, on a free
loopback port) standing in for storage.googleapis.com, plus a refused port and a server that never answers.
"""

from __future__ import annotations

import functools
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.tools.cli.main import main
from tests.unit.training.tipsv2.dpt_layout import dpt_layout, write_header_only_dpt_zip
from tests.unit.training.tipsv2.official_layout import OFFICIAL, text_layout, vision_layout, write_header_only_npz
from training.tipsv2.download import DownloadError, download_decoders, download_official


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on a free port serving `tmp_path / "mirror"`; yields (base URL, its directory)."""
    root = tmp_path / "mirror"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=root))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", root
    server.shutdown()
    server.server_close()


@pytest.fixture
def refused_url() -> str:
    with socket.socket() as sock:  # bind, learn the port, close: nothing listens there afterwards
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def silent_url() -> Iterator[str]:
    """Accepts connections (kernel backlog) but never sends a byte: a download must time out."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"


def test_download_fails_fast_and_clearly_when_the_host_is_unreachable(tmp_path: Path, refused_url: str) -> None:
    start = time.monotonic()
    with pytest.raises(DownloadError, match=r"could not download http://127\.0\.0\.1:\d+/tips_v2_oss_b14_vision\.npz"):
        download_official("b14", tmp_path, base_url=refused_url, tokenizer_url=refused_url + "tokenizer.model")
    assert time.monotonic() - start < 5
    assert list(tmp_path.iterdir()) == []  # no partial file left behind


def test_download_times_out_when_the_server_never_answers(tmp_path: Path, silent_url: str) -> None:
    start = time.monotonic()
    with pytest.raises(DownloadError, match="timed out"):
        download_official("l14", tmp_path, base_url=silent_url, timeout=0.3)
    assert time.monotonic() - start < 5


def test_download_cli_exits_2_with_a_message_about_the_network(tmp_path: Path, refused_url: str, capsys) -> None:
    code = main(["weights", "download", "--variant", "g14", "--dir", str(tmp_path), "--base-url", refused_url])
    err = capsys.readouterr().err
    assert code == 2
    assert "tips_v2_oss_g14_vision.npz" in err and "network access" in err
    assert "Traceback" not in err


def test_download_cli_fetches_official_names_and_verifies_them(tmp_path: Path, mirror, capsys) -> None:
    base_url, root = mirror
    write_header_only_npz(root / "tips_v2_oss_b14_vision.npz", vision_layout(OFFICIAL["b14"]))
    write_header_only_npz(root / "tips_v2_oss_b14_text.npz", text_layout(OFFICIAL["b14"]) | {"temperature": ()})
    (root / "tokenizer.model").write_bytes(b"sentencepiece")
    out = tmp_path / "weights"
    args = ["weights", "download", "--variant", "b14", "--dir", str(out), "--base-url", base_url]
    code = main([*args, "--tokenizer-url", base_url + "tokenizer.model"])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == [
        "tips_v2_oss_b14_text.npz",
        "tips_v2_oss_b14_vision.npz",
        "tokenizer.model",
    ]
    assert "match the official b14 layout" in capsys.readouterr().out


def test_so400m_download_falls_back_to_the_so400m14_spelling_on_404(tmp_path: Path, mirror) -> None:
    base_url, root = mirror
    for name in ("tips_v2_oss_so400m14_vision.npz", "tips_v2_oss_so400m14_text.npz", "tokenizer.model"):
        (root / name).write_bytes(name.encode())
    paths = download_official("so14", tmp_path, base_url=base_url, tokenizer_url=base_url + "tokenizer.model")
    assert [p.name for p in paths] == [
        "tips_v2_oss_so400m14_vision.npz",
        "tips_v2_oss_so400m14_text.npz",
        "tokenizer.model",
    ]


def test_files_already_present_are_kept_unless_forced(tmp_path: Path, mirror) -> None:
    base_url, root = mirror
    for name in ("tips_v2_oss_l14_vision.npz", "tips_v2_oss_l14_text.npz", "tokenizer.model"):
        (root / name).write_bytes(b"remote")
        (tmp_path / name).write_bytes(b"local")
    kwargs = {"base_url": base_url, "tokenizer_url": base_url + "tokenizer.model"}
    download_official("l14", tmp_path, **kwargs)
    assert (tmp_path / "tokenizer.model").read_bytes() == b"local"
    download_official("l14", tmp_path, force=True, **kwargs)
    assert (tmp_path / "tokenizer.model").read_bytes() == b"remote"


def test_http_errors_are_reported_with_their_status(tmp_path: Path, mirror) -> None:
    base_url, _ = mirror  # an empty mirror: every file is a 404
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_official("b14", tmp_path, base_url=base_url)


def test_the_tiny_test_model_has_nothing_to_download(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no official release"):
        download_official("tiny", tmp_path)


def test_download_cli_fetches_the_decoders_asked_for_and_verifies_them(tmp_path: Path, mirror, capsys) -> None:
    base_url, root = mirror
    write_header_only_npz(root / "tips_v2_oss_b14_vision.npz", vision_layout(OFFICIAL["b14"]))
    write_header_only_npz(root / "tips_v2_oss_b14_text.npz", text_layout(OFFICIAL["b14"]) | {"temperature": ()})
    (root / "tokenizer.model").write_bytes(b"sentencepiece")
    for task in ("segmentation", "depth", "normals"):  # the decoders live under another base URL (scenic/)
        write_header_only_dpt_zip(root / "scenic" / f"tips_v2_b14_{task}_dpt.zip", dpt_layout(768, task))
    out = tmp_path / "weights"
    args = ["weights", "download", "--variant", "b14", "--dir", str(out), "--base-url", base_url, "--head", "all"]
    code = main([*args, "--tokenizer-url", base_url + "tokenizer.model", "--dpt-base-url", base_url + "scenic"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert sorted(p.name for p in out.iterdir()) == [
        "tips_v2_b14_depth_dpt.zip",
        "tips_v2_b14_normals_dpt.zip",
        "tips_v2_b14_segmentation_dpt.zip",
        "tips_v2_oss_b14_text.npz",
        "tips_v2_oss_b14_vision.npz",
        "tokenizer.model",
    ]
    assert "tips_v2_b14_normals_dpt.zip matches the official normals decoder layout" in printed.out


def test_so400m_decoders_take_the_notebook_spelling_then_the_other(tmp_path: Path, mirror) -> None:
    base_url, root = mirror
    (root / "tips_v2_so400m14_depth_dpt.zip").write_bytes(b"depth")
    (root / "tips_v2_so14_normals_dpt.zip").write_bytes(b"normals")  # only the other spelling: found after a 404
    paths = download_decoders("so14", tmp_path, ("depth", "normals"), base_url=base_url)
    assert [p.name for p in paths] == ["tips_v2_so400m14_depth_dpt.zip", "tips_v2_so14_normals_dpt.zip"]
    (root / "tips_v2_so400m14_depth_dpt.zip").write_bytes(b"changed")
    again = download_decoders("so400m14", tmp_path, ("depth",), base_url=base_url)  # kept: no refetch
    assert again[0].read_bytes() == b"depth"


def test_decoder_download_names_the_url_when_the_host_is_unreachable(tmp_path: Path, refused_url: str) -> None:
    with pytest.raises(DownloadError, match=r"could not download http://127\.0\.0\.1:\d+/tips_v2_g14_segmentation_dpt"):
        download_decoders("g14", tmp_path, ("segmentation",), base_url=refused_url)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="has no official release"):
        download_decoders("tiny", tmp_path)
