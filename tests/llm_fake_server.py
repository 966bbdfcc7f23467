"""A local fake of the Anthropic Messages API (POST /v1/messages) on 127.0.0.1 for driving the real SDK in tests.

It also speaks the two OpenAI routes of the M3G label pipeline (base_url + "/v1" for the openai SDK):
POST /v1/chat/completions (reply text from the same responder, given the body) and POST /v1/embeddings
(`fake_embedding(text)`: hashed character trigrams, so texts sharing words lie close).

It records every request (headers + JSON body), can be told to answer the next N requests with an error status
(429, 500, 529, ...) or to stall them past the client's timeout, can delay every answer (to observe concurrency),
and counts the most requests it ever had in flight at once. POST /v1/messages/count_tokens answers
{"input_tokens": COUNT_TOKENS(body)} and records the body in `count_requests` (not in `requests`).
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 429: "rate_limit_error",
               500: "api_error", 503: "api_error", 529: "overloaded_error"}


def count_tokens(body: dict) -> int:
    """The fake token count of a count_tokens request: a quarter of its JSON size."""
    return len(json.dumps(body)) // 4


def default_responder(body: dict) -> str:
    """Reply text: echo the last text block of the request ('(images only)' when it has none)."""
    blocks = body["messages"][-1]["content"]  # the last message: the user turn in both APIs
    texts = [b["text"] for b in blocks if b.get("type") == "text"] if isinstance(blocks, list) else [blocks]
    return f"echo: {texts[-1] if texts else '(images only)'}"


EMBED_DIM = 24


def fake_embedding(text: str, dim: int = EMBED_DIM) -> list[float]:
    """A deterministic unit vector of a text's character trigrams hashed into `dim` buckets."""
    import hashlib

    vector = [0.0] * dim
    padded = f"  {text.lower()} "
    for i in range(len(padded) - 2):
        vector[int(hashlib.md5(padded[i:i + 3].encode()).hexdigest(), 16) % dim] += 1.0
    norm = sum(v * v for v in vector) ** 0.5 or 1.0
    return [v / norm for v in vector]


class FakeMessagesServer:
    """Threaded HTTP server that speaks just enough of the Messages API; use as a context manager."""

    def __init__(self, responder: Callable[[dict], str] = default_responder, delay: float = 0.0):
        self.responder = responder
        self.delay = delay
        self.requests: list[dict] = []
        self.count_requests: list[dict] = []
        self.attempts = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._faults: deque = deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    @property
    def base_url(self) -> str:
        """The URL to pass to the SDK as base_url."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def inject(self, status: int, times: int = 1) -> None:
        """Answer the next `times` requests with HTTP `status` (an Anthropic-style error body)."""
        self._faults.extend([("status", status)] * times)

    def stall(self, seconds: float, times: int = 1) -> None:
        """Hold the next `times` requests for `seconds` before answering (beyond a short client timeout)."""
        self._faults.extend([("stall", seconds)] * times)

    def __enter__(self) -> FakeMessagesServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    # ------------------------------------------------------------------ request handling

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        """Record the request, then answer with the next fault or a normal message."""
        body = json.loads(handler.rfile.read(int(handler.headers.get("content-length", 0))) or b"{}")
        with self._lock:
            self.attempts += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.requests.append({"path": handler.path, "headers": {k.lower(): v for k, v in handler.headers.items()},
                                  "body": body})
            fault = self._faults.popleft() if self._faults else None
        try:
            self._respond(handler, body, fault)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout); nothing to answer
        finally:
            with self._lock:
                self.in_flight -= 1

    def _respond(self, handler: BaseHTTPRequestHandler, body: dict, fault) -> None:
        """Write an error, a stalled answer or a message."""
        if fault and fault[0] == "status":
            kind = ERROR_TYPES.get(fault[1], "api_error")
            payload = {"type": "error", "error": {"type": kind, "message": f"injected {fault[1]}"}}
            return _send_json(handler, fault[1], payload)
        wait = fault[1] if fault else self.delay
        if wait:
            self._closing.wait(wait)
        route = handler.path.split("?")[0]
        payload = {"/v1/chat/completions": self._chat, "/v1/embeddings": self._embeddings}.get(route, self._message)
        _send_json(handler, 200, payload(body))

    def _chat(self, body: dict) -> dict:
        """An OpenAI chat.completion for `body` (reply text from the responder)."""
        text = self.responder(body)
        return {"id": f"chatcmpl-fake-{self.attempts}", "object": "chat.completion", "created": 0,
                "model": body.get("model"), "choices": [{"index": 0, "finish_reason": "stop",
                                                         "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": len(json.dumps(body)) // 4, "completion_tokens": max(1, len(text) // 4),
                          "total_tokens": 0}}

    def _embeddings(self, body: dict) -> dict:
        """An OpenAI embeddings list for `body['input']` (a string or a list of strings)."""
        texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
        return {"object": "list", "model": body.get("model"),
                "data": [{"object": "embedding", "index": i, "embedding": fake_embedding(t)} for i, t in enumerate(texts)],
                "usage": {"prompt_tokens": sum(len(t) // 4 + 1 for t in texts), "total_tokens": 0}}

    def _message(self, body: dict) -> dict:
        """A Messages API response; token counts derived from the request and reply sizes."""
        text = self.responder(body)
        with self._lock:
            n = self.attempts
        return {"id": f"msg_fake_{n}", "type": "message", "role": "assistant", "model": body.get("model"),
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": len(json.dumps(body)) // 4, "output_tokens": max(1, len(text) // 4)}}

    def _handler_class(self):
        """A request handler class bound to this server."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server naming)
                if self.path.split("?")[0] == "/v1/messages/count_tokens":
                    body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                    fake.count_requests.append(body)
                    return _send_json(self, 200, {"input_tokens": count_tokens(body)})
                if self.path.split("?")[0] not in ("/v1/messages", "/v1/chat/completions", "/v1/embeddings"):
                    return _send_json(self, 404, {"type": "error", "error": {"type": "not_found_error",
                                                                             "message": self.path}})
                fake._handle(self)

            def log_message(self, *args):
                pass

        return Handler


def _send_json(handler: BaseHTTPRequestHandler, status: int, payload: dict) -> None:
    """Send `payload` as a JSON response with `status`."""
    data = json.dumps(payload).encode("utf-8")
    handler.send_response(status)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
