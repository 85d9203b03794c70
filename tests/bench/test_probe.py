"""The bench's probe of a node's answer time: asking, failing, reporting."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator

import pytest

from chaincity.bench.probe import ApiProbe, Prober, ask_status, format_probe


class _Status(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/v1/status" else 404
        body = b'{"chains": []}'
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Status)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_an_answer_gives_its_time_in_ms(server_url: str) -> None:
    took = ask_status(server_url, timeout_s=5.0)
    assert took is not None and 0.0 <= took < 5_000.0


def test_no_listener_is_a_failure_not_an_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: the connection is refused
        assert ask_status(f"http://127.0.0.1:{port}", timeout_s=2.0) is None


def test_a_node_that_does_not_answer_200_is_a_failure(server_url: str) -> None:
    assert ask_status(server_url + "/elsewhere", timeout_s=5.0) is None


def test_format_gives_percentiles_of_the_answers_and_the_failures() -> None:
    answered = [2.0] * 98 + [1_500.0, 2_200.0]
    line = format_probe(ApiProbe("org2-node2", 0.1, answered, 3))
    assert "GET /v1/status on org2-node2, every 100 ms" in line
    assert "100 answered, p50 2.0 ms, p99 1500 ms, max 2200 ms; 3 failed" in line


def test_format_says_when_nothing_answered() -> None:
    assert format_probe(ApiProbe("n", 0.1, [], 7)).endswith("no answer (7 failed)")


def test_a_prober_keeps_the_answers_and_counts_the_failures(server_url: str) -> None:
    good = Prober("n1", server_url)
    good.ask()
    good.ask()
    bad = Prober("n2", server_url + "/elsewhere")
    bad.ask()
    answered = good.result()
    assert (answered.node, answered.failed, len(answered.answered_ms)) == ("n1", 0, 2)
    assert (bad.result().failed, bad.result().answered_ms) == (1, [])
