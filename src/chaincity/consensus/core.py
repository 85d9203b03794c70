"""The consensus core: ``handle(event) -> list[Action]``, with no I/O.

Jolteon / DiemBFT v4: chained blocks, each proposal carrying the QC of its
parent; the 2-chain commit rule; timeouts that form TCs; leaders rotating by
round. See docs/consensus.md for the rules in plain words.
"""

from __future__ import annotations

from collections import Counter

from chaincity.codec import CodecError, decode, encode
from chaincity.consensus.blocktree import BlockTree
from chaincity.consensus.config import (
    CoreConfig,
    Recovery,
    compute_epoch_root_qc,
    default_payload_hash,
    get_leader,
    message_scope,
)
from chaincity.consensus.events import (
    Action,
    BlockFetched,
    Broadcast,
    Commit,
    EpochChanged,
    Event,
    ExecutionResultReady,
    MessageReceived,
    PayloadReady,
    PersistBlock,
    PersistSafety,
    RequestPayload,
    SendTo,
    SetTimer,
    Start,
    TimerFired,
)
from chaincity.consensus.fetch import Fetcher
from chaincity.consensus.messages import decode_message
from chaincity.consensus.rules import SafetyRules, is_consecutive
from chaincity.consensus.verify import SignatureCache, is_valid_qc, is_valid_tc
from chaincity.types.block import Block, BlockHeader, block_hash
from chaincity.types.consensus import (
    ConsensusMessage,
    EpochChangeCert,
    EpochChangeMsg,
    ExecResult,
    Proposal,
    ProposalBody,
    QuorumCert,
    SafetyData,
    Timeout,
    TimeoutCert,
    TimeoutCertMsg,
    TimeoutData,
    Vote,
    VoteData,
    header_exec_result,
    proposal_signing_bytes,
    sign_proposal,
    sign_vote,
    timeout_signing_bytes,
    vote_signing_bytes,
)
from chaincity.types.validators import ValidatorSet, validator_set_hash

ROUND_WINDOW = 64  # votes/timeouts further ahead than this are dropped
WAITING_PROPOSALS_MAX = 64  # proposals parked until their parent is fetched
FETCHED_WAITING_MAX = 512  # fetched ancestors parked; a deeper lag is for ledger sync
FUTURE_EPOCH_MAX = 64  # messages from the next epoch, replayed after the switch
EXEC_RESULTS_MAX = 1024  # execution results kept to check attestations against
EPOCH_CHANGES_MAX = 16  # past epoch changes kept to help lagging validators


