"""A local DNS server for domain-verification tests (PyPI dnslib).

Answers TXT queries from a JSON file ({"name.example": ["txt value", ...]})
read at each query, so a test can publish or withdraw a record while the
server runs. Binds UDP and TCP on 127.0.0.1 (port 0 picks one), prints the
port on its first line, and serves until killed.
"""

import json
import sys
import time

from dnslib import QTYPE, RR, TXT
from dnslib.server import BaseResolver, DNSLogger, DNSServer


class FileResolver(BaseResolver):
    def __init__(self, path):
        self.path = path

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        try:
            with open(self.path, encoding="utf-8") as f:
                records = json.load(f)
        except (OSError, ValueError):
            records = {}
        if request.q.qtype == QTYPE.TXT:
            for value in records.get(name, []):
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(value), ttl=0))
        return reply


def main():
    path = sys.argv[1]
    resolver = FileResolver(path)
    # Quiet: the test reads only the port from stdout, then closes it.
    quiet = DNSLogger(log="-request,-reply,-truncated,-error", logf=lambda _: None)
    # UDP on a free port, then TCP on the same number; another test may hold
    # that TCP port, so try again with a new one.
    for _ in range(50):
        udp = DNSServer(resolver, port=0, address="127.0.0.1", logger=quiet)
        port = udp.server.server_address[1]
        try:
            tcp = DNSServer(resolver, port=port, address="127.0.0.1", tcp=True, logger=quiet)
            break
        except OSError:
            udp.server.server_close()
    else:
        sys.exit("no port free for both UDP and TCP")
    udp.start_thread()
    tcp.start_thread()
    print(port, flush=True)
    while udp.isAlive():
        time.sleep(0.5)


if __name__ == "__main__":
    main()
