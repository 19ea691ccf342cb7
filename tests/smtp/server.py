"""A real SMTP server on a loopback port for the mail tests (aiosmtpd).

Prints `port <n>` once it listens, then one JSON line per accepted message
(envelope sender, recipients, raw message). Recipients whose local part starts with
`busy` are refused with 451 (temporary) the first two times, then accepted; those
starting with `bounce` are refused with 550 (permanent). Exits when stdin closes.
"""

import asyncio
import json
import socket
import sys
import threading

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self):
        self.busy_refusals = {}
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0]
        if local.startswith("bounce"):
            return "550 5.1.1 no such mailbox"
        if local.startswith("busy"):
            with self.lock:
                n = self.busy_refusals.get(address, 0)
                if n < 2:
                    self.busy_refusals[address] = n + 1
                    return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        line = json.dumps(
            {
                "from": envelope.mail_from,
                "to": envelope.rcpt_tos,
                "data": envelope.content.decode("utf-8", "replace"),
            }
        )
        print(line, flush=True)
        return "250 Message accepted"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    print(f"port {port}", flush=True)
    sys.stdin.read()
    controller.stop()


if __name__ == "__main__":
    main()
