"""The download stage against good, corrupt and malicious archives, served over loopback HTTP."""
import hashlib
import http.server
import io
import pickle
import re
import socket
import subprocess
import sys
import tarfile
import threading
import time

import numpy as np
import pytest
import yaml

from cifarpipe.core.errors import DataError
from cifarpipe.download.archive import parse_archive
from cifarpipe.download.fetch import Limits, download
from cifarpipe.download.retry import Backoff, GaveUp, StopTrying, retried
from conftest import PARAMS_YAML, ROOT, bare_env
from synthetic_cifar import archive_files, batch_bytes, write_archive, write_tar_gz


def md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_download_over_http_verifies_and_parses(http_root, tmp_path):
    folder, base = http_root
    digest = write_archive(folder / "a.tar.gz", n_train=50, n_test=20)
    download(f"{base}/a.tar.gz", digest, tmp_path / "got.tar.gz", Limits(timeout_s=5, tries=1))
    arrays = parse_archive(tmp_path / "got.tar.gz")
    assert arrays["x_train"].shape == (50, 32, 32, 3) and arrays["y_test"].shape == (20,)
    assert arrays["classes"][0] == "airplane"


class Terminal(io.StringIO):
    """What a terminal would show: a text stream that says it is one."""

    def isatty(self):
        return True


def test_a_download_shows_bytes_rate_and_time_left_on_a_terminal_and_nothing_in_a_log(http_root, tmp_path):
    folder, base = http_root
    digest = write_archive(folder / "a.tar.gz", n_train=300, n_test=100)
    screen, log = Terminal(), io.StringIO()
    once = Limits(timeout_s=5, tries=1)
    download(f"{base}/a.tar.gz", digest, tmp_path / "got.tar.gz", once, progress=screen)
    last = screen.getvalue().split("\r")[-1]
    size = (folder / "a.tar.gz").stat().st_size
    assert last.startswith("download a.tar.gz: 100%") and "B/s]" in last, last  # done, at a rate
    assert re.search(r"\[\d\d:\d\d<\d\d:\d\d", last), last  # elapsed < time left
    assert f"{size / 1024:.0f}k/{size / 1024:.0f}k" in last or f"{size / 2**20:.2f}M" in last, (last, size)
    download(f"{base}/a.tar.gz", digest, tmp_path / "again.tar.gz", once, progress=log)
    assert log.getvalue() == ""  # no bar in a log file or a CI log
    assert parse_archive(tmp_path / "got.tar.gz")["x_train"].shape == (300, 32, 32, 3)


def test_pixels_keep_the_official_plane_order(tmp_path):
    """Rows hold the R plane, then G, then B: pixel (0, 0) of image 0 is data[0, 0], data[0, 1024], data[0,
    2048]."""
    files = archive_files(n_train=10, n_test=10)
    archive = tmp_path / "a.tar.gz"
    write_tar_gz(archive, files)
    rows = pickle.loads(files["data_batch_1"], encoding="bytes")[b"data"]
    x = parse_archive(archive)["x_train"]
    assert tuple(x[0, 0, 0]) == (rows[0, 0], rows[0, 1024], rows[0, 2048])


def test_file_url_works(tmp_path):
    digest = write_archive(tmp_path / "a.tar.gz", n_train=10, n_test=10)
    download((tmp_path / "a.tar.gz").as_uri(), digest, tmp_path / "got.tar.gz", Limits(timeout_s=5, tries=1))
    assert md5(tmp_path / "got.tar.gz") == digest


def test_checksum_mismatch_names_both_and_leaves_nothing(http_root, tmp_path):
    folder, base = http_root
    digest = write_archive(folder / "a.tar.gz", n_train=10, n_test=10)
    with pytest.raises(DataError, match=f"expected md5 {'0' * 32}, got {digest}"):
        download(f"{base}/a.tar.gz", "0" * 32, tmp_path / "out" / "got.tar.gz", Limits(timeout_s=5, tries=1))
    assert list((tmp_path / "out").iterdir()) == []


def test_no_network_says_how_to_use_a_local_copy(tmp_path):
    with socket.socket() as s:  # a port on loopback that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataError, match=r"data\.url=file:///.*2 attempt"):
        download(f"http://127.0.0.1:{port}/x.tar.gz", "0" * 32, tmp_path / "got.tar.gz",
                 Limits(timeout_s=2, tries=2, backoff_s=0.01))
    assert not (tmp_path / "got.tar.gz").exists()