class ConsensusCore:
    def __init__(
        self,
        config: CoreConfig,
        recovery: Recovery,
        rules: SafetyRules | None = None,
        cache: SignatureCache | None = None,
    ) -> None:
        self.config = config
        self.suite = config.suite
        self.chain_id = config.chain_id
        self.rules = rules or SafetyRules()
        self.cache = cache or SignatureCache(config.suite)
        self.payload_hash = config.payload_hash or default_payload_hash(config.suite)
        self.public_key = config.suite.public_key(config.private_key)
        self.stats: Counter[str] = Counter()
        recent = recovery.exec_results[-EXEC_RESULTS_MAX:]
        self.exec_results: dict[int, ExecResult] = {r.height: r for r in recent}
        self.exec_latest = recent[-1]
        self.epoch_changes = list(recovery.epoch_changes[-EPOCH_CHANGES_MAX:])
        self.future_epoch: list[tuple[int, bytes]] = []
        self.high_qc: QuorumCert
        self.last_tc: TimeoutCert | None
        self._reset_epoch(recovery.vset, recovery.root)
        cert = recovery.root_cert
        if cert is not None and cert.data.epoch == self.vset.epoch:
            # Certifies the root's child: the child is fetched from peers.
            self.high_qc = cert
        s = recovery.safety
        for p in sorted(recovery.blocks, key=lambda p: p.block.header.height):
            bh = block_hash(self.suite, p.block.header)
            if p.block.header.height > self.tree.root.height and self.tree.has(
                p.block.header.parent_hash
            ):
                self.tree.insert(bh, p)
        if s is not None and s.epoch == self.vset.epoch:
            self.safety = s
            if s.highest_qc.data.round > self.high_qc.data.round:
                self.high_qc = s.highest_qc
            self.last_tc = s.last_tc

    # ------------------------------------------------------------ state reset

    def _reset_epoch(self, vset: ValidatorSet, root: BlockHeader) -> None:
        self.vset = vset
        self.me = vset.index_of(self.public_key)
        self.quorum = self.rules.quorum(vset)
        self.tree = BlockTree(self.suite, root)
        self.root_qc = compute_epoch_root_qc(
            self.chain_id, vset.epoch, self.tree.root_hash, root.height
        )
        self.high_qc = self.root_qc
        self.last_tc = None
        self.round = 0
        self.safety = SafetyData(vset.epoch, 0, 0, self.root_qc, None)
        self.votes: dict[int, dict[int, tuple[VoteData, bytes]]] = {}
        self.timeouts: dict[int, dict[int, tuple[int, bytes]]] = {}
        self.my_timeout: Timeout | None = None
        self.proposed_round = 0
        self.pending_payload: PayloadReady | None = None
        self.pending_vote: Proposal | None = None
        self.pending_commit: QuorumCert | None = None
        # Blocks parked until their parent arrives, by parent hash; proposals
        # pushed by peers and ancestors we fetched are counted apart, so a deep
        # catch-up (fetching backwards) is never starved by unsolicited proposals.
        self.waiting: dict[bytes, list[tuple[int, Proposal, bool]]] = {}
        self.waiting_count = {False: 0, True: 0}
        self.fetcher = Fetcher(vset.size, self.me)
        self.epoch_hinted: set[int] = set()  # peers told of an epoch change this timer period

    # ------------------------------------------------------------ dispatch

    def handle(self, event: Event) -> list[Action]:
        out: list[Action] = []
        if isinstance(event, MessageReceived):
            self._on_bytes(event.sender, event.data, out)
        elif isinstance(event, TimerFired):
            self._on_timer(event, out)
        elif isinstance(event, PayloadReady):
            self._on_payload(event, out)
        elif isinstance(event, BlockFetched):
            self._on_fetched(event, out)
        elif isinstance(event, ExecutionResultReady):
            self._on_exec_result(event.result, out)
        elif isinstance(event, Start):
            self._fetch(self.high_qc.data.block_hash, -1, out)
            tc_round = 0 if self.last_tc is None else self.last_tc.round
            self._enter_round(max(self.round, self.high_qc.data.round, tc_round) + 1, out)
        return out

    def _drop(self, reason: str) -> None:
        self.stats["dropped_" + reason] += 1

    def _on_bytes(self, sender: int, data: bytes, out: list[Action]) -> None:
        try:
            msg = decode_message(data)
        except CodecError:
            self._drop("malformed")
            return
        chain, epoch = message_scope(msg)
        if chain != self.chain_id:
            self._drop("wrong_chain")
        elif epoch < self.vset.epoch:
            self._drop("old_epoch")
            self._hint_epoch_change(sender, epoch, out)
        elif epoch > self.vset.epoch:
            self._drop("future_epoch")
            if len(self.future_epoch) < FUTURE_EPOCH_MAX:
                self.future_epoch.append((sender, data))
        else:
            self._on_message(sender, msg, out)

    def _on_message(self, sender: int, msg: ConsensusMessage, out: list[Action]) -> None:
        if isinstance(msg, Proposal):
            self._on_proposal(sender, msg, out)
        elif isinstance(msg, Vote):
            self._on_vote(msg, out)
        elif isinstance(msg, Timeout):
            self._on_timeout(sender, msg, out)
        elif isinstance(msg, TimeoutCertMsg):
            if not self._process_certs(sender, msg.high_qc, msg.tc, out):
                self._drop("bad_cert")
        elif isinstance(msg, EpochChangeMsg):
            self._on_epoch_change(sender, msg.change, out)

    # ------------------------------------------------------------ certificates

    def _is_valid_qc(self, qc: QuorumCert) -> bool:
        d = qc.data
        if d.chain_id != self.chain_id or d.epoch != self.vset.epoch:
            return False
        if d.round == 0:
            return qc == self.root_qc
        return is_valid_qc(self.cache, self.vset, qc, self.quorum)

    def _is_valid_tc(self, tc: TimeoutCert) -> bool:
        if tc.chain_id != self.chain_id or tc.epoch != self.vset.epoch or tc.round == 0:
            return False
        return is_valid_tc(self.cache, self.vset, tc, self.quorum)

    def _process_certs(
        self, sender: int, qc: QuorumCert, tc: TimeoutCert | None, out: list[Action]
    ) -> bool:
        """Learn from certificates: a higher QC, a commit, a new round."""
        if not self._is_valid_qc(qc) or (tc is not None and not self._is_valid_tc(tc)):
            return False
        if qc.data.round > self.high_qc.data.round:
            self.high_qc = qc
            if not self.tree.has(qc.data.block_hash):
                self._fetch(qc.data.block_hash, sender, out)
        if qc.data.commit_hash:
            epoch = self.vset.epoch
            self._try_commit(sender, qc, out)
            if self.vset.epoch != epoch:
                return True  # the epoch ended: its rounds mean nothing any more
        if tc is not None and (self.last_tc is None or tc.round > self.last_tc.round):
            self.last_tc = tc
        tc_round = 0 if tc is None else tc.round
        new_round = max(qc.data.round, tc_round) + 1
        if new_round > self.round:
            self._enter_round(new_round, out)
        return True

    # ------------------------------------------------------------ pacemaker

    def _timeout_ms(self) -> int:
        failed = max(0, self.round - self.high_qc.data.round - 1)
        return self.config.round_timeout_ms << min(failed, self.config.backoff_exponent_max)

    def _enter_round(self, round_: int, out: list[Action]) -> None:
        self.round = round_
        self.my_timeout = None
        self.pending_vote = None
        for table in (self.votes, self.timeouts):
            for r in [r for r in table if r < round_ - 1]:
                del table[r]
        out.append(SetTimer(self.vset.epoch, round_, self._timeout_ms()))
        if self.me is not None and get_leader(self.vset, round_) == self.me:
            parent = self.tree.header(self.high_qc.data.block_hash)
            height = (parent.height if parent else self.high_qc.data.height) + 1
            out.append(
                RequestPayload(self.vset.epoch, round_, height, self.high_qc.data.block_hash)
            )

    def _on_timer(self, event: TimerFired, out: list[Action]) -> None:
        if event.epoch != self.vset.epoch or event.round != self.round:
            return
        out.extend(self.fetcher.retry(self.round))
        self.epoch_hinted.clear()  # lagging peers may hear about the epoch again
        self._local_timeout(out)
        out.append(SetTimer(self.vset.epoch, self.round, self._timeout_ms()))

    def _local_timeout(self, out: list[Action]) -> None:
        if self.me is None:
            return
        if self.my_timeout is not None:
            out.append(Broadcast(encode(self.my_timeout)))  # the same message again
            return
        qc_round = self.high_qc.data.round
        tc_round = 0 if self.last_tc is None else self.last_tc.round
        if not self.rules.is_safe_to_timeout(self.safety, self.round, qc_round, tc_round):
            self.stats["timeout_refused"] += 1
            return
        self.safety = self._next_safety(max(self.safety.highest_vote_round, self.round), self.round)
        data = TimeoutData(self.chain_id, self.vset.epoch, self.round, qc_round)
        sig = self.suite.sign(self.config.private_key, timeout_signing_bytes(data))
        self.my_timeout = Timeout(data, self.me, sig, self.high_qc, self.last_tc)
        out.extend(
            self.rules.persist_then_send(
                PersistSafety(self.safety), Broadcast(encode(self.my_timeout))
            )
        )
        self._collect_timeout(self.me, data, sig, out)

    def _on_timeout(self, sender: int, t: Timeout, out: list[Action]) -> None:
        d = t.data
        if t.signer >= self.vset.size:
            self._drop("non_validator")
            return
        if t.high_qc.data.round != d.high_qc_round or d.high_qc_round >= d.round:
            self._drop("bad_timeout")
            return
        key = self.vset.validators[t.signer].public_key
        if not self.cache.verify(key, timeout_signing_bytes(d), t.signature):
            self._drop("bad_signature")
            return
        if not self._process_certs(sender, t.high_qc, t.last_tc, out):
            self._drop("bad_cert")
            return
        self._collect_timeout(t.signer, d, t.signature, out)

    def _collect_timeout(self, signer: int, d: TimeoutData, sig: bytes, out: list[Action]) -> None:
        if d.round < self.round or d.round > self.round + ROUND_WINDOW:
            return
        if d.epoch != self.vset.epoch:
            return
        table = self.timeouts.setdefault(d.round, {})
        if signer in table:
            return  # nothing new (a resent or duplicated timeout)
        table[signer] = (d.high_qc_round, sig)
        if d.round == self.round and self.my_timeout is None and len(table) > self.vset.max_faulty:
            # f+1 timeouts mean at least one honest validator gave up: join it,
            # so validators with drifting timers still form a TC.
            self._local_timeout(out)
        if len(table) >= self.quorum and d.round == self.round:
            signers = tuple(sorted(table))
            tc = TimeoutCert(
                self.chain_id,
                self.vset.epoch,
                d.round,
                signers,
                tuple(table[i][0] for i in signers),
                tuple(table[i][1] for i in signers),
            )
            out.append(Broadcast(encode(TimeoutCertMsg(tc, self.high_qc))))
            self._process_certs(-1, self.high_qc, tc, out)

    # ------------------------------------------------------------ proposals

    def _on_payload(self, event: PayloadReady, out: list[Action]) -> None:
        if event.epoch != self.vset.epoch or event.round != self.round:
            return
        if self.me is None or self.proposed_round >= self.round:
            return
        self.pending_payload = event
        self._try_propose(out)

    def _try_propose(self, out: list[Action]) -> None:
        ev = self.pending_payload
        if ev is None or ev.round != self.round or self.me is None:
            return
        parent_hash = self.high_qc.data.block_hash
        parent = self.tree.header(parent_hash)
        if parent is None:
            return  # fetch under way; _on_fetched retries
        if self.exec_latest.height < parent.exec_height:
            return  # our execution lags the parent's attestation; wait for it
        txs = () if self._pending_reconfig(parent_hash) is not None else ev.txs
        ex = self.exec_latest
        header = BlockHeader(
            self.chain_id,
            self.vset.epoch,
            parent.height + 1,
            self.round,
            parent_hash,
            self.payload_hash(txs),
            ex.height,
            ex.state_root,
            ex.receipts_root,
            self.me,
            max(ev.timestamp_ms, parent.timestamp_ms),
        )
        tc = self.last_tc
        if tc is not None and (tc.round != self.round - 1 or self.high_qc.data.round == tc.round):
            tc = None
        proposal = sign_proposal(
            self.suite, self.config.private_key, Block(header, txs), self.high_qc, tc
        )
        self.pending_payload = None
        self.proposed_round = self.round
        out.append(Broadcast(encode(proposal)))
        self._accept_proposal(self.me, proposal, out)

    def _on_proposal(self, sender: int, p: Proposal, out: list[Action]) -> None:
        h = p.block.header
        if h.proposer >= self.vset.size or h.proposer != get_leader(self.vset, h.round):
            self._drop("wrong_leader")
            return
        body = ProposalBody(h.chain_id, h.epoch, h.round, block_hash(self.suite, h))
        key = self.vset.validators[h.proposer].public_key
        if not self.cache.verify(key, proposal_signing_bytes(body), p.signature):
            self._drop("bad_signature")
            return
        tc_round = 0 if p.tc is None else p.tc.round
        if p.justify.data.round >= h.round or tc_round >= h.round:
            self._drop("bad_proposal")
            return
        if not self._process_certs(sender, p.justify, p.tc, out):
            self._drop("bad_cert")
            return
        self._accept_proposal(sender, p, out)

    def _accept_proposal(self, sender: int, p: Proposal, out: list[Action]) -> None:
        h = p.block.header
        if h.epoch != self.vset.epoch:
            return  # its certificates just ended the epoch
        bh = block_hash(self.suite, h)
        if h.height <= self.tree.root.height or self.tree.has(bh):
            self._maybe_vote(p, out)
            return
        if not self.tree.has(h.parent_hash):
            self._park(sender, h.parent_hash, p, out)
            return
        if not self._is_valid_block(p):
            self._drop("invalid_block")
            return
        if self.tree.is_full():
            self._drop("tree_full")
            return
        self.tree.insert(bh, p)
        out.append(PersistBlock(p))
        self._after_insert(bh, out)
        self._maybe_vote(p, out)

    def _is_valid_block(self, p: Proposal) -> bool:
        h = p.block.header
        parent = self.tree.header(h.parent_hash)
        if parent is None or p.justify.data.block_hash != h.parent_hash:
            return False
        if h.height != parent.height + 1 or (h.round <= parent.round and parent.epoch == h.epoch):
            return False
        if h.chain_id != self.chain_id or h.epoch != self.vset.epoch:
            return False
        if h.timestamp_ms < parent.timestamp_ms or h.exec_height < parent.exec_height:
            return False
        if h.exec_height >= h.height or h.payload_hash != self.payload_hash(p.block.txs):
            return False
        if p.block.txs and self._pending_reconfig(h.parent_hash) is not None:
            return False  # the epoch is ending: only empty blocks until it commits
        return self.config.is_valid_payload(p.block)

    def _park(
        self, sender: int, missing: bytes, p: Proposal, out: list[Action], fetched: bool = False
    ) -> None:
        cap = FETCHED_WAITING_MAX if fetched else WAITING_PROPOSALS_MAX
        if self.waiting_count[fetched] >= cap:
            self._drop("waiting_full")
            return
        self.waiting.setdefault(missing, []).append((sender, p, fetched))
        self.waiting_count[fetched] += 1
        self._fetch(missing, sender, out)

    def _after_insert(self, bh: bytes, out: list[Action]) -> None:
        for sender, child, fetched in self.waiting.pop(bh, []):
            self.waiting_count[fetched] -= 1
            self._accept_proposal(sender, child, out)
        if self.pending_commit is not None:
            qc, self.pending_commit = self.pending_commit, None
            self._try_commit(-1, qc, out)
        self._try_propose(out)

    # ------------------------------------------------------------ voting

    def _maybe_vote(self, p: Proposal, out: list[Action]) -> None:
        h = p.block.header
        if h.round != self.round or self.me is None or h.epoch != self.vset.epoch:
            return
        if not self.tree.has(block_hash(self.suite, h)):
            return
        attested = header_exec_result(h)
        if attested.height > self.exec_latest.height:
            self.pending_vote = p  # vote once our own execution gets there
            return
        if self.exec_results.get(attested.height) != attested:
            self.stats["exec_mismatch"] += 1
            return
        if not self.rules.is_safe_to_vote(self.safety, h.round, p.justify.data.round, p.tc):
            self.stats["vote_refused"] += 1
            return
        self.safety = self._next_safety(h.round, self.safety.highest_timeout_round)
        vote = sign_vote(self.suite, self.config.private_key, self._vote_data(p), self.me)
        to = get_leader(self.vset, h.round + 1)
        out.extend(
            self.rules.persist_then_send(PersistSafety(self.safety), SendTo(to, encode(vote)))
        )

    def _next_safety(self, vote_round: int, timeout_round: int) -> SafetyData:
        """Safety data to persist, with the certificates that justify the current round."""
        s = self.safety
        qc = self.high_qc if self.high_qc.data.round > s.highest_qc.data.round else s.highest_qc
        return SafetyData(s.epoch, vote_round, timeout_round, qc, self.last_tc)

    def _vote_data(self, p: Proposal) -> VoteData:
        h = p.block.header
        parent = p.justify.data
        commit_height, commit_hash, next_hash = 0, b"", b""
        if parent.round > 0 and is_consecutive(h.round, parent.round):
            commit_height, commit_hash = parent.height, parent.block_hash
            found = self._find_reconfig(parent.block_hash)
            if found is not None:
                # Committing anything past the epoch's last block commits that
                # block: name it, so every validator ends the epoch at one place.
                bh, last, nxt = found
                commit_height, commit_hash = last.block.header.height, bh
                next_hash = validator_set_hash(self.suite, nxt)
        return VoteData(
            self.chain_id,
            self.vset.epoch,
            h.round,
            h.height,
            block_hash(self.suite, h),
            h.parent_hash,
            parent.round,
            commit_height,
            commit_hash,
            next_hash,
        )

    def _pending_reconfig(self, h: bytes) -> ValidatorSet | None:
        """The next validator set, if a block between the root and ``h`` changes it."""
        found = self._find_reconfig(h)
        return None if found is None else found[2]

    def _find_reconfig(self, h: bytes) -> tuple[bytes, Proposal, ValidatorSet] | None:
        """The block between the root and ``h`` that ends the epoch, if any.

        The epoch ends exactly at that block on every validator: blocks after it
        in the same epoch carry no transactions and are never committed.
        """
        path, _ = self.tree.path_from_root(h)
        for bh, p in path:
            if p.block.txs:
                nxt = self.config.next_validators(p.block)
                if nxt is not None:
                    return bh, p, nxt
        return None

    def _on_vote(self, v: Vote, out: list[Action]) -> None:
        d = v.data
        if v.signer >= self.vset.size:
            self._drop("non_validator")
            return
        if d.round <= self.high_qc.data.round or d.round > self.round + ROUND_WINDOW:
            self._drop("stale_vote")
            return
        key = self.vset.validators[v.signer].public_key
        if not self.cache.verify(key, vote_signing_bytes(d), v.signature):
            self._drop("bad_signature")
            return
        table = self.votes.setdefault(d.round, {})
        prior = table.get(v.signer)
        if prior is not None:
            if prior[0] != d:
                self.stats["equivocation"] += 1
            return
        table[v.signer] = (d, v.signature)
        signers = tuple(sorted(i for i, (dd, _) in table.items() if dd == d))
        if len(signers) >= self.quorum:
            qc = QuorumCert(d, signers, tuple(table[i][1] for i in signers))
            self._process_certs(-1, qc, None, out)

    # ------------------------------------------------------------ commit

    def _try_commit(self, sender: int, qc: QuorumCert, out: list[Action]) -> None:
        d = qc.data
        if d.commit_height <= self.tree.root.height:
            return
        path, missing = self.tree.path_from_root(d.commit_hash)
        if missing is not None:
            if (
                self.pending_commit is None
                or d.commit_height > self.pending_commit.data.commit_height
            ):
                self.pending_commit = qc
            self._fetch(missing, sender, out)
            return
        if not path or path[-1][1].block.header.height != d.commit_height:
            return
        found = self._find_reconfig(d.commit_hash)
        proposals = tuple(p for _, p in path)
        if found is not None:
            reconfig = found[2]
            if proposals[-1] is not found[1]:
                self.stats["epoch_end_mismatch"] += 1  # not what honest voters sign
                return
            if d.next_validators_hash != validator_set_hash(self.suite, reconfig):
                self.stats["epoch_hash_mismatch"] += 1
                return
            change = EpochChangeCert(proposals[-1].block.header, qc, reconfig)
            out.extend((Commit(proposals, qc, change), EpochChanged(change)))
            self._switch_epoch(change, out)
            return
        out.append(Commit(proposals, qc))
        self.tree.set_root(path[-1][1].block.header)
        self.fetcher.forget_if(self.tree.has)

    def _switch_epoch(self, change: EpochChangeCert, out: list[Action]) -> None:
        self.epoch_changes = [*self.epoch_changes, change][-EPOCH_CHANGES_MAX:]
        self._reset_epoch(change.next_set, change.header)
        out.append(PersistSafety(self.safety))
        self._enter_round(1, out)
        replay, self.future_epoch = self.future_epoch, []
        for sender, data in replay:
            self._on_bytes(sender, data, out)

    def _on_epoch_change(self, sender: int, change: EpochChangeCert, out: list[Action]) -> None:
        qc = change.cert
        if qc.data.round == 0 or not self._is_valid_qc(qc) or not qc.data.next_validators_hash:
            self._drop("bad_epoch_change")
            return
        self._try_commit(sender, qc, out)

    def _hint_epoch_change(self, sender: int, epoch: int, out: list[Action]) -> None:
        """A peer still in an old epoch: send it the certificate that ended it
        (once per peer per timer period, so a lost reply is sent again)."""
        if not 0 <= sender < self.vset.size or sender in self.epoch_hinted:
            return
        for change in self.epoch_changes:
            if change.cert.data.epoch == epoch:
                self.epoch_hinted.add(sender)
                out.append(SendTo(sender, encode(EpochChangeMsg(change))))

    # ------------------------------------------------------------ fetching, execution

    def _fetch(self, h: bytes, sender: int, out: list[Action]) -> None:
        if not self.tree.has(h):
            action = self.fetcher.start(h, sender, self.round)
            if action is not None:
                out.append(action)

    def _on_fetched(self, event: BlockFetched, out: list[Action]) -> None:
        try:
            p = decode(event.data, Proposal)
        except CodecError:
            self._drop("malformed")
            return
        h = p.block.header
        bh = block_hash(self.suite, h)
        if bh not in self.fetcher.pending:
            self._drop("unrequested_block")
            return
        if p.justify.data.block_hash != h.parent_hash or h.payload_hash != self.payload_hash(
            p.block.txs
        ):
            self._drop("invalid_block")
            return
        self.fetcher.take(bh)
        # The hash was certified by a QC we checked, so the block is authentic.
        if h.height <= self.tree.root.height or self.tree.has(bh):
            return
        if not self.tree.has(h.parent_hash):
            self._park(event.sender, h.parent_hash, p, out, fetched=True)
            return
        self.tree.insert(bh, p)
        out.append(PersistBlock(p))
        self._after_insert(bh, out)

    def _on_exec_result(self, result: ExecResult, out: list[Action]) -> None:
        if result.height <= self.exec_latest.height:
            return
        self.exec_results[result.height] = result
        self.exec_latest = result
        for h in [h for h in self.exec_results if h <= result.height - EXEC_RESULTS_MAX]:
            del self.exec_results[h]
        if self.pending_vote is not None:
            p, self.pending_vote = self.pending_vote, None
            self._maybe_vote(p, out)
        self._try_propose(out)

    # ------------------------------------------------------------ queries

    def get_proposal(self, h: bytes) -> Proposal | None:
        """A block this validator holds, for serving a peer's fetch."""
        return self.tree.get(h)


# Re-exported: callers build a core from this module alone.
__all__ = [
    "ConsensusCore",
    "CoreConfig",
    "Recovery",
    "compute_epoch_root_qc",
    "default_payload_hash",
    "get_leader",
]
