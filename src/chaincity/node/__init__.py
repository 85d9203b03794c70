"""The node: wires consensus, mempool, execution, storage, transport and API."""
