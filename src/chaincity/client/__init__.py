"""The Python SDK: build and sign transactions, submit them, wait, read state.

from chaincity.client import Client, Signer
signer = Signer.from_files("net/orgs/org1/member.key", "net/orgs/org1/member.cert")
client = Client("http://127.0.0.1:8700")
tx_id = client.submit(signer.build("notary", "record", {"digest": "ab" * 32},
                                   expiry_height=client.height() + 500))
receipt = client.wait(tx_id)
"""

from chaincity.client.http import Client, ClientError
from chaincity.client.signer import Signer

__all__ = ["Client", "ClientError", "Signer"]
