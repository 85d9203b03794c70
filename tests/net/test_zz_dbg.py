import asyncio, logging, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, "/work/main")
from tests.net.harness import *
from tests.net.test_transport import MESH, start_all, stop_all
from chaincity.net import Envelope, Kind
async def main():
    network = make_network(Path(tempfile.mkdtemp()), MESH, accept_only=set())
    nodes = await start_all(network, list(MESH))
    try:
        for name, (t, _) in nodes.items():
            await asyncio.wait_for(t.wait_connected([n for n in MESH if n != name]), 5)
        print("connected")
        for name, (transport, _) in nodes.items():
            refused = transport.broadcast(Envelope(CHAIN, Kind.CONSENSUS, f"vote from {name}".encode()))
        print(nodes["a"][0].send("d", Envelope(CHAIN, Kind.SYNC_REQUEST, b"height 7")))
        for name, (_, collector) in nodes.items():
            expected = {f"vote from {n}".encode() for n in MESH if n != name}
            print("wait", name)
            await collector.wait_until(lambda c=collector, e=expected: e <= set(c.payloads()))
        print("d")
        await nodes["d"][1].wait_until(lambda: b"height 7" in nodes["d"][1].payloads("a"))
        print("links")
        await wait_for_condition(lambda: all(t.open_links == 3 for t, _ in nodes.values()))
    finally:
        print("stopping")
        await stop_all(nodes)
    print("stopped")
def test_x():
    run(main())
