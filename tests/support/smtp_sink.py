#!/usr/bin/env python3
"""Throwaway SMTP server for the integration tests.

Usage:
    python smtp_sink.py --host 127.0.0.1 --port PORT --dir DIR

Every accepted message is stored as DIR/<seq>-<random>.json with the keys
"mail_from", "rcpt_tos", "data" (the whole RFC 5322 message, decoded as
UTF-8 with replacement characters) and "received_at" (Unix time, float).
Files appear atomically: they are written under a hidden temporary name
and then renamed, so a reader never sees half a message.

Tests steer the server with marker files in DIR, looked at for every
message when its DATA arrives:
    DIR/delay  holds a number of seconds to wait before answering DATA;
    DIR/fail   makes DATA fail with "451 4.3.0 Temporary failure for test".

Once listening, the server prints "READY <port>" on stdout (the real port,
so --port 0 works too). It stops on SIGTERM/SIGINT, and also on its own
when the process that started it goes away, so a crashed test run does
not leave it behind holding a pipe open.

Plain SMTP with EHLO: no AUTH, no STARTTLS. Needs only aiosmtpd.
"""

import argparse
import asyncio
import itertools
import json
import os
import signal
import sys
import time
import uuid

# Taken before the (comparatively slow) aiosmtpd import, to narrow the window
# in which a parent could die before we know who it is.
PARENT_PID = os.getppid()

from aiosmtpd.smtp import SMTP  # noqa: E402

FAIL_REPLY = "451 4.3.0 Temporary failure for test"


def last_sequence_number(directory):
    """Highest <seq> among DIR/<seq>-<random>.json files, or 0."""
    highest = 0
    for name in os.listdir(directory):
        prefix = name.split("-", 1)[0]
        if name.endswith(".json") and prefix.isdigit():
            highest = max(highest, int(prefix))
    return highest


class SinkHandler:
    """aiosmtpd handler: everything is decided in handle_DATA."""

    def __init__(self, directory):
        self.directory = directory
        # Continue numbering after messages already in DIR, so that sorting by
        # name stays arrival order when a test restarts the sink on its old DIR.
        self.sequence = itertools.count(last_sequence_number(directory) + 1)

    def _marker(self, name):
        return os.path.join(self.directory, name)

    def _read_delay(self):
        """Seconds from DIR/delay, or 0 when the file is absent or unreadable."""
        try:
            with open(self._marker("delay"), encoding="utf-8") as f:
                text = f.read().strip()
        except FileNotFoundError:
            return 0.0
        try:
            return max(0.0, float(text))
        except ValueError:
            print(f"smtp_sink: ignoring unreadable delay {text!r}", file=sys.stderr)
            return 0.0

    async def handle_DATA(self, server, session, envelope):
        delay = self._read_delay()
        if delay > 0:
            await asyncio.sleep(delay)

        if os.path.exists(self._marker("fail")):
            return FAIL_REPLY

        raw = envelope.original_content or b""
        record = {
            "mail_from": envelope.mail_from or "",
            "rcpt_tos": list(envelope.rcpt_tos),
            "data": raw.decode("utf-8", errors="replace"),
            "received_at": time.time(),
        }
        # The zero-padded sequence makes name order arrival order; the random
        # suffix is a second guard against two sinks sharing one DIR.
        name = f"{next(self.sequence):06d}-{uuid.uuid4().hex[:8]}.json"
        final_path = os.path.join(self.directory, name)
        temp_path = os.path.join(self.directory, f".{name}.tmp")
        with open(temp_path, "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.replace(temp_path, final_path)
        return "250 2.0.0 Message accepted"


async def watch_parent(stop):
    """Ask for shutdown when we get re-parented, i.e. our parent died."""
    while not stop.is_set():
        if os.getppid() != PARENT_PID:
            stop.set()
            return
        await asyncio.sleep(1)


async def serve(host, port, directory):
    loop = asyncio.get_running_loop()
    handler = SinkHandler(directory)

    def new_session():
        # A fixed hostname avoids a DNS lookup (socket.getfqdn) per connection.
        # SMTPUTF8 is accepted so non-ASCII addresses do not get refused.
        return SMTP(handler, hostname="smtp-sink.test", enable_SMTPUTF8=True, loop=loop)

    server = await loop.create_server(new_session, host=host, port=port)
    bound_port = server.sockets[0].getsockname()[1]

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watcher = asyncio.ensure_future(watch_parent(stop))

    print(f"READY {bound_port}", flush=True)
    await stop.wait()

    watcher.cancel()
    server.close()
    # Newer Pythons make wait_closed() wait for open client connections (an
    # SMTP connection pool may keep some idle), so do not wait for long.
    try:
        await asyncio.wait_for(server.wait_closed(), timeout=1)
    except asyncio.TimeoutError:
        pass


def main():
    parser = argparse.ArgumentParser(description="SMTP server that stores mail as JSON files")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="0 picks a free port")
    parser.add_argument("--dir", required=True, help="where messages are written")
    args = parser.parse_args()

    os.makedirs(args.dir, exist_ok=True)
    asyncio.run(serve(args.host, args.port, os.path.abspath(args.dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
