#!/usr/bin/python3
"""WebSocket through the real switchyard executable, with a real client and real servers: the
`websockets` library (Debian's python3-websockets) on both sides of the proxy.

Run by ctest (tests/CMakeLists.txt), one test case per ctest test, with SWITCHYARD_BINARY set to
the built executable. By hand:

    SWITCHYARD_BINARY=build/dev/admin/switchyard /usr/bin/python3 tests/proxy/websocket_test.py

Every process listens on 127.0.0.1 at a port the kernel picked, and every wait is a bounded
poll on a condition or a receive with a timeout.
"""

import asyncio
import http.client
import json
import os
import shutil
import sys
import tempfile
import time
import unittest

import websockets

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from processes import LISTENING, Process, binary, write_two_slot_config  # noqa: E402

# A receive that takes longer means the proxy lost the message: fail rather than hang.
RECEIVE_TIMEOUT = 10


def fetch(port, method, path, body=None):
    """(status, body text) of one request to the admin API on 127.0.0.1:port."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


async def eventually(predicate, what, timeout=20):
    """Polls predicate (a plain function) until it holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %d s waiting for %s" % (timeout, what))
        await asyncio.sleep(0.02)


async def echo_server(name):
    """A WebSocket server on 127.0.0.1:0 answering each message with itself, tagged with the
    server's name: "blue:hello" for text, b"blue:" + bytes for binary."""

    async def echo(ws, path=None):
        async for message in ws:
            if isinstance(message, str):
                await ws.send(name + ":" + message)
            else:
                await ws.send(name.encode() + b":" + message)

    server = await websockets.serve(echo, "127.0.0.1", 0, max_size=None)
    return server, server.sockets[0].getsockname()[1]


class WebSocketThroughSwitchyard(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        self.tmp = tempfile.mkdtemp(prefix="switchyard-websocket-test-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.blue_server, blue_port = await echo_server("blue")
        self.green_server, green_port = await echo_server("green")
        config = os.path.join(self.tmp, "switchyard.yaml")
        write_two_slot_config(config, blue_port, green_port, "upgrade: { allow: [websocket] }\n")
        self.proxy = Process(self.tmp, [binary(), "-c", config], "switchyard")
        # Off the event loop, which the echo servers share.
        m = await asyncio.to_thread(self.proxy.wait_for, LISTENING)
        self.port, self.admin_port = int(m.group(1)), int(m.group(2))

    async def asyncTearDown(self):
        await asyncio.to_thread(self.proxy.stop, 40)
        for server in (self.blue_server, self.green_server):
            server.close()
            await server.wait_closed()

    def admin(self, method, path, body=None):
        status, text = fetch(self.admin_port, method, path, body)
        self.assertEqual(status, 200, "%s %s answered %d: %s" % (method, path, status, text))
        return json.loads(text) if text.startswith(("{", "[")) else text

    def tunnels_open(self):
        slots = self.admin("GET", "/status")["slots"]
        return slots["blue"]["tunnels_open"], slots["green"]["tunnels_open"]

    async def echo(self, ws, message):
        await ws.send(message)
        return await asyncio.wait_for(ws.recv(), RECEIVE_TIMEOUT)

    def connect(self, path="/chat"):
        return websockets.connect("ws://127.0.0.1:%d%s" % (self.port, path), max_size=None,
                                  open_timeout=RECEIVE_TIMEOUT, close_timeout=RECEIVE_TIMEOUT)

    async def test_text_and_binary_messages_echo_through_the_proxy(self):
        async with self.connect() as ws:
            self.assertEqual(await self.echo(ws, "hello"), "blue:hello")
            self.assertEqual(await self.echo(ws, "héllo wörld"), "blue:héllo wörld")
            self.assertEqual(await self.echo(ws, b"\x00\x01\xfe\xff"), b"blue:\x00\x01\xfe\xff")
            large = bytes(range(256)) * 1024  # 256 KiB: many reads and writes each way
            self.assertEqual(await self.echo(ws, large), b"blue:" + large)
            for i in range(20):
                await ws.send("burst %d" % i)
            for i in range(20):
                reply = await asyncio.wait_for(ws.recv(), RECEIVE_TIMEOUT)
                self.assertEqual(reply, "blue:burst %d" % i)
            await eventually(lambda: self.tunnels_open() == (1, 0), "the tunnel in /status")
        # The close handshake went through the tunnel both ways.
        self.assertEqual(ws.close_code, 1000)
        await eventually(lambda: self.tunnels_open() == (0, 0), "the tunnel to close")
        status, scrape = fetch(self.admin_port, "GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertIn('switchyard_tunnels_total{slot="blue"} 1', scrape)
        self.assertIn('switchyard_http_requests_total{slot="blue",code="101"} 1', scrape)

    async def test_a_switch_keeps_open_tunnels_on_their_slot(self):
        async with self.connect() as on_blue:
            self.assertEqual(await self.echo(on_blue, "before"), "blue:before")
            self.admin("PUT", "/active-slot", "green")
            # The open tunnel is a connection: it stays with blue.
            self.assertEqual(await self.echo(on_blue, "after"), "blue:after")
            async with self.connect() as on_green:
                self.assertEqual(await self.echo(on_green, "new"), "green:new")
                await eventually(lambda: self.tunnels_open() == (1, 1),
                                 "one tunnel on each slot")
                self.assertEqual(await self.echo(on_blue, "still"), "blue:still")
            await eventually(lambda: self.tunnels_open() == (1, 0), "green's tunnel to close")
        # Blue holds no tunnel any more: it is free to stop.
        await eventually(lambda: self.tunnels_open() == (0, 0), "blue's tunnel to close")


if __name__ == "__main__":
    unittest.main()
