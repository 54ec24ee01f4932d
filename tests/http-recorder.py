#!/usr/bin/python3
"""http-recorder.py -- a tiny HTTP server for tests/check_run.c.

usage: /usr/bin/python3 http-recorder.py PORT LOG

Listens on 127.0.0.1:PORT, appends the request line of every request
(GET, HEAD or POST) to LOG before it answers 200 "OK", so that the
line is there once the client has its answer.  Runs until SIGTERM.
"""
import http.server
import signal
import sys


def main():
    port = int(sys.argv[1])
    log = sys.argv[2]

    class Recorder(http.server.BaseHTTPRequestHandler):
        def answer(self):
            with open(log, "a") as f:
                f.write(self.requestline + "\n")
            body = b"OK\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_HEAD = do_POST = answer

        def log_message(self, *args):
            pass

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    http.server.HTTPServer(("127.0.0.1", port), Recorder).serve_forever()


if __name__ == "__main__":
    main()