class _ShortBodyHandler(http.server.BaseHTTPRequestHandler):
    """Promises 1000 bytes, sends 10, hangs up: a connection that broke mid-download."""
    requests = 0

    def do_GET(self):
        type(self).requests += 1
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"0123456789")

    def log_message(self, *args):
        pass


def test_a_partial_download_is_retried_and_never_taken_for_complete(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ShortBodyHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(DataError, match="3 attempt"):
            download(f"http://127.0.0.1:{server.server_address[1]}/a", "0" * 32, tmp_path / "got",
                     Limits(timeout_s=2, tries=3, backoff_s=0.01))
    finally:
        server.shutdown()
        server.server_close()
    assert _ShortBodyHandler.requests == 3
    assert not (tmp_path / "got").exists()


def test_truncated_archive(tmp_path):
    write_archive(tmp_path / "a.tar.gz", n_train=50, n_test=20)
    data = (tmp_path / "a.tar.gz").read_bytes()
    (tmp_path / "cut.tar.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated or not a gzip"):
        parse_archive(tmp_path / "cut.tar.gz")


def test_not_gzip(tmp_path):
    (tmp_path / "a.tar.gz").write_bytes(b"<html>not found</html>" * 100)
    with pytest.raises(DataError, match="truncated or not a gzip"):
        parse_archive(tmp_path / "a.tar.gz")


def test_missing_batch(tmp_path):
    files = archive_files(n_train=10, n_test=10)
    del files["data_batch_3"]
    write_tar_gz(tmp_path / "a.tar.gz", files)
    with pytest.raises(DataError, match="missing cifar-10-batches-py/data_batch_3"):
        parse_archive(tmp_path / "a.tar.gz")


def test_wrong_array_shape(tmp_path):
    files = archive_files(n_train=10, n_test=10)
    batch = pickle.loads(files["test_batch"], encoding="bytes")
    batch[b"data"] = batch[b"data"][:, :1000]
    files["test_batch"] = pickle.dumps(batch, protocol=2)
    write_tar_gz(tmp_path / "a.tar.gz", files)
    with pytest.raises(DataError, match=r"test_batch: 'data' has shape \(10, 1000\)"):
        parse_archive(tmp_path / "a.tar.gz")


def test_labels_out_of_range(tmp_path):
    files = archive_files(n_train=10, n_test=10)
    files["test_batch"] = batch_bytes(np.zeros((2, 32, 32, 3), np.uint8), np.array([0, 12]), "t")
    write_tar_gz(tmp_path / "a.tar.gz", files)
    with pytest.raises(DataError, match="labels outside 0..9"):
        parse_archive(tmp_path / "a.tar.gz")


@pytest.mark.parametrize("name", ["../evil.txt", "/tmp/evil.txt", "cifar-10-batches-py/../../evil"])
def test_path_traversal_is_refused(tmp_path, name):
    path = tmp_path / "a.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    with pytest.raises(DataError, match="outside the target folder"):
        parse_archive(path)


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE])
def test_links_are_refused(tmp_path, kind):
    path = tmp_path / "a.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.type, info.linkname = kind, "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(DataError, match="is a link"):
        parse_archive(path)


class _Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path, capsys):
    files = archive_files(n_train=10, n_test=10)
    files["batches.meta"] = pickle.dumps({b"label_names": _Exploit()}, protocol=2)
    write_tar_gz(tmp_path / "a.tar.gz", files)
    with pytest.raises(DataError, match=r"print: refused \(only numpy arrays"):
        parse_archive(tmp_path / "a.tar.gz")
    assert "pwned" not in capsys.readouterr().out


def test_download_stage_exits_1_with_a_clear_line_and_writes_nothing(http_root, tmp_path):
    folder, base = http_root
    write_archive(folder / "a.tar.gz", n_train=10, n_test=10)
    params = yaml.safe_load((PARAMS_YAML).read_text())
    params["data"].update(url=f"{base}/a.tar.gz", md5="0" * 32)
    params["runtime"].update(download_retries=1)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "dvc.yaml").write_text((ROOT / "dvc.yaml").read_text())
    proc = subprocess.run([sys.executable, "-m", "stages.download"], cwd=tmp_path, capture_output=True,
                          text=True, env=bare_env())
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("error: checksum mismatch") and "set data.md5 to" in proc.stderr
    assert list((tmp_path / "data").iterdir()) == []


