"""Random puts, deletes, checkpoints, reverts, commits (in turn and behind), reopening
with another window, and proofs against a plain dict model."""

from __future__ import annotations

import shutil
import tempfile

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from chaincity.crypto import get_suite
from chaincity.state import (
    AuthenticatedState,
    LmdbConfig,
    LmdbStore,
    StateProof,
    StateVersionError,
    compute_root,
    namespaced_key,
    verify_state_proof,
)
from tests.state.generation_checks import check_generations

SUITE = get_suite("ed25519-sha256")
WINDOW = 3
WINDOWS = st.sampled_from([1, 2, 3, 6])  # when the state is opened again
COPY_AFTER_PCT = 20  # small: generations are copied forward and deleted many times over
NAMESPACES = st.sampled_from(["bank", "land", "b"])
KEYS = st.binary(min_size=1, max_size=3)
VALUES = st.binary(max_size=8)


class StateMachine(RuleBasedStateMachine):
    native: bool | None = None  # the C tree routine where it is built

    @initialize()
    def open_state(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="chaincity-state-")
        self.store = LmdbStore(LmdbConfig(self.dir, durable=False, map_size_bytes=2**28))
        self.window = WINDOW
        self.oldest = 0  # the oldest readable version, as the model expects it
        self.counted = -1  # the last version that moved it
        self._open(WINDOW)
        self.history: list[dict[bytes, bytes]] = []  # committed model per version
        self.view = self.state.overlay()
        self.pending: dict[bytes, bytes] = {}
        self.marks: list[tuple[int, dict[bytes, bytes]]] = []

    def _open(self, window: int) -> None:
        self.window = window
        self.state = AuthenticatedState(
            self.store,
            SUITE,
            window=window,
            page_cache_max=64,
            native=self.native,
            copy_after_pct=COPY_AFTER_PCT,
        )

    def _committed(self) -> None:
        """Versions up to the latest are committed: the window each was written with
        moves the oldest on."""
        latest = self.state.latest_version
        if latest is not None and latest > self.counted:
            self.oldest = max(self.oldest, latest - self.window + 1)
            self.counted = latest

    @rule(window=WINDOWS)
    def reopen(self, window: int) -> None:
        """The state opened again (a version committing behind settles on close), with
        another window: a smaller one merges further at once, a larger one keeps the
        versions already pruned pruned."""
        self.state.close()
        self._committed()  # (by the window it had)
        self._open(window)  # the oldest moves by the new one at the next commit
        assert self.state.latest_version == (len(self.history) - 1 if self.history else None)
        self.discard()

    def teardown(self) -> None:
        if hasattr(self, "store"):
            self.store.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    @rule(ns=NAMESPACES, key=KEYS, value=VALUES)
    def put(self, ns: str, key: bytes, value: bytes) -> None:
        self.view.namespace(ns).put(key, value)
        self.pending[namespaced_key(ns, key)] = value

    @rule(ns=NAMESPACES, key=KEYS)
    def delete(self, ns: str, key: bytes) -> None:
        self.view.namespace(ns).delete(key)
        self.pending.pop(namespaced_key(ns, key), None)

    @rule(ns=NAMESPACES, seed=st.integers(0, 2**16), count=st.integers(1, 80))
    def put_many(self, ns: str, seed: int, count: int) -> None:
        """Enough keys at once to grow the tree several pages deep."""
        names = self.view.namespace(ns)
        for i in range(count):
            key = (seed * 131 + i).to_bytes(3, "big")
            names.put(key, key * 2)
            self.pending[namespaced_key(ns, key)] = key * 2

    @rule()
    def checkpoint(self) -> None:
        self.marks.append((self.view.checkpoint(), dict(self.pending)))

    @precondition(lambda self: bool(self.marks))
    @rule(data=st.data())
    def revert(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, len(self.marks) - 1))
        mark, model = self.marks[index]
        del self.marks[index:]
        self.view.revert(mark)
        self.pending = dict(model)

    @rule()
    def discard(self) -> None:
        self.view = self.state.overlay()
        self.pending = dict(self.history[-1]) if self.history else {}
        self.marks.clear()

    @rule()
    def commit(self) -> None:
        root = self.state.compute_root(self.view)
        assert root == compute_root(SUITE, self.pending)
        self.state.commit(self.state.prepare(self.view))
        self.history.append(dict(self.pending))
        assert self.state.root() == root
        self.view = self.state.overlay()
        self.marks.clear()
        self._committed()
        self._check_generations()

    @rule()
    def commit_behind(self) -> None:
        """The view's version commits behind: the next view builds on it meanwhile, and
        reads and proofs see the version before until it settles."""
        update = self.state.prepare(self.view)
        assert update.root == compute_root(SUITE, self.pending)
        self.state.commit_behind(update)  # (the version before it settled first)
        self._committed()
        self.history.append(dict(self.pending))
        self.view = self.state.overlay()
        self.marks.clear()
        assert self.state.tip_version == len(self.history) - 1
        committed = self.history[-2] if len(self.history) > 1 else {}
        for key in list(self.pending)[:8]:
            assert self.state.get(key) == committed.get(key)

    @precondition(lambda self: self._behind())
    @rule()
    def settle(self) -> None:
        self.state.settle()
        self._committed()
        assert self.state.latest_version == len(self.history) - 1
        assert self.state.root() == compute_root(SUITE, self.history[-1])
        self._check_generations()

    def _behind(self) -> bool:
        return self.state.latest_version != self.state.tip_version

    @rule()
    def commit_nothing(self) -> None:
        """A version with no change still refreshes (an idle chain keeps pruning)."""
        self.discard()
        self.commit()

    def _check_generations(self) -> None:
        check_generations(self.state, self.store)

    @precondition(lambda self: bool(self.history))
    @rule(ns=NAMESPACES, key=KEYS, back=st.integers(0, 8))
    def prove(self, ns: str, key: bytes, back: int) -> None:
        version = len(self.history) - 1 - back
        full = namespaced_key(ns, key)
        committed = len(self.history) - (1 if self._behind() else 0)  # versions readable
        if version >= committed:
            self._expect_uncommitted(full, version)
            return
        if version < self.oldest:
            if version >= 0:
                self._expect_pruned(full, version)
            return
        expected = self.history[version].get(full)
        value, proof = self.state.prove(full, version)
        root = self.state.root(version)
        assert value == expected == self.state.get(full, version)
        assert verify_state_proof(SUITE, root, full, value, proof)
        self._expect_rejected(root, full, value, proof)

    def _expect_uncommitted(self, key: bytes, version: int) -> None:
        for read in (self.state.prove, self.state.get):
            try:
                read(key, version)
            except StateVersionError:
                continue
            raise AssertionError(f"version {version} is committing behind: not readable yet")

    def _expect_pruned(self, key: bytes, version: int) -> None:
        try:
            self.state.prove(key, version)
        except StateVersionError:
            return
        raise AssertionError(f"version {version} should be pruned")

    def _expect_rejected(
        self, root: bytes, key: bytes, value: bytes | None, proof: StateProof
    ) -> None:
        wrong_value = b"\xff" * 9 if value is None else None
        assert not verify_state_proof(SUITE, root, key, wrong_value, proof)
        if value is not None:
            assert not verify_state_proof(SUITE, root, key, value + b"x", proof)
        bad_root = bytes([root[0] ^ 1]) + root[1:]
        assert not verify_state_proof(SUITE, bad_root, key, value, proof)
        if proof.siblings:
            first = proof.siblings[0]
            tampered = (bytes([first[0] ^ 0x80]) + first[1:], *proof.siblings[1:])
            assert not verify_state_proof(
                SUITE,
                root,
                key,
                value,
                StateProof(tampered, proof.leaf_key_hash, proof.leaf_value_hash),
            )
            assert not verify_state_proof(
                SUITE,
                root,
                key,
                value,
                StateProof(proof.siblings[1:], proof.leaf_key_hash, proof.leaf_value_hash),
            )
        if proof.leaf_key_hash:
            other = bytes([proof.leaf_value_hash[0] ^ 1]) + proof.leaf_value_hash[1:]
            assert not verify_state_proof(
                SUITE, root, key, None, StateProof(proof.siblings, proof.leaf_key_hash, other)
            )

    @invariant()
    def overlay_reads_match_model(self) -> None:
        if not hasattr(self, "view"):
            return
        for full, value in list(self.pending.items())[:8]:
            ns = full[1 : 1 + full[0]].decode()
            assert self.view.namespace(ns).get(full[1 + full[0] :]) == value


StateMachine.TestCase.settings = settings(
    max_examples=80,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestState = StateMachine.TestCase


class PythonWriterStateMachine(StateMachine):
    """The same model checks with the Python tree writer (the fallback) forced."""

    native = False


PythonWriterStateMachine.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestStatePythonWriter = PythonWriterStateMachine.TestCase
