"""http1.py: the framings of a response body, over a real socket pair.

The registries in the other tests answer with Content-Length; these are the
answers they rarely give (chunks, a body ending with the connection, HTTP/1.0,
an interim 100) and the broken ones (a body cut short, not HTTP at all).
"""

import socket
import threading

import pytest

from mocker_fetch import http1


def answer(raw: bytes, method: str = "GET"):
    """A Connection whose peer sent raw, then closed; return it and its response."""
    ours, theirs = socket.socketpair()
    theirs.sendall(raw)
    theirs.close()
    connection = http1.Connection(ours)
    return connection, connection.response(method)


def test_a_content_length_body_is_read_and_the_connection_can_be_reused():
    connection, response = answer(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                                  b"content-type: text/plain\r\n\r\nhello"
                                  b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    assert response.status == 200
    assert response.headers.get("Content-Type") == "text/plain"
    assert "CONTENT-LENGTH" in response.headers
    assert response.read() == b"hello"
    assert response.finished and not response.will_close
    second = connection.response("GET")
    assert second.status == 404 and second.finished


def test_readinto_fills_the_buffer_across_many_receives():
    body = bytes(range(256)) * 1000
    ours, theirs = socket.socketpair()
    theirs.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
    response = http1.Connection(ours).response("GET")
    buffer = bytearray(len(body) + 10)
    sender = threading.Thread(target=lambda: [theirs.sendall(body[start:start + 1000])
                                              for start in range(0, len(body), 1000)])
    sender.start()
    try:
        assert response.readinto(buffer) == len(body)
        assert bytes(buffer[:len(body)]) == body and response.finished
    finally:
        sender.join()
        theirs.close()
        ours.close()


def test_a_chunked_body_is_joined_and_its_trailer_skipped():
    _, response = answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-T: 1\r\n\r\n")
    assert response.read() == b"hello world"
    assert response.finished and not response.will_close


def test_a_body_without_length_ends_with_the_connection():
    _, response = answer(b"HTTP/1.0 200 OK\r\n\r\nall of it")
    assert response.will_close
    assert response.read() == b"all of it"


def test_an_interim_100_is_skipped_and_head_has_no_body():
    _, response = answer(b"HTTP/1.1 100 Continue\r\n\r\n"
                         b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", method="HEAD")
    assert response.status == 200 and response.finished and response.read() == b""


def test_a_body_cut_short_is_an_error_not_a_short_blob():
    _, response = answer(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    with pytest.raises(http1.ProtocolError, match="7 bytes of the body unsent"):
        response.read()


def test_a_closed_connection_and_nonsense_are_told_apart():
    with pytest.raises(http1.RemoteDisconnected):   # a stale keep-alive: worth a new try
        answer(b"")
    with pytest.raises(http1.ProtocolError, match="not an HTTP/1.x answer"):
        answer(b"SSH-2.0-OpenSSH\r\n\r\n")
    with pytest.raises(http1.ProtocolError, match="bad Content-Length"):
        answer(b"HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n")


def test_a_line_break_in_a_request_is_refused_not_sent():
    """A redirect's Location carrying a CR or LF must not smuggle a line of its own."""
    ours, theirs = socket.socketpair()
    try:
        connection = http1.Connection(ours)
        with pytest.raises(http1.ProtocolError, match="line break"):
            connection.send("GET", "/v2/x\r\nX-Evil: 1", {"Host": "registry"})
        theirs.setblocking(False)
        with pytest.raises(BlockingIOError):
            theirs.recv(1)      # nothing was sent
    finally:
        ours.close()
        theirs.close()