class _EndlessHandler(http.server.BaseHTTPRequestHandler):
    """Streams zeros without end and without a Content-Length: a wrong URL or a broken server."""

    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        try:
            for _ in range(4096):  # bounded: 256 MiB at most, the client hangs up long before
                self.wfile.write(bytes(65536))
        except OSError:
            pass

    def log_message(self, *args):
        pass


class _HugeHandler(_EndlessHandler):
    """Announces 5 GiB up front."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(5 * 2**30))
        self.end_headers()


def serve(handler):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.parametrize("handler, message", [(_EndlessHandler, "sent more than"),
                                              (_HugeHandler, "is 5120 MiB")])
def test_a_download_stops_at_the_size_limit_and_leaves_nothing(tmp_path, handler, message):
    server = serve(handler)
    try:
        with pytest.raises(DataError, match=f"{message}.*runtime.download_max_mb.*Check data.url"):
            download(f"http://127.0.0.1:{server.server_address[1]}/a", "0" * 32, tmp_path / "out" / "got",
                     Limits(timeout_s=5, tries=3, max_bytes=2 * 2**20, backoff_s=0.01))
    finally:
        server.shutdown()
        server.server_close()
    assert list((tmp_path / "out").iterdir()) == []  # not retried, nothing left


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    """Trickles 1 KiB every 50 ms: never idle long enough for the socket timeout, never done."""
    requests = 0

    def do_GET(self):
        type(self).requests += 1
        self.send_response(200)
        self.send_header("Content-Length", str(2**20))
        self.end_headers()
        try:
            for _ in range(200):  # bounded: 10 s at most
                self.wfile.write(bytes(1024))
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass

    def log_message(self, *args):
        pass


def test_a_download_stops_at_its_overall_deadline(tmp_path):
    """The deadline is for all tries together: the first try runs into it, and no second try starts (a
    deadline per try would start all five, each stopped after its second)."""
    server = serve(_SlowHandler)
    try:
        with pytest.raises(DataError, match=r"after 1 attempt\(s\): download of .* passed its deadline"):
            download(f"http://127.0.0.1:{server.server_address[1]}/a", "0" * 32, tmp_path / "got",
                     Limits(timeout_s=5, tries=5, deadline_s=1.0, backoff_s=0.01))
    finally:
        server.shutdown()
        server.server_close()
    assert _SlowHandler.requests == 1
    assert not (tmp_path / "got").exists()


def test_the_retry_helper_tries_as_told_stops_when_told_and_says_each_retry():
    """The one retry loop (the download's and the cluster pushes'), counted, not timed: no wait here."""
    tried, said = [], []

    def failing():
        tried.append(1)
        raise OSError(f"refused {len(tried)}")

    with pytest.raises(GaveUp) as gave_up:
        retried(failing, Backoff(tries=3, backoff_s=0), retry_on=(OSError,), what="the push", say=said.append)
    assert (len(tried), gave_up.value.tries, str(gave_up.value.error), gave_up.value.final) == (
        3, 3, "refused 3", False)
    assert said == ["the push failed (try 1 of 3): refused 1; again in 0 s",
                    "the push failed (try 2 of 3): refused 2; again in 0 s"]
    assert [Backoff(4, 15).wait(n) for n in (1, 2, 3)] == [15, 30, 60]

    def missing():
        tried.append(1)
        raise StopTrying("not there")

    tried.clear()
    with pytest.raises(GaveUp) as gave_up:
        retried(missing, Backoff(tries=5, backoff_s=0))
    assert len(tried) == 1 and gave_up.value.final and str(gave_up.value.error) == "not there"
    with pytest.raises(KeyError):  # not one to retry: at once, as it is
        retried(lambda: {}["x"], Backoff(tries=5, backoff_s=0), retry_on=(OSError,))
    outcomes = iter([OSError("first"), "second"])

    def flaky():
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert retried(flaky, Backoff(tries=2, backoff_s=0), retry_on=(OSError,)) == "second"
    tried.clear()
    with pytest.raises(GaveUp) as gave_up:  # a deadline already passed: no second try
        retried(failing, Backoff(tries=5, backoff_s=0), retry_on=(OSError,), deadline=time.monotonic() - 1)
    assert len(tried) == 1 and gave_up.value.tries == 1
